//! The direct client against real servers on loopback: bodies however the server writes
//! them, connections kept and reused, and the stale-connection cases.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::*;

/// What the server does with each request on a connection: the response's pieces (written
/// with a pause between them), then whether to close.
type Script = Arc<dyn Fn(usize) -> (Vec<&'static [u8]>, bool) + Send + Sync>;

/// A server whose connections answer by `script` (called with the request's number on its
/// connection); returns its URL and the count of accepted connections.
async fn server(script: Script) -> (String, Arc<AtomicUsize>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1/x?k=1", l.local_addr().unwrap());
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        loop {
            let (s, _) = l.accept().await.unwrap();
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(serve(s, script.clone()));
        }
    });
    (url, accepted)
}

async fn serve(mut s: TcpStream, script: Script) {
    for nth in 0.. {
        // One request: its head, then its Content-Length body.
        let mut got = Vec::new();
        let mut b = [0u8; 4096];
        let head_end = loop {
            if let Some(p) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                break p + 4;
            }
            match s.read(&mut b).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&b[..n]),
            }
        };
        let head = String::from_utf8_lossy(&got[..head_end]).to_lowercase();
        assert!(head.starts_with("post /v1/x?k=1 http/1.1\r\nhost: 127.0.0.1:"));
        let len: usize = head
            .split("content-length: ")
            .nth(1)
            .and_then(|r| r.split("\r\n").next())
            .unwrap()
            .parse()
            .unwrap();
        while got.len() < head_end + len {
            let n = s.read(&mut b).await.unwrap();
            got.extend_from_slice(&b[..n]);
        }
        let (pieces, close) = script(nth);
        for p in pieces {
            if s.write_all(p).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        if close {
            return;
        }
    }
}

async fn body(r: &mut Response) -> Result<Vec<u8>, String> {
    let mut all = Vec::new();
    while let Some((b, _)) = r.chunk().await? {
        all.extend_from_slice(b);
    }
    Ok(all)
}

const CHUNKED: &[u8] = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n";

async fn send(d: &Direct, url: &str, fresh: bool) -> Result<Response, (SendError, Reuse)> {
    let hs = [("content-type", b"application/json".as_slice())];
    d.send(
        &Target::of(url).unwrap(),
        hs.into_iter(),
        b"{\"a\":1}",
        fresh,
    )
    .await
}

