//! Images and audio against the simulator's truth: each image is ceil(W/28) · ceil(H/28) prompt
//! tokens, each audio clip ceil(25 · seconds), and in fixed mode each of these tokens adds
//! `--prefill-ms-per-token` to the time to first token.

use crate::common::*;
use crate::workloads::ok;

fn input_tokens(r: &RunOut) -> Vec<u64> {
    r.records.iter().map(|x| x.input_tokens.unwrap()).collect()
}

#[test]
fn images_add_their_tokens_and_prefill_to_ttft() {
    let _serial = serial();
    // Two 112x112 images: 2 · 4 · 4 = 32 tokens at 1.5 ms each = 48 ms more TTFT (small
    // images, so that sending and parsing the body, which every TTFT includes, stays short).
    let sim = ServeChild::start(&[
        "--ttft-ms",
        "40",
        "--itl-ms",
        "5",
        "--tokens",
        "4",
        "--prefill-ms-per-token",
        "1.5",
    ]);
    let base = [
        &sim.url,
        "--backend",
        "openai-chat",
        "-n",
        "8",
        "-c",
        "2",
        "--prompt",
        "Describe.",
    ];
    let plain = run(&base);
    ok(&plain, 8);
    let mut with = base.to_vec();
    with.extend(["--image", "112x112:2"]);
    let r = run(&with);
    ok(&r, 8);
    let (p, i) = (input_tokens(&plain), input_tokens(&r));
    assert!(i.iter().zip(&p).all(|(i, p)| i - p == 32), "{p:?} {i:?}");
    assert_eq!(
        r.result().scenarios[0].params.images.as_deref(),
        Some("112x112:2 jpeg")
    );
    timing_within_five_runs(&r, |r| {
        let ttft = r.result().scenarios[0].metrics.ttft_ms.unwrap().p50;
        if (88.0 - 0.5..=88.0 + 2.5).contains(&ttft) {
            Ok(())
        } else {
            Err(format!("TTFT median {ttft:.2} ms, truth 88 ms"))
        }
    });
    // Large images: 448x448 is 16 · 16 = 256 tokens each.
    let r = run(&[
        &sim.url,
        "--backend",
        "openai-chat",
        "-n",
        "2",
        "--prompt",
        "Describe.",
        "--image",
        "448x448:2",
    ]);
    ok(&r, 2);
    assert_eq!(input_tokens(&r)[0] - p[0], 512);
    // Audio: 2.5 s is 25 · 2.5 = 62.5, so 63 tokens a clip.
    let r = run(&[
        &sim.url,
        "--backend",
        "openai-chat",
        "-n",
        "2",
        "--prompt",
        "Describe.",
        "--audio",
        "2.5:2",
    ]);
    ok(&r, 2);
    assert_eq!(input_tokens(&r)[0] - p[0], 126);
    // PNG, several sizes, and Ollama's base64 list: 100x60 is 4 · 3 = 12 tokens, 28x28 one.
    for backend in ["openai-chat", "ollama-chat", "ollama-generate"] {
        let args = [
            &sim.url,
            "--backend",
            backend,
            "-n",
            "2",
            "--prompt",
            "Describe.",
            "--image",
            "100x60",
            "--image",
            "28x28:3",
            "--image-format",
            "png",
        ];
        let r = run(&args);
        ok(&r, 2);
        let mut plain = args[..7].to_vec();
        plain.truncate(7);
        let p = run(&plain);
        ok(&p, 2);
        assert_eq!(input_tokens(&r)[0] - input_tokens(&p)[0], 15, "{backend}");
    }
}
