//! The direct HTTP/1.1 client for plain `http://` targets: each request's own task writes the
//! request and reads the response off its socket, with no connection task and no channel in
//! between (reqwest, kept for TLS and proxies, hands every read from a connection task to the
//! response through a channel: two task wake-ups per read, about a quarter of the client's CPU
//! per streamed token). Connections are kept for the next request when the body ended cleanly
//! and the server did not say it closes; a kept connection the server closed while it sat idle
//! is noticed before use where it can be, and otherwise reported as stale (see [`Reuse`]).

mod codec;
mod connect;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::http::Reuse;
use crate::recv_stamp;
use codec::{Decoder, parse_head, write_request};

/// How long an idle connection is kept (reqwest's pool: 90 s).
const IDLE_KEEP: Duration = Duration::from_secs(90);

/// First size of a connection's read buffer; it doubles while reads fill it, up to
/// [`READ_MAX`].
const READ_MIN: usize = 4 * 1024;
const READ_MAX: usize = 256 * 1024;

/// A failed send.
#[derive(Debug)]
pub(crate) struct SendError {
    pub(crate) message: String,
    /// The connect timed out.
    pub(crate) timeout: bool,
}

/// One open connection and its read buffer.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    idle_since: Instant,
}

/// Idle kept-alive connections of one target, the most recent last (so the oldest, the first
/// to outlive [`IDLE_KEEP`], are at the front).
#[derive(Default)]
struct Pool(Mutex<VecDeque<Conn>>);

impl Pool {
    /// A kept connection that is still open, if any: ones idle too long, closed by the server
    /// (a read sees its end) or holding unasked-for bytes are dropped.
    fn take(&self) -> Option<Conn> {
        loop {
            let c = self.0.lock().unwrap().pop_back()?;
            if c.idle_since.elapsed() >= IDLE_KEEP {
                continue;
            }
            let mut probe = [0u8; 1];
            match c.stream.try_read(&mut probe) {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Some(c),
                _ => continue,
            }
        }
    }

    /// Keeps `c` for a later request. Constant time: only the front is pruned (a scan of the
    /// whole pool on every return, under the lock, is quadratic when 10,000 streams drain into
    /// it at once).
    fn put(&self, mut c: Conn) {
        c.idle_since = Instant::now();
        let mut idle = self.0.lock().unwrap();
        while idle
            .front()
            .is_some_and(|c| c.idle_since.elapsed() >= IDLE_KEEP)
        {
            idle.pop_front();
        }
        idle.push_back(c);
    }
}

/// Sends to one `http://` target.
pub(crate) struct Direct {
    pool: Arc<Pool>,
    keepalive: bool,
    connect_timeout: Duration,
    /// With the kernel's receive timestamps, a socket that has them on for as long as the
    /// client lives: the kernel stamps packets only while some socket asks, and starts a
    /// little after the first one does (`recv_stamp`), so its connections' first reads
    /// find stamping on, and a gap between connections does not turn it off.
    stamps: Option<socket2::Socket>,
}

/// Where a request goes: the socket address to connect to, the `Host` header, and the
/// request target (path and query).
pub(crate) struct Target {
    host: String,
    port: u16,
    authority: String,
    path: String,
}

impl Target {
    /// `url`'s parts, when it is plain `http://`.
    pub(crate) fn of(url: &str) -> Option<Target> {
        let u = url::Url::parse(url).ok()?;
        if u.scheme() != "http" || !u.username().is_empty() || u.password().is_some() {
            return None;
        }
        let host = match u.host()? {
            url::Host::Domain(d) => d.to_string(),
            url::Host::Ipv4(a) => a.to_string(),
            url::Host::Ipv6(a) => a.to_string(),
        };
        let port = u.port_or_known_default()?;
        let shown = u.host_str()?;
        let authority = match u.port() {
            Some(p) => format!("{shown}:{p}"),
            None => shown.to_string(),
        };
        let mut path = u.path().to_string();
        if let Some(q) = u.query() {
            path.push('?');
            path.push_str(q);
        }
        Some(Target {
            host,
            port,
            authority,
            path,
        })
    }
}

