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
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::FromRequestParts;
use axum::extract::connect_info::{ConnectInfo, Connected};
use axum::http::request::Parts;
use axum::serve::{IncomingStream, Listener};
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

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
        timestamps_on(listener.as_raw_fd())?;
        let deadline = Instant::now() + Duration::from_secs(1);
        // A probe that cannot run (no loopback in a network namespace) is no reason not to
        // serve.
        while matches!(stamps_now().await, Ok(false)) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        Ok(Self(listener))
    }
}

/// Whether a byte sent over loopback now comes with a receive timestamp.
async fn stamps_now() -> io::Result<bool> {
    let probe = TcpListener::bind("127.0.0.1:0").await?;
    timestamps_on(probe.as_raw_fd())?;
    let mut client = TcpStream::connect(probe.local_addr()?).await?;
    let (server, _) = probe.accept().await?;
    tokio::io::AsyncWriteExt::write_all(&mut client, b"?").await?;
    loop {
        server.readable().await?;
        let mut byte = [std::mem::MaybeUninit::new(0u8)];
        match server.try_io(Interest::READABLE, || {
            recv_stamped(server.as_raw_fd(), &mut byte)
        }) {
            Ok((_, stamp)) => return Ok(stamp.is_some()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
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
                    let _ = timestamps_on(tcp.as_raw_fd());
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
                .try_io(Interest::READABLE, || recv_stamped(fd, unfilled))
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

fn timestamps_on(fd: i32) -> io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: a valid descriptor, an int option of the right size.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_TIMESTAMPNS,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// One `recvmsg` into `buf`: the bytes read and, when the kernel gave one, the receive
/// timestamp on this process's monotonic clock.
fn recv_stamped(
    fd: i32,
    buf: &mut [std::mem::MaybeUninit<u8>],
) -> io::Result<(usize, Option<Instant>)> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // Room for one timespec message, aligned for cmsghdr.
    let mut control = [0u64; 8];
    // SAFETY: msghdr is plain data; zeroed is a valid empty header.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control) as _;
    // SAFETY: iov points into `buf` with its length, control into `control` with its size.
    let n = unsafe { libc::recvmsg(fd, &mut msg, libc::MSG_DONTWAIT) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut stamp = None;
    // SAFETY: walking the control messages the kernel wrote into `control`, within
    // msg_controllen, with libc's own macros.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_TIMESTAMPNS {
                let ts: libc::timespec = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast());
                stamp = Some(to_instant(ts));
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    Ok((n as usize, stamp))
}

/// A wall-clock timestamp (what the kernel stamps packets with) on the monotonic clock: its
/// age now, taken from now.
fn to_instant(ts: libc::timespec) -> Instant {
    let at = UNIX_EPOCH + Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32);
    let (now, wall) = (Instant::now(), SystemTime::now());
    let age = wall.duration_since(at).unwrap_or_default();
    now.checked_sub(age).unwrap_or(now)
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
