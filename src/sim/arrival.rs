//! When a request reached the simulator's socket, from the kernel's receive timestamp.
//!
//! With `--send-log` the simulator listens through [`ArrivalListener`]: every accepted
//! connection has `SO_TIMESTAMPNS` on, and its reads go through `recvmsg`, which hands back
//! the kernel's timestamp of the data read. A handler learns, through [`SocketArrival`], when
//! the bytes it was given reached the socket, so the send log can tell the time a request
//! waited inside the simulator (accept, read, parse, a busy core) from the time the client
//! took to send it. Without that, a client that writes a burst faster than the one-core
//! simulator reads it is charged with the simulator's read queue.

use std::io;
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::extract::connect_info::{ConnectInfo, Connected};
use axum::http::request::Parts;
use axum::serve::{IncomingStream, Listener};
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

use crate::recv_stamp;

/// The socket arrival of a connection's latest read, shared with its requests' handlers.
#[derive(Clone, Default)]
pub(crate) struct SocketClock(Arc<Mutex<Option<Instant>>>);

impl SocketClock {
    fn set(&self, at: Option<Instant>) {
        if let Ok(mut g) = self.0.lock() {
            *g = at;
        }
    }

    fn get(&self) -> Option<Instant> {
        self.0.lock().ok().and_then(|g| *g)
    }
}

/// A TCP listener whose connections carry a [`SocketClock`].
pub(crate) struct ArrivalListener(pub(crate) TcpListener);

impl ArrivalListener {
    /// Turns receive timestamps on for the listening socket (accepted sockets inherit it),
    /// and returns once the kernel stamps packets: it starts doing so a little after the
    /// first socket asks (a deferred work item), and a request that came before would carry
    /// no timestamp. Waits at most a second, then serves anyway (unstamped requests log a null
    /// `waited_ms`).
    pub(crate) async fn new(listener: TcpListener) -> io::Result<Self> {
        recv_stamp::enable(listener.as_raw_fd())?;
        // A probe that cannot run (no loopback in a network namespace) is no reason not to
        // serve.
        recv_stamp::wait_until_on(Duration::from_secs(1)).await;
        Ok(Self(listener))
    }
}

impl Listener for ArrivalListener {
    type Io = StampedStream;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.0.accept().await {
                Ok((tcp, addr)) => {
                    let _ = tcp.set_nodelay(true);
                    // Inherited from the listener; set again in case a kernel does not.
                    let _ = recv_stamp::enable(tcp.as_raw_fd());
                    let io = StampedStream {
                        tcp,
                        clock: SocketClock::default(),
                    };
                    return (io, addr);
                }
                // Out of descriptors or a connection reset before accept: wait a moment, as
                // axum's own listener does.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

impl Connected<IncomingStream<'_, ArrivalListener>> for SocketClock {
    fn connect_info(stream: IncomingStream<'_, ArrivalListener>) -> Self {
        stream.io().clock.clone()
    }
}

/// When the request a handler was given reached the socket: the kernel's timestamp of the
/// connection's latest read, which for a request that is not pipelined is the read that
/// completed it. `None` when the simulator serves without [`ArrivalListener`] or the kernel
/// gave no timestamp.
pub(crate) struct SocketArrival(pub(crate) Option<Instant>);

impl<S: Send + Sync> FromRequestParts<S> for SocketArrival {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let at = parts
            .extensions
            .get::<ConnectInfo<SocketClock>>()
            .and_then(|c| c.0.get());
        Ok(Self(at))
    }
}

/// An accepted connection that reads with `recvmsg` and keeps the kernel's timestamp.
pub(crate) struct StampedStream {
    tcp: TcpStream,
    clock: SocketClock,
}

impl AsyncRead for StampedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            ready!(this.tcp.poll_read_ready(cx))?;
            let fd = this.tcp.as_raw_fd();
            // SAFETY: recvmsg only writes into the slice; what it wrote is marked initialised
            // below, and nothing uninitialised is read.
            let unfilled = unsafe { buf.unfilled_mut() };
            match this
                .tcp
                .try_io(Interest::READABLE, || recv_stamp::recv(fd, unfilled))
            {
                Ok((n, stamp)) => {
                    if n > 0 {
                        this.clock.set(stamp);
                    }
                    // SAFETY: the kernel wrote `n` bytes at the start of the unfilled part.
                    unsafe { buf.assume_init(n) };
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsyncWrite for StampedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().tcp).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A request written, then read 150 ms later: the socket arrival is the write's time, not
    /// the read's.
    #[tokio::test]
    async fn the_socket_arrival_is_when_the_bytes_came_not_when_they_were_read() {
        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut listener = ArrivalListener::new(tcp).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut client = TcpStream::connect(addr).await.unwrap();
        let (mut conn, _) = listener.accept().await;
        let written = Instant::now();
        client.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
        tokio::time::sleep(Duration::from_millis(150)).await;
        let mut buf = [0u8; 64];
        let n = conn.read(&mut buf).await.unwrap();
        let read = Instant::now();
        assert_eq!(&buf[..n], b"GET / HTTP/1.1\r\n\r\n");
        let at = conn.clock.get().expect("a stamp");
        let after_write = at.saturating_duration_since(written);
        let before_read = read.saturating_duration_since(at);
        assert!(
            at + Duration::from_millis(1) >= written && after_write < Duration::from_millis(20),
            "stamped {after_write:?} after the write"
        );
        assert!(
            before_read >= Duration::from_millis(140),
            "stamped only {before_read:?} before the read"
        );
        // Writing back goes straight through.
        conn.write_all(b"ok").await.unwrap();
        let n = client.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"ok");
    }
}