impl Direct {
    /// `stamps`: time response bytes by when the kernel received them, not by when they
    /// were read (see [`Response::chunk`]).
    pub(crate) fn new(keepalive: bool, connect_timeout: Duration, stamps: bool) -> Self {
        let stamps = stamps
            .then(|| {
                let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None);
                s.ok().filter(|s| {
                    crate::recv_stamp::enable(std::os::fd::AsRawFd::as_raw_fd(s)).is_ok()
                })
            })
            .flatten();
        Self {
            pool: Arc::default(),
            keepalive,
            connect_timeout,
            stamps,
        }
    }

    /// Whether response bytes carry the kernel's receive time (it accepted the option).
    pub(crate) fn stamps(&self) -> bool {
        self.stamps.is_some()
    }

    /// Sends one POST and reads the response head. `fresh`: on a connection of its own,
    /// never a kept one. A failure on a kept connection before any byte of a response came
    /// back is [`Reuse::Stale`]: the server closed it unread.
    pub(crate) async fn send<'a>(
        &self,
        to: &Target,
        headers: impl Iterator<Item = (&'a str, &'a [u8])>,
        body: &[u8],
        fresh: bool,
    ) -> Result<Response, (SendError, Reuse)> {
        let mut kept = if fresh || !self.keepalive {
            None
        } else {
            self.pool.take()
        };
        let reused = kept.is_some();
        let fail = |message: String, answered: bool| {
            let stale = reused && !answered;
            (
                SendError {
                    message,
                    timeout: false,
                },
                if stale { Reuse::Stale } else { Reuse::Fresh },
            )
        };
        let mut out = kept
            .as_mut()
            .map(|c| std::mem::take(&mut c.buf))
            .unwrap_or_default();
        write_request(&mut out, &to.path, &to.authority, headers, body);
        // A new connection takes the request with its connect (see `connect`).
        let (mut conn, written) = match kept {
            Some(c) => (c, 0),
            None => self
                .connect(to, &out)
                .await
                .map_err(|e| (e, Reuse::Fresh))?,
        };
        if let Err(e) = conn.stream.write_all(&out[written..]).await {
            return Err(fail(format!("cannot send the request: {e}"), false));
        }
        conn.buf = out;
        if conn.buf.len() < READ_MIN {
            conn.buf.resize(READ_MIN, 0);
        }
        let sent = Instant::now();
        let mut filled = 0;
        loop {
            if filled == conn.buf.len() {
                if conn.buf.len() >= codec::MAX_HEAD * 2 {
                    return Err(fail("response head too long".into(), true));
                }
                conn.buf.resize(conn.buf.len() * 2, 0);
            }
            let (n, stamp) = match recv_stamp::read(&conn.stream, &mut conn.buf[filled..]).await {
                Ok((0, _)) => {
                    return Err(fail(
                        "connection closed before a response".into(),
                        filled > 0,
                    ));
                }
                Ok(r) => r,
                Err(e) => {
                    return Err(fail(
                        format!("connection failed before a response: {e}"),
                        filled > 0,
                    ));
                }
            };
            filled += n;
            // Informational heads (`100 Continue`) are skipped.
            while let Some(head) = parse_head(&conn.buf[..filled]).map_err(|e| fail(e, true))? {
                conn.buf.copy_within(head.len..filled, 0);
                filled -= head.len;
                if (100..200).contains(&head.status) {
                    continue;
                }
                let mut decoder = Decoder::new(head.body);
                // What came with the head: decoded now, handed out by the first read.
                let ready = decoder
                    .decode(&mut conn.buf[..filled])
                    .map_err(|e| fail(e, true))?;
                return Ok(Response {
                    status: head.status,
                    headers: head.headers,
                    keep: self.keepalive && !head.close,
                    conn: Some(conn),
                    decoder,
                    ready,
                    arrived: received(stamp, sent),
                    sent,
                    pool: self.pool.clone(),
                });
            }
        }
    }

    /// A new connection to `to`, with as much of `request` written as went out with the
    /// connect.
    async fn connect(&self, to: &Target, request: &[u8]) -> Result<(Conn, usize), SendError> {
        let opening = connect::open(&to.host, to.port, request, self.stamps.is_some());
        let opened = match tokio::time::timeout(self.connect_timeout, opening).await {
            Err(_) => {
                return Err(SendError {
                    message: format!(
                        "cannot connect to {}: connect timed out after {:?}",
                        to.authority, self.connect_timeout
                    ),
                    timeout: true,
                });
            }
            Ok(Err(connect::OpenError::Connect(e))) => {
                return Err(SendError {
                    message: format!("cannot connect to {}: {e}", to.authority),
                    timeout: false,
                });
            }
            Ok(Err(connect::OpenError::Send(e))) => {
                return Err(SendError {
                    message: format!("cannot send the request: {e}"),
                    timeout: false,
                });
            }
            Ok(Ok(o)) => o,
        };
        let conn = Conn {
            stream: opened.stream,
            buf: Vec::new(),
            idle_since: Instant::now(),
        };
        Ok((conn, opened.written))
    }
}

