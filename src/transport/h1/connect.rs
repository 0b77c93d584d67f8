//! Opening a connection and handing it its first request in one go.
//!
//! A connect to a server on the same machine completes inside the `connect` call (the kernel
//! runs the handshake then and there). Tokio's connect still waits for the reactor to report
//! the socket writable, and its first write waits again: the request's task yields, and with a
//! thousand requests starting together (a closed loop's first turn, a burst of arrivals) it
//! runs again only after every other task has opened its own connection. Each request's TTFT
//! then held the client's time spent opening the others' connections: at 1,000 streams on the
//! simulator, 90–100 ms of it. Here the request is written on the raw socket as soon as the
//! connect returns, and the socket is handed to Tokio afterwards; a connect still in progress
//! (a remote server) falls back to waiting for it.

use std::io::{self, Write};
use std::net::SocketAddr;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::TcpStream;

/// Where the connect failed.
pub(super) enum OpenError {
    /// No connection: refused, unreachable, unresolved.
    Connect(io::Error),
    /// Connected, but the request could not be written.
    Send(io::Error),
}

/// A new connection and how much of the request went out with the connect.
pub(super) struct Opened {
    pub(super) stream: TcpStream,
    /// Bytes of the request written; the rest is the caller's to write.
    pub(super) written: usize,
}

/// Connects to `host:port` (each address it resolves to in turn, as Tokio does) and writes
/// what of `request` the socket takes at once when it connected at once. `stamped`: the
/// socket has the kernel's receive timestamps on (`recv_stamp`) before anything is sent.
pub(super) async fn open(
    host: &str,
    port: u16,
    request: &[u8],
    stamped: bool,
) -> Result<Opened, OpenError> {
    let mut last = None;
    for addr in tokio::net::lookup_host((host, port))
        .await
        .map_err(OpenError::Connect)?
    {
        match open_addr(addr, request, stamped).await {
            Ok(s) => return Ok(s),
            Err(OpenError::Connect(e)) => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(OpenError::Connect(last.unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "could not resolve to any address",
        )
    })))
}

async fn open_addr(addr: SocketAddr, request: &[u8], stamped: bool) -> Result<Opened, OpenError> {
    let sock = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))
        .map_err(OpenError::Connect)?;
    sock.set_nonblocking(true).map_err(OpenError::Connect)?;
    let _ = sock.set_tcp_nodelay(true);
    if stamped {
        // Without them (a kernel that refuses) the reads are timed when they are made.
        let _ = crate::recv_stamp::enable(std::os::fd::AsRawFd::as_raw_fd(&sock));
    }
    match sock.connect(&addr.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return Err(OpenError::Connect(e)),
    }
    // A connect that failed at once (refused on this machine) left its error on the socket.
    if let Some(e) = sock.take_error().map_err(OpenError::Connect)? {
        return Err(OpenError::Connect(e));
    }
    // Connected already: the request goes now, before this task yields. Not yet connected:
    // the kernel says EAGAIN, and the write waits below.
    let written = match (&sock).write(request) {
        Ok(n) => n,
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
        Err(e) => return Err(OpenError::Send(e)),
    };
    let std: std::net::TcpStream = sock.into();
    let stream = TcpStream::from_std(std).map_err(OpenError::Connect)?;
    if written == 0 {
        // Still connecting: wait for the outcome.
        stream.writable().await.map_err(OpenError::Connect)?;
        if let Some(e) = stream.take_error().map_err(OpenError::Connect)? {
            return Err(OpenError::Connect(e));
        }
    }
    Ok(Opened { stream, written })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::time::{Duration, Instant};
    use tokio::io::AsyncWriteExt;

    /// On this machine a connect completes at once, and the request goes with it.
    #[tokio::test]
    async fn a_connect_that_completes_at_once_carries_the_request() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let opened = open("127.0.0.1", port, b"GET / HTTP/1.1\r\n\r\n", false)
            .await
            .ok()
            .unwrap();
        assert_eq!(opened.written, 18, "written with the connect");
        let (mut conn, _) = listener.accept().unwrap();
        let mut buf = [0u8; 18];
        conn.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"GET / HTTP/1.1\r\n\r\n");
    }

    /// A connect still in progress (a remote server; here a listener whose accept queue is
    /// full drops the SYN, and the kernel retries it after a second) waits, then connects.
    #[tokio::test]
    async fn a_connect_still_in_progress_waits_for_the_handshake() {
        let sock = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
        sock.bind(&addr.into()).unwrap();
        // Backlog 0: one connection fills the accept queue.
        sock.listen(0).unwrap();
        let listener: std::net::TcpListener = sock.into();
        let port = listener.local_addr().unwrap().port();
        let _first = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let started = Instant::now();
        let opening = tokio::spawn(async move {
            let o = open("127.0.0.1", port, b"hello", false).await.ok().unwrap();
            (o.written, o.stream, started.elapsed())
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(
            !opening.is_finished(),
            "connected through a full accept queue"
        );
        // Room in the queue: the retried SYN gets through.
        let (_a, _) = listener.accept().unwrap();
        let (written, mut stream, took) = opening.await.unwrap();
        assert_eq!(written, 0, "nothing written before the handshake");
        assert!(took >= Duration::from_millis(200), "{took:?}");
        stream.write_all(b"hello").await.unwrap();
        let (mut conn, _) = listener.accept().unwrap();
        let mut buf = [0u8; 5];
        conn.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"hello");
    }

    #[tokio::test]
    async fn a_refused_connect_is_a_connect_error() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        match open("127.0.0.1", port, b"x", false).await {
            Err(OpenError::Connect(e)) => {
                assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused, "{e}")
            }
            Err(OpenError::Send(e)) => panic!("a send error: {e}"),
            Ok(_) => panic!("connected to a closed port"),
        }
    }
}