#[tokio::test]
async fn chunked_bodies_are_read_and_connections_kept_for_the_next_request() {
    let (url, accepted) = server(Arc::new(|_| {
        (
            vec![CHUNKED, b"6\r\ndata: \r\n", b"3\r\nab", b"c\r\n0\r\n\r\n"],
            false,
        )
    }))
    .await;
    let d = Direct::new(true, Duration::from_secs(5), true);
    for _ in 0..3 {
        let mut r = send(&d, &url, false)
            .await
            .map_err(|e| e.0.message)
            .unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.header("transfer-encoding"), Some("chunked"));
        assert_eq!(body(&mut r).await.unwrap(), b"data: abc");
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 1, "one connection, kept");
    // Without keep-alive (and for a resend) every request opens its own.
    let d = Direct::new(false, Duration::from_secs(5), true);
    for _ in 0..2 {
        let mut r = send(&d, &url, false)
            .await
            .map_err(|e| e.0.message)
            .unwrap();
        body(&mut r).await.unwrap();
    }
    let mut r = send(&Direct::new(true, Duration::from_secs(5), true), &url, true)
        .await
        .map_err(|e| e.0.message)
        .unwrap();
    body(&mut r).await.unwrap();
    assert_eq!(accepted.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn a_big_body_grows_the_read_buffer_and_arrives_whole() {
    static BIG: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    let big = BIG.get_or_init(|| {
        let mut v = b"HTTP/1.1 200 OK\r\ncontent-length: 1000000\r\n\r\n".to_vec();
        v.extend((0..1_000_000u32).map(|i| (i % 251) as u8));
        v
    });
    let (url, _) = server(Arc::new(move |_| (vec![big.as_slice()], false))).await;
    let d = Direct::new(true, Duration::from_secs(5), true);
    let mut r = send(&d, &url, false)
        .await
        .map_err(|e| e.0.message)
        .unwrap();
    let got = body(&mut r).await.unwrap();
    assert_eq!(got.len(), 1_000_000);
    assert!(got.iter().enumerate().all(|(i, &b)| b == (i % 251) as u8));
}

#[tokio::test]
async fn a_connection_the_server_closed_while_idle_is_not_used() {
    // Every response ends the connection without saying so (llama-server's habit).
    let (url, accepted) = server(Arc::new(|_| (vec![CHUNKED, b"1\r\nx\r\n0\r\n\r\n"], true))).await;
    let d = Direct::new(true, Duration::from_secs(5), true);
    for _ in 0..3 {
        let mut r = send(&d, &url, false)
            .await
            .map_err(|e| e.0.message)
            .unwrap();
        assert_eq!(body(&mut r).await.unwrap(), b"x");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_kept_connection_closed_unanswered_is_stale_and_a_fresh_one_is_not() {
    // The first request on a connection is answered; the second is read and left unanswered
    // as the connection closes.
    let (url, _) = server(Arc::new(|nth| match nth {
        0 => (vec![CHUNKED, b"1\r\nx\r\n0\r\n\r\n"], false),
        _ => (vec![], true),
    }))
    .await;
    let d = Direct::new(true, Duration::from_secs(5), true);
    let mut r = send(&d, &url, false)
        .await
        .map_err(|e| e.0.message)
        .unwrap();
    body(&mut r).await.unwrap();
    let Err((e, reuse)) = send(&d, &url, false).await else {
        panic!("answered")
    };
    assert_eq!(reuse, Reuse::Stale, "{}", e.message);
    // The same failure on a new connection is the server's, not a stale one.
    let (url, _) = server(Arc::new(|_| (vec![], true))).await;
    let Err((e, reuse)) = send(&d, &url, false).await else {
        panic!("answered")
    };
    assert_eq!(reuse, Reuse::Fresh);
    assert!(
        e.message.contains("closed before a response"),
        "{}",
        e.message
    );
}

#[tokio::test]
async fn cut_bodies_and_refused_connects_are_errors_that_say_so() {
    let (url, _) = server(Arc::new(|_| {
        (
            vec![b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc"],
            true,
        )
    }))
    .await;
    let d = Direct::new(true, Duration::from_secs(5), true);
    let mut r = send(&d, &url, false)
        .await
        .map_err(|e| e.0.message)
        .unwrap();
    let e = body(&mut r).await.unwrap_err();
    assert!(e.contains("7 bytes before the end"), "{e}");
    // An HTTP/1.0 reply without a length ends with its connection.
    let (url, _) = server(Arc::new(|_| {
        (vec![b"HTTP/1.0 200 OK\r\n\r\nall of it"], true)
    }))
    .await;
    let mut r = send(&d, &url, false)
        .await
        .map_err(|e| e.0.message)
        .unwrap();
    assert_eq!(body(&mut r).await.unwrap(), b"all of it");
    // Nothing listens here.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/v1/x?k=1");
    let Err((e, reuse)) = send(&d, &url, false).await else {
        panic!("connected")
    };
    assert_eq!(reuse, Reuse::Fresh);
    assert!(
        !e.timeout && e.message.contains("cannot connect to 127.0.0.1:"),
        "{}",
        e.message
    );
}

#[test]
fn targets_are_plain_http_urls_split_for_the_wire() {
    let t = Target::of("http://[::1]:8000/v1/chat?x=1&y=2").unwrap();
    assert_eq!(
        (
            t.host.as_str(),
            t.port,
            t.authority.as_str(),
            t.path.as_str()
        ),
        ("::1", 8000, "[::1]:8000", "/v1/chat?x=1&y=2")
    );
    let t = Target::of("http://example.com/generate").unwrap();
    assert_eq!((t.port, t.authority.as_str()), (80, "example.com"));
    assert!(Target::of("https://example.com/").is_none());
    assert!(Target::of("http://user:pw@example.com/").is_none());
}

/// A server on its own thread that answers one request with a chunked head at once and one
/// chunk 20 ms later; it returns the chunk's write time.
fn late_chunk_server() -> (String, std::thread::JoinHandle<std::time::Instant>) {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1/x?k=1", l.local_addr().unwrap());
    let server = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let mut got = Vec::new();
        let mut b = [0u8; 4096];
        while !got.ends_with(b"{\"a\":1}") {
            let n = s.read(&mut b).unwrap();
            got.extend_from_slice(&b[..n]);
        }
        s.write_all(CHUNKED).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        let written = std::time::Instant::now();
        s.write_all(b"6\r\ndata: \r\n0\r\n\r\n").unwrap();
        written
    });
    (url, server)
}

/// The client's only thread is busy when the chunk comes: with receive timestamps the chunk
/// is timed when the kernel received it, not 150 ms later when it was read.
#[tokio::test]
async fn a_chunk_that_came_while_the_client_was_busy_is_timed_when_it_came() {
    let (url, server) = late_chunk_server();
    let d = Direct::new(true, Duration::from_secs(5), true);
    // The kernel starts stamping a little after the first socket asks.
    assert!(crate::recv_stamp::wait_until_on(Duration::from_secs(1)).await);
    let mut r = send(&d, &url, false)
        .await
        .map_err(|e| e.0.message)
        .unwrap();
    std::thread::sleep(Duration::from_millis(150));
    let (bytes, at) = r.chunk().await.unwrap().unwrap();
    let read = std::time::Instant::now();
    assert_eq!(bytes, b"data: ");
    let written = server.join().unwrap();
    let at = at.expect("a kernel timestamp");
    assert!(
        at + Duration::from_millis(1) >= written
            && at.saturating_duration_since(written) < Duration::from_millis(20),
        "timed {:?} after the write",
        at.saturating_duration_since(written)
    );
    assert!(read.duration_since(at) >= Duration::from_millis(100));
}

/// Without receive timestamps (`LLMBENCH_CLOCK=read`) a chunk carries no kernel time, and the
/// caller times it when it reads it.
#[tokio::test]
async fn without_timestamps_a_chunk_carries_no_kernel_time() {
    let (url, server) = late_chunk_server();
    let d = Direct::new(true, Duration::from_secs(5), false);
    let mut r = send(&d, &url, false)
        .await
        .map_err(|e| e.0.message)
        .unwrap();
    let (bytes, at) = r.chunk().await.unwrap().unwrap();
    assert_eq!((bytes, at), (b"data: ".as_slice(), None));
    server.join().unwrap();
}
