//! When bytes reached a TCP socket, from the kernel's receive timestamps (`SO_TIMESTAMPNS`).
//!
//! A socket with timestamps on is read with `recvmsg`, which hands back, beside the bytes, the
//! time the kernel received them: for TCP, the time of the newest packet the read took data
//! from. A program that was busy when the bytes came still learns when they came. The client
//! times response chunks this way (`transport::h1`), and the simulator its requests' arrival
//! (`sim::arrival`).
//!
//! The kernel stamps packets on the wall clock; [`recv`] turns a stamp into an [`Instant`]
//! from its age, so it compares with the process's other monotonic timestamps. The kernel
//! turns stamping on a little after the first socket asks (a deferred work item): until then
//! reads come back unstamped, which [`wait_until_on`] waits out.

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::io::Interest;
use tokio::net::{TcpListener, TcpStream};

/// Turns receive timestamps on for a socket (a listener's accepted sockets inherit it).
pub(crate) fn enable(fd: RawFd) -> io::Result<()> {
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

/// One non-blocking `recvmsg` into `buf`: the bytes read and, when the kernel gave one, when
/// they were received, on this process's monotonic clock.
pub(crate) fn recv(fd: RawFd, buf: &mut [MaybeUninit<u8>]) -> io::Result<(usize, Option<Instant>)> {
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

/// Reads what `stream` has into `buf` (waiting until it has something), with the kernel's
/// receive time of it when the socket has timestamps on. Cancel-safe: nothing is read until
/// the `recvmsg` that returns.
pub(crate) async fn read(
    stream: &TcpStream,
    buf: &mut [u8],
) -> io::Result<(usize, Option<Instant>)> {
    let fd = stream.as_raw_fd();
    // SAFETY: `MaybeUninit<u8>` has the layout of `u8`, and recvmsg writes only initialised
    // bytes into it.
    let buf = unsafe { &mut *(buf as *mut [u8] as *mut [MaybeUninit<u8>]) };
    loop {
        stream.readable().await?;
        match stream.try_io(Interest::READABLE, || recv(fd, buf)) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            r => return r,
        }
    }
}

/// Waits (at most `limit`) until a byte sent over loopback comes back stamped, so that reads
/// from now on carry the kernel's time. False when the time ran out or no probe could run
/// (no loopback in a network namespace).
pub(crate) async fn wait_until_on(limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        match stamps_now().await {
            Ok(true) => return true,
            Ok(false) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(1)).await
            }
            _ => return false,
        }
    }
}

/// Whether a byte sent over loopback now comes with a receive timestamp.
async fn stamps_now() -> io::Result<bool> {
    let probe = TcpListener::bind("127.0.0.1:0").await?;
    enable(probe.as_raw_fd())?;
    let mut client = TcpStream::connect(probe.local_addr()?).await?;
    let (server, _) = probe.accept().await?;
    tokio::io::AsyncWriteExt::write_all(&mut client, b"?").await?;
    let mut byte = [0u8];
    let (_, stamp) = read(&server, &mut byte).await?;
    Ok(stamp.is_some())
}

/// A wall-clock timestamp (what the kernel stamps packets with) on the monotonic clock: its
/// age now, taken from now. A stamp ahead of the wall clock (a clock stepped back since) is
/// taken as now.
fn to_instant(ts: libc::timespec) -> Instant {
    let at = UNIX_EPOCH + Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32);
    let (now, wall) = (Instant::now(), SystemTime::now());
    let age = wall.duration_since(at).unwrap_or_default();
    now.checked_sub(age).unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    /// Bytes written, then read 150 ms later: the stamp is the write's time, not the read's.
    #[tokio::test]
    async fn a_late_read_is_stamped_when_the_bytes_came() {
        assert!(wait_until_on(Duration::from_secs(1)).await, "no stamps");
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        enable(server.as_raw_fd()).unwrap();
        let written = Instant::now();
        client.write_all(b"data: 1\n\n").await.unwrap();
        tokio::time::sleep(Duration::from_millis(150)).await;
        let mut buf = [0u8; 64];
        let (n, stamp) = read(&server, &mut buf).await.unwrap();
        let read_at = Instant::now();
        assert_eq!(&buf[..n], b"data: 1\n\n");
        let at = stamp.expect("a stamp");
        let after_write = at.saturating_duration_since(written);
        assert!(
            at + Duration::from_millis(1) >= written && after_write < Duration::from_millis(20),
            "stamped {after_write:?} after the write"
        );
        assert!(
            read_at.saturating_duration_since(at) >= Duration::from_millis(140),
            "stamped only {:?} before the read",
            read_at.saturating_duration_since(at)
        );
    }

    /// Without timestamps on, reads still work and carry no stamp.
    #[tokio::test]
    async fn a_socket_without_timestamps_reads_unstamped() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        client.write_all(b"x").await.unwrap();
        let mut buf = [0u8; 4];
        let (n, stamp) = read(&server, &mut buf).await.unwrap();
        assert_eq!((n, stamp), (1, None));
    }
}