/// A response whose head was read; its body is read with [`Response::chunk`].
pub(crate) struct Response {
    pub(crate) status: u16,
    headers: Vec<(String, String)>,
    /// The connection may serve another request once the body has ended.
    keep: bool,
    /// `None` once the body ended (the connection went back to the pool or was closed).
    conn: Option<Conn>,
    decoder: Decoder,
    /// Body bytes decoded at the front of the buffer, not yet handed out.
    ready: usize,
    /// When the kernel received the bytes of the read that `ready` came from, if it said.
    arrived: Option<Instant>,
    /// When the request was written: no response byte came before.
    sent: Instant,
    pool: Arc<Pool>,
}

impl Response {
    /// A header's value (`name` lower-case).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The next piece of the body, `None` at its end, with when the kernel received it: on a
    /// connection with receive timestamps on, the time of the newest packet the read took
    /// bytes from, so a client busy when the bytes came still times them when they came;
    /// `None` without. Cancel-safe: a read that is dropped before it completes loses nothing.
    pub(crate) async fn chunk(&mut self) -> Result<Option<(&[u8], Option<Instant>)>, String> {
        loop {
            let Some(conn) = self.conn.as_mut() else {
                return Ok(None);
            };
            if self.ready > 0 {
                let n = std::mem::take(&mut self.ready);
                let bytes = &self.conn.as_ref().expect("open").buf[..n];
                return Ok(Some((bytes, self.arrived)));
            }
            if self.decoder.done() {
                self.release();
                continue;
            }
            let (n, stamp) = match recv_stamp::read(&conn.stream, &mut conn.buf).await {
                Ok((0, _)) => {
                    self.keep = false;
                    self.decoder.eof()?;
                    continue;
                }
                Ok(r) => r,
                Err(e) => return Err(format!("connection failed while reading the body: {e}")),
            };
            self.arrived = received(stamp, self.sent);
            if n == conn.buf.len() && n < READ_MAX {
                // Reads fill the buffer: the next read takes twice as much.
                self.ready = self.decoder.decode(&mut conn.buf[..n])?;
                let mut grown = vec![0; n * 2];
                grown[..self.ready].copy_from_slice(&conn.buf[..self.ready]);
                conn.buf = grown;
            } else {
                self.ready = self.decoder.decode(&mut conn.buf[..n])?;
            }
        }
    }

    /// The body ended: the connection goes back to the pool, or is closed.
    fn release(&mut self) {
        if let Some(c) = self.conn.take()
            && self.keep
            && !self.decoder.excess
        {
            self.pool.put(c);
        }
    }
}

/// A read's kernel timestamp, no earlier than the request's send (a wall clock stepped
/// forward between the packet and the read would put it earlier).
fn received(stamp: Option<Instant>, sent: Instant) -> Option<Instant> {
    stamp.map(|at| at.max(sent))
}

#[cfg(test)]
mod tests;
