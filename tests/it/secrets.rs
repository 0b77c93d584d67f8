//! Secrets: API keys and credential headers are sent, and never reach a file or the console,
//! even when the server echoes them back in its errors. Proxies only on request.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use llmbench::measure::record::Outcome;

use crate::common::*;

/// A raw-TCP server that keeps every request head and answers odd-numbered requests with a
/// 401 whose body echoes the whole request head (as some real APIs echo a bad key), an
/// in-band error event quoting it for every fourth, and a valid stream otherwise.
struct EchoServer {
    url: String,
    heads: Arc<Mutex<Vec<String>>>,
}

impl EchoServer {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let heads = Arc::new(Mutex::new(Vec::new()));
        let h = heads.clone();
        let n = Arc::new(AtomicU64::new(0));
        std::thread::spawn(move || {
            for sock in listener.incoming() {
                let Ok(mut sock) = sock else { return };
                let (h, n) = (h.clone(), n.clone());
                std::thread::spawn(move || {
                    let mut buf = Vec::new();
                    let mut tmp = [0u8; 4096];
                    let end = loop {
                        let Ok(k) = sock.read(&mut tmp) else { return };
                        if k == 0 {
                            return;
                        }
                        buf.extend_from_slice(&tmp[..k]);
                        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break p;
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
                    h.lock().unwrap().push(head.clone());
                    let echo = serde_json::to_string(&head).unwrap();
                    let (status, ctype, body) = if head.contains("/v1/models") {
                        (
                            200,
                            "application/json",
                            r#"{"data":[{"id":"m"}]}"#.to_string(),
                        )
                    } else {
                        let i = n.fetch_add(1, Ordering::SeqCst);
                        if i % 2 == 1 {
                            (
                                401,
                                "application/json",
                                format!(r#"{{"error":{{"message":"bad credentials in {echo}"}}}}"#),
                            )
                        } else if i % 4 == 0 {
                            (
                                200,
                                "text/event-stream",
                                format!(
                                    "data: {{\"choices\":[{{\"delta\":{{\"content\":\"a\"}}}}]}}\n\ndata: {{\"error\":{{\"message\":{echo}}}}}\n\ndata: {{\"oops\": {echo}\n\n"
                                ),
                            )
                        } else {
                            (200, "text/event-stream", "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\ndata: [DONE]\n\n".to_string())
                        }
                    };
                    let resp = format!(
                        "HTTP/1.1 {status} X\r\ncontent-type: {ctype}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = sock.write_all(resp.as_bytes());
                });
            }
        });
        Self { url, heads }
    }
}

const ENV_KEY: &str = "sk-canary-env-4f1d2a9b";
const FILE_KEY: &str = "sk-canary-file-77c0e3aa";
const HDR_KEY: &str = "canary-xapikey-91ab";
const COOKIE: &str = "canary-cookie-5e6f";

/// Every file in `dir` and the captured output, searched for every canary.
fn assert_no_canary(dir: &std::path::Path, texts: &[&str]) {
    let mut blobs: Vec<(String, String)> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| (format!("output #{i}"), t.to_string()))
        .collect();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        blobs.push((
            p.display().to_string(),
            String::from_utf8_lossy(&std::fs::read(&p).unwrap()).into_owned(),
        ));
    }
    assert!(blobs.len() >= 5, "{blobs:?}");
    for (name, text) in &blobs {
        for c in [ENV_KEY, FILE_KEY, HDR_KEY, COOKIE, "canary"] {
            assert!(!text.contains(c), "{c} leaked into {name}:\n{text}");
        }
    }
}

