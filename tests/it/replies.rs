//! Replies that are odd but real: tool calls without text, `[DONE]` on a connection kept open,
//! a whole JSON reply to a streamed request, encodings not asked for, token counts that are not
//! counts. Each is filed under the outcome it is, by a scripted server on loopback.

use std::sync::Arc;
use std::time::Duration;

use llmbench::measure::record::{Outcome, TokenSource};

use crate::common::*;

fn sse(s: &str) -> Step {
    Step::Write(s.as_bytes().to_vec())
}

fn ms(n: u64) -> Step {
    Step::At(Duration::from_millis(n))
}

#[test]
fn tool_calls_without_text_are_output() {
    let srv = ScriptServer::start(Arc::new(|_| {
        vec![
            Step::Head(200, "text/event-stream"),
            ms(20),
            sse(
                "data: {\"choices\":[{\"delta\":{\"role\":\"assistant\",\"tool_calls\":[{\"index\":0,\"id\":\"c1\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"\"}}]}}]}\n\n",
            ),
            ms(30),
            sse(
                "data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"city\\\":\\\"Paris\\\"}\"}}]}}]}\n\n",
            ),
            sse("data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\n"),
            sse(
                "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":12}}\n\ndata: [DONE]\n\n",
            ),
        ]
    }));
    let r = run(&[&srv.url, "--backend", "openai-chat", "-n", "3"]);
    check_accounting(&r);
    let sc = &r.result().scenarios[0];
    assert_eq!(sc.outcomes.get(Outcome::Succeeded), 3, "{:?}", sc.errors);
    assert_eq!(sc.metrics.output_tokens.total, 36);
    for x in &r.records {
        let ttft = x.ttft_ms().unwrap();
        assert!(
            (19.0..40.0).contains(&ttft),
            "TTFT {ttft} from the first tool-call delta"
        );
        assert_eq!(x.chunk_times_ms.len(), 2);
    }
}

#[test]
fn done_ends_the_request_even_on_a_connection_kept_open() {
    // `[DONE]`, then the server keeps the connection open for 30 s without a word.
    let srv = ScriptServer::start(Arc::new(|_| {
        let mut s = openai_stream(5, 2, 3, 4);
        s.push(Step::At(Duration::from_secs(30)));
        s
    }));
    let r = run(&[
        &srv.url,
        "--backend",
        "openai-chat",
        "-n",
        "2",
        "--idle-timeout",
        "10s",
    ]);
    let sc = &r.result().scenarios[0];
    assert_eq!(sc.outcomes.get(Outcome::Succeeded), 2, "{:?}", sc.errors);
    assert!(
        sc.metrics.e2e_ms.unwrap().max < 1000.0,
        "{:?}",
        sc.metrics.e2e_ms
    );
}

