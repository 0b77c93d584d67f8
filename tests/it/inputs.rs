//! Bad input fails early and clearly: exit 2, the flag or file named, no request sent. TLS is
//! verified unless told otherwise.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::common::*;

#[test]
fn bad_flags_values_urls_and_files_fail_before_any_request() {
    let srv = ScriptServer::start(Arc::new(|_| openai_stream(1, 1, 2, 1)));
    let dir = TempDir::new("inputs");
    std::fs::write(dir.path("not-pem"), "hello").unwrap();
    std::fs::write(dir.path("bad.jsonl"), "{\"prompt\":\"a\"}\n{broken\n").unwrap();
    std::fs::write(dir.path("conv.json"), "[{").unwrap();
    let p = |n: &str| dir.path(n).display().to_string();
    let u = srv.url.as_str();
    let cases: Vec<(Vec<String>, Vec<String>)> = vec![
        (
            vec![u.into(), "--no-such-flag".into()],
            vec!["--no-such-flag".into()],
        ),
        (
            vec![u.into(), "--rate".into(), "abc".into()],
            vec!["--rate".into()],
        ),
        (vec![u.into(), "--rate=-1".into()], vec!["--rate".into()]),
        (
            vec![u.into(), "-c".into(), "0".into()],
            vec!["--concurrency".into()],
        ),
        (
            vec![u.into(), "--backend".into(), "nope".into()],
            vec!["--backend \"nope\"".into()],
        ),
        (
            vec![u.into(), "--request-timeout".into(), "soon".into()],
            vec!["--request-timeout".into()],
        ),
        (
            vec!["--fault".into(), "bogus".into()],
            vec!["--fault \"bogus\"".into(), "http-429".into()],
        ),
        (
            vec!["--fault-rate".into(), "2".into()],
            vec!["--fault-rate".into()],
        ),
        (vec!["localhost:8000".into()], vec!["localhost:8000".into()]),
        (vec!["ftp://h/x".into()], vec!["only http and https".into()]),
        (
            vec!["http://user:pw@127.0.0.1:1".into()],
            vec!["credentials".into()],
        ),
        (
            vec![u.into(), "--dataset".into(), p("missing.jsonl")],
            vec![p("missing.jsonl")],
        ),
        (
            vec![u.into(), "--dataset".into(), p("bad.jsonl")],
            vec![format!("{}:2", p("bad.jsonl"))],
        ),
        (
            vec![u.into(), "--conversations".into(), p("conv.json")],
            vec![p("conv.json")],
        ),
        (
            vec![u.into(), "--ca-cert".into(), p("missing.pem")],
            vec!["--ca-cert".into(), p("missing.pem")],
        ),
        (
            vec![u.into(), "--ca-cert".into(), p("not-pem")],
            vec!["--ca-cert".into(), p("not-pem")],
        ),
        (
            vec![u.into(), "--header".into(), "NoColon".into()],
            vec!["--header".into()],
        ),
    ];
    for (args, wants) in cases {
        let out = bin().arg("run").args(&args).arg("-q").output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        for w in wants {
            assert!(err.contains(&w), "{args:?}: want {w:?} in {err}");
        }
    }
    assert_eq!(
        srv.requests.load(Ordering::SeqCst),
        0,
        "no request was sent"
    );
    // An unknown subcommand and a missing records file also exit 2.
    let out = bin().arg("frobnicate").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = bin()
        .args(["summarize"])
        .arg(p("none.jsonl"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains(&p("none.jsonl")));
    // An unreachable server is named.
    let out = bin()
        .args(["run", "http://127.0.0.1:9", "-n", "1", "-q"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot reach http://127.0.0.1:9"));
}

struct TlsServer(Child);

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `openssl s_server` with a fresh self-signed certificate for 127.0.0.1 (an independent TLS
/// server; it answers GET requests with a status page).
fn tls_server(dir: &TempDir) -> (TlsServer, String) {
    let (cert, key) = (dir.path("cert.pem"), dir.path("key.pem"));
    let ok = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args([
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .args(["-addext", "extendedKeyUsage=serverAuth"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(Stdio::null())
        .status()
        .expect("the openssl command (needed by the TLS test)")
        .success();
    assert!(ok, "openssl req");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("openssl")
        .args(["s_server", "-quiet", "-www", "-accept"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("-cert")
        .arg(&cert)
        .arg("-key")
        .arg(&key)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "s_server did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    (TlsServer(child), format!("https://127.0.0.1:{port}"))
}

#[test]
fn tls_is_verified_unless_told_otherwise() {
    let dir = TempDir::new("tls");
    let (_srv, url) = tls_server(&dir);
    let cert = dir.path("cert.pem").display().to_string();
    let go = |extra: &[&str]| {
        let out = bin()
            .args(["run", &url, "-n", "1", "--model", "m", "-q"])
            .args(["--request-timeout", "3s"])
            .args(extra)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // Verification on by default: the self-signed certificate is refused before any request.
    let (code, err) = go(&[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("certificate"), "{err}");
    // Trusting its CA, or --insecure, gets past the handshake (s_server is no LLM server, so
    // the request itself fails, but not on the certificate).
    // (s_server answers no probe, so the backend is named: the request itself is sent.)
    for extra in [&["--ca-cert", cert.as_str()][..], &["--insecure"]] {
        let (code, err) = go(&[extra, &["--backend", "openai-chat"]].concat());
        assert_ne!(code, Some(2), "{extra:?}: {err}");
        assert!(
            !err.to_lowercase().contains("certificate"),
            "{extra:?}: {err}"
        );
    }
}