#[test]
fn canary_keys_are_sent_but_never_written() {
    let srv = EchoServer::start();
    let dir = TempDir::new("secrets");
    let key_file = TempDir::new("secret-key");
    std::fs::write(key_file.path("key"), format!("{FILE_KEY}\n")).unwrap();
    let mut outputs = Vec::new();
    // The key from the environment, then from a file, each with credential headers.
    for (i, with_file) in [false, true].into_iter().enumerate() {
        let mut cmd = bin();
        cmd.env("OPENAI_API_KEY", ENV_KEY)
            .arg("run")
            .arg(&srv.url)
            .args(["-n", "12", "-c", "2"])
            .args(["--header", &format!("X-Api-Key: {HDR_KEY}")])
            .args(["--header", &format!("Cookie: session={COOKIE}")])
            .arg("-o")
            .arg(dir.path(&format!("result{i}.json")))
            .arg("--records")
            .arg(dir.path(&format!("records{i}.jsonl")));
        if with_file {
            cmd.arg("--api-key-file").arg(key_file.path("key"));
        }
        let out = cmd.output().unwrap();
        // Some requests failed: exit 0 (not all failed); the outcomes are what the server did.
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let res = llmbench::results::file::ResultFile::read(&dir.path(&format!("result{i}.json")))
            .unwrap();
        let o = &res.scenarios[0].outcomes;
        assert_eq!(o.get(Outcome::HttpError), 6);
        assert_eq!(o.get(Outcome::StreamError), 3);
        assert_eq!(o.get(Outcome::Succeeded), 3);
        outputs.push(String::from_utf8_lossy(&out.stdout).into_owned());
        outputs.push(String::from_utf8_lossy(&out.stderr).into_owned());
        // The errors kept their meaning, with the secrets cut out.
        let errors = format!("{:?}", res.scenarios[0].errors);
        assert!(
            errors.contains("<redacted>") && errors.contains("401"),
            "{errors}"
        );
        // A summary rebuilt from the records is clean too.
        let s = bin()
            .arg("summarize")
            .arg(dir.path(&format!("records{i}.jsonl")))
            .output()
            .unwrap();
        outputs.push(String::from_utf8_lossy(&s.stdout).into_owned());
    }
    // The server did get the credentials.
    let heads = srv.heads.lock().unwrap();
    let gen_heads: Vec<&String> = heads.iter().filter(|h| h.contains("completions")).collect();
    assert_eq!(gen_heads.len(), 24);
    let lower = |h: &str| h.to_ascii_lowercase();
    assert!(
        gen_heads[..12]
            .iter()
            .all(|h| lower(h).contains(&format!("authorization: bearer {ENV_KEY}")))
    );
    assert!(
        gen_heads[12..]
            .iter()
            .all(|h| lower(h).contains(&format!("authorization: bearer {FILE_KEY}")))
    );
    assert!(
        gen_heads
            .iter()
            .all(|h| h.contains(HDR_KEY) && h.contains(COOKIE))
    );
    let texts: Vec<&str> = outputs.iter().map(String::as_str).collect();
    assert_no_canary(&dir.0, &texts);
}

#[test]
fn bad_key_files_fail_before_any_request() {
    let srv = ScriptServer::start(Arc::new(|_| openai_stream(1, 1, 2, 1)));
    let dir = TempDir::new("keyfile");
    std::fs::write(dir.path("empty"), "\n").unwrap();
    for (file, want) in [
        (dir.path("missing"), "--api-key-file: cannot read"),
        (dir.path("empty"), "expected one line holding the key"),
    ] {
        let out = bin()
            .args(["run", &srv.url, "-n", "1", "-q", "--api-key-file"])
            .arg(&file)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(
            err.contains(want) && err.contains(&*file.to_string_lossy()),
            "{err}"
        );
    }
    assert_eq!(srv.requests.load(Ordering::SeqCst), 0);
}

#[test]
fn proxy_variables_are_ignored_unless_asked_for() {
    let srv = ScriptServer::start(Arc::new(|_| openai_stream(1, 1, 2, 1)));
    // A proxy that does not exist: used, it would fail every request.
    let dead = "http://127.0.0.1:9";
    let with_proxy = |extra: &[&str]| {
        bin()
            .env("HTTP_PROXY", dead)
            .env("http_proxy", dead)
            .env("ALL_PROXY", dead)
            .env_remove("NO_PROXY")
            .env_remove("no_proxy")
            .args(["run", &srv.url, "-n", "2", "-q"])
            .args(extra)
            .output()
            .unwrap()
    };
    let out = with_proxy(&[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(srv.requests.load(Ordering::SeqCst), 2);
    let out = with_proxy(&["--use-env-proxy"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "unreachable through the dead proxy"
    );
    assert_eq!(srv.requests.load(Ordering::SeqCst), 2);
}