#[test]
fn a_whole_json_reply_to_a_streamed_request_is_read_as_one() {
    // A 200 carrying an error object: a stream_error with the server's message.
    let err = ScriptServer::start(Arc::new(|_| {
        vec![
            Step::Head(200, "application/json"),
            sse(r#"{"error":{"message":"model overloaded, try later","type":"server_error"}}"#),
        ]
    }));
    let r = run(&[&err.url, "--backend", "openai-chat", "-n", "2"]);
    check_accounting(&r);
    let sc = &r.result().scenarios[0];
    assert_eq!(sc.outcomes.get(Outcome::StreamError), 2, "{:?}", sc.errors);
    assert!(
        sc.errors[0].message.contains("model overloaded, try later"),
        "{:?}",
        sc.errors
    );
    // A server that ignores `stream: true`: one whole completion succeeds, TTFT = E2E.
    let whole = ScriptServer::start(Arc::new(|_| {
        vec![
            Step::Head(200, "application/json"),
            ms(25),
            sse(
                r#"{"choices":[{"message":{"role":"assistant","content":"hello there"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":2}}"#,
            ),
        ]
    }));
    let r = run(&[&whole.url, "--backend", "openai-chat", "-n", "2"]);
    let sc = &r.result().scenarios[0];
    assert_eq!(sc.outcomes.get(Outcome::Succeeded), 2, "{:?}", sc.errors);
    assert_eq!(sc.metrics.output_tokens.total, 4);
    for x in &r.records {
        assert_eq!(x.first_token_at_ms, Some(x.done_at_ms), "TTFT = E2E");
        assert!(x.ttft_ms().unwrap() >= 24.0);
    }
}

#[test]
fn an_encoding_that_was_not_asked_for_is_named() {
    let srv = ScriptServer::start(Arc::new(|_| {
        vec![
            Step::Head(200, "text/event-stream\r\ncontent-encoding: gzip"),
            Step::Write(vec![0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0, 0, 3, 1, 2, 3]),
        ]
    }));
    let r = run(&[&srv.url, "--backend", "openai-chat", "-n", "2"]);
    let sc = &r.result().scenarios[0];
    assert_eq!(sc.outcomes.get(Outcome::StreamError), 2, "{:?}", sc.errors);
    assert!(
        sc.errors[0].message.contains("gzip-encoded"),
        "{:?}",
        sc.errors
    );
}

/// A final usage event with the given counts (as JSON text).
fn usage_reply(prompt: &'static str, completion: &'static str) -> Vec<Step> {
    vec![
        Step::Head(200, "text/event-stream"),
        ms(5),
        sse("data: {\"choices\":[{\"delta\":{\"content\":\"one \"}}]}\n\n"),
        sse("data: {\"choices\":[{\"delta\":{\"content\":\"two \"}}]}\n\n"),
        sse("data: {\"choices\":[{\"delta\":{\"content\":\"three\"},\"finish_reason\":\"length\"}]}\n\n"),
        Step::Write(
            format!(
                "data: {{\"choices\":[],\"usage\":{{\"prompt_tokens\":{prompt},\"completion_tokens\":{completion}}}}}\n\ndata: [DONE]\n\n"
            )
            .into_bytes(),
        ),
    ]
}

#[test]
fn usage_counts_out_of_range_are_left_out_and_whole_floats_accepted() {
    // `5.0` is a count: the reply succeeds with the server's numbers.
    let floats = ScriptServer::start(Arc::new(|_| usage_reply("4.0", "5.0")));
    let r = run(&[&floats.url, "--backend", "openai-chat", "-n", "3"]);
    check_accounting(&r);
    let sc = &r.result().scenarios[0];
    assert_eq!(sc.outcomes.get(Outcome::Succeeded), 3, "{:?}", sc.errors);
    assert_eq!(sc.metrics.output_tokens.total, 15);
    assert_eq!(sc.metrics.input_tokens.total, 12);
    assert!(sc.metrics.rejected_token_counts.is_none());
    // 2^64-1 is not a count: never summed (it would wrap), the request still succeeds, its
    // output counted from the chunks, and the user is told which value was left out.
    let huge = ScriptServer::start(Arc::new(|_| usage_reply("7", "18446744073709551615")));
    let r = run(&[&huge.url, "--backend", "openai-chat", "-n", "4"]);
    check_accounting(&r);
    let sc = &r.result().scenarios[0];
    assert_eq!(sc.outcomes.get(Outcome::Succeeded), 4, "{:?}", sc.errors);
    assert_eq!(sc.metrics.output_tokens.total, 12, "three chunks each");
    assert_eq!(
        sc.metrics.input_tokens.total, 28,
        "the prompt count was fine"
    );
    for x in &r.records {
        assert_eq!(x.output_tokens_source, Some(TokenSource::Chunks));
        assert_eq!(
            x.rejected_count.as_deref(),
            Some("completion_tokens 18446744073709551615")
        );
    }
    let rej = sc.metrics.rejected_token_counts.as_ref().expect("noted");
    assert_eq!(rej.requests, 4);
    let warned = sc
        .warnings
        .iter()
        .find(|w| w.contains("18446744073709551615"))
        .unwrap_or_else(|| panic!("{:?}", sc.warnings));
    assert!(warned.contains("4 request(s)"), "{warned}");
    assert!(
        r.stdout().contains("18446744073709551615"),
        "{}",
        r.stdout()
    );
    // Negative and fractional counts are not counts either.
    let odd = ScriptServer::start(Arc::new(|_| usage_reply("-3", "2.5")));
    let r = run(&[&odd.url, "--backend", "openai-chat", "-n", "2"]);
    let sc = &r.result().scenarios[0];
    assert_eq!(sc.outcomes.get(Outcome::Succeeded), 2, "{:?}", sc.errors);
    assert_eq!(sc.metrics.output_tokens.total, 6);
    assert_eq!(
        r.records[0].rejected_count.as_deref(),
        Some("prompt_tokens -3"),
        "the first value left out is named"
    );
}

#[test]
fn an_error_body_naming_its_status_is_an_http_error() {
    // A 200 whose body is an error object with an HTTP status in it (vLLM's shape).
    let srv = ScriptServer::start(Arc::new(|_| {
        vec![
            Step::Head(200, "text/event-stream"),
            sse(
                "data: {\"error\":{\"object\":\"error\",\"message\":\"The model `nope` does not exist.\",\"type\":\"NotFoundError\",\"code\":404}}\n\n",
            ),
        ]
    }));
    let r = run(&[&srv.url, "--backend", "openai-chat", "-n", "3"]);
    check_accounting(&r);
    let sc = &r.result().scenarios[0];
    assert_eq!(sc.outcomes.get(Outcome::HttpError), 3, "{:?}", sc.errors);
    assert_eq!(r.records[0].http_status, Some(404));
    assert!(
        sc.errors[0]
            .message
            .contains("HTTP 404 (in the body of a 200 reply): The model `nope` does not exist."),
        "{:?}",
        sc.errors
    );
    // After output has started, an error event is a stream error whatever it names; OpenAI's
    // string codes are not statuses.
    let mid = ScriptServer::start(Arc::new(|_| {
        vec![
            Step::Head(200, "text/event-stream"),
            sse("data: {\"choices\":[{\"delta\":{\"content\":\"par\"}}]}\n\n"),
            sse("data: {\"error\":{\"message\":\"worker died\",\"code\":500}}\n\n"),
        ]
    }));
    let r = run(&[&mid.url, "--backend", "openai-chat", "-n", "2"]);
    let sc = &r.result().scenarios[0];
    assert_eq!(sc.outcomes.get(Outcome::StreamError), 2, "{:?}", sc.errors);
    let named = ScriptServer::start(Arc::new(|_| {
        vec![
            Step::Head(200, "text/event-stream"),
            sse(
                "data: {\"error\":{\"message\":\"no such model\",\"code\":\"model_not_found\"}}\n\n",
            ),
        ]
    }));
    let r = run(&[&named.url, "--backend", "openai-chat", "-n", "2"]);
    let sc = &r.result().scenarios[0];
    assert_eq!(sc.outcomes.get(Outcome::StreamError), 2, "{:?}", sc.errors);
    assert!(sc.errors[0].message.contains("no such model"));
}

/// A reasoning reply: three reasoning chunks from 20 ms, 10 ms apart, then the answer at 70 ms
/// ("Paris." in two chunks); `usage` as given.
fn reasoning_reply(usage: &'static str) -> Vec<Step> {
    let think = |t: &str| {
        sse(&format!(
            "data: {{\"choices\":[{{\"delta\":{{\"reasoning_content\":\"{t}\"}}}}]}}\n\n"
        ))
    };
    let say = |t: &str| {
        sse(&format!(
            "data: {{\"choices\":[{{\"delta\":{{\"content\":\"{t}\"}}}}]}}\n\n"
        ))
    };
    vec![
        Step::Head(200, "text/event-stream"),
        ms(20),
        think("The user asks"),
        ms(30),
        think(" for a capital;"),
        ms(40),
        think(" France's is Paris."),
        ms(70),
        say("Par"),
        ms(80),
        say("is."),
        Step::Write(
            format!("data: {{\"choices\":[],\"usage\":{usage}}}\n\ndata: [DONE]\n\n").into_bytes(),
        ),
    ]
}

#[test]
fn reasoning_replies_time_their_first_answer_token_and_split_their_tokens() {
    let srv = ScriptServer::start(Arc::new(|_| {
        reasoning_reply(
            r#"{"prompt_tokens":9,"completion_tokens":5,"completion_tokens_details":{"reasoning_tokens":3}}"#,
        )
    }));
    let r = run(&[&srv.url, "--backend", "openai-chat", "-n", "3"]);
    check_accounting(&r);
    let sc = &r.result().scenarios[0];
    assert_eq!(sc.outcomes.get(Outcome::Succeeded), 3, "{:?}", sc.errors);
    for x in &r.records {
        // TTFT is the first reasoning token; the answer starts 50 ms later.
        let (ttft, ttfa) = (x.ttft_ms().unwrap(), x.ttfa_ms().unwrap());
        assert!((19.0..35.0).contains(&ttft), "TTFT {ttft}");
        assert!(
            (ttfa - ttft - 50.0).abs() < 8.0,
            "TTFA {ttfa} vs TTFT {ttft}"
        );
        assert_eq!((x.output_tokens, x.reasoning_tokens), (5, Some(3)));
    }
    let m = &sc.metrics;
    assert_eq!(m.ttft_answer_ms.unwrap().count, 3);
    let reasoned = m.reasoning_ms.unwrap();
    assert!((reasoned.p50 - 50.0).abs() < 8.0, "{reasoned:?}");
    assert_eq!(
        (
            m.reasoning_tokens.unwrap().total,
            m.answer_tokens.unwrap().total
        ),
        (9, 6)
    );
    let out = r.stdout();
    assert!(out.contains("TTFT answer"), "{out}");
    assert!(out.contains("9 reasoning tokens"), "{out}");
    // Without the server's reasoning count, reasoning chunks are counted (one token each).
    let srv = ScriptServer::start(Arc::new(|_| {
        reasoning_reply(r#"{"prompt_tokens":9,"completion_tokens":5}"#)
    }));
    let r = run(&[&srv.url, "--backend", "openai-chat", "-n", "1"]);
    assert_eq!(r.records[0].reasoning_tokens, Some(3));
    // A reply without reasoning has no TTFA and no split.
    let plain = ScriptServer::start(Arc::new(|_| openai_stream(5, 2, 3, 4)));
    let r = run(&[&plain.url, "--backend", "openai-chat", "-n", "1"]);
    let m = &r.result().scenarios[0].metrics;
    assert!(m.ttft_answer_ms.is_none() && m.reasoning_tokens.is_none());
    assert!(r.records[0].first_answer_at_ms.is_none());
}

#[test]
fn conversations_send_back_the_answer_without_its_reasoning() {
    let dir = TempDir::new("reasoning-conv");
    let file = dir.path("c.json");
    std::fs::write(
        &file,
        r#"[{"id": "capital", "turns": [{"user": "Capital of France?"}, {"user": "And of Spain?"}]}]"#,
    )
    .unwrap();
    let srv = ScriptServer::start(Arc::new(|_| {
        reasoning_reply(r#"{"prompt_tokens":9,"completion_tokens":5}"#)
    }));
    let r = run(&[&srv.url, "--conversations", file.to_str().unwrap()]);
    check_accounting(&r);
    let bodies: Vec<String> = srv
        .bodies
        .lock()
        .unwrap()
        .iter()
        .filter(|b| b.contains("\"messages\""))
        .cloned()
        .collect();
    assert_eq!(bodies.len(), 2);
    let second: serde_json::Value = serde_json::from_str(&bodies[1]).unwrap();
    let msgs = second["messages"].as_array().unwrap();
    assert_eq!(msgs[1]["role"], "assistant");
    assert_eq!(msgs[1]["content"], "Paris.", "the answer only");
    assert!(!bodies[1].contains("France's is"), "no reasoning sent back");
}
