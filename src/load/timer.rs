//! A precise timer for async code.
//!
//! Tokio's timer wheel has a 1 ms resolution and rounds deadlines up, so a task asleep until
//! `t` wakes anywhere in `t .. t + ~1.5 ms`. That is too coarse for a simulator whose truth
//! must be exact to well under a millisecond, and for open-loop schedules at thousands of
//! requests per second. One OS thread keeps a heap of deadlines and sleeps on a channel with
//! a timeout (a futex wait backed by high-resolution kernel timers), waking each task within
//! tens of microseconds of its deadline.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::OnceLock;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

struct Entry {
    at: Instant,
    seq: u64,
    tx: oneshot::Sender<()>,
}

impl PartialEq for Entry {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Entry {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(o.at, o.seq))
    }
}

type Wake = (Instant, oneshot::Sender<()>);

fn timer() -> &'static Sender<Wake> {
    static TIMER: OnceLock<Sender<Wake>> = OnceLock::new();
    TIMER.get_or_init(|| {
        let (tx, rx) = channel();
        std::thread::Builder::new()
            .name("llmbench-timer".into())
            .spawn(move || timer_thread(rx))
            .expect("spawn timer thread");
        tx
    })
}

fn timer_thread(rx: Receiver<Wake>) {
    let mut heap: BinaryHeap<Reverse<Entry>> = BinaryHeap::new();
    let mut seq = 0u64;
    loop {
        let now = Instant::now();
        while heap.peek().is_some_and(|Reverse(e)| e.at <= now) {
            let Reverse(e) = heap.pop().expect("peeked");
            let _ = e.tx.send(());
        }
        let got = match heap.peek() {
            None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
            Some(Reverse(e)) => rx.recv_timeout(e.at.saturating_duration_since(now)),
        };
        match got {
            Ok((at, tx)) => {
                seq += 1;
                heap.push(Reverse(Entry { at, seq, tx }));
                // Take everything already queued before sleeping again.
                while let Ok((at, tx)) = rx.try_recv() {
                    seq += 1;
                    heap.push(Reverse(Entry { at, seq, tx }));
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// Sleeps until `deadline` with sub-millisecond precision.
pub async fn sleep_until(deadline: Instant) {
    let now = Instant::now();
    if deadline <= now {
        return;
    }
    // Far deadlines: let Tokio's wheel do most of the wait, then finish precisely.
    let coarse = Duration::from_millis(20);
    if deadline - now > coarse {
        tokio::time::sleep_until((deadline - coarse).into()).await;
    }
    let (tx, rx) = oneshot::channel();
    if timer().send((deadline, tx)).is_ok() {
        let _ = rx.await;
    } else {
        tokio::time::sleep_until(deadline.into()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn wakes_close_to_the_deadline_and_never_early() {
        // The unit tests run in parallel and are done within a few seconds: a miss is tried
        // again, 1.5 s later each time, until the machine is quiet; early wake-ups fail at once.
        let mut misses = Vec::new();
        for attempt in 0..6u64 {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(1500 * attempt)).await;
            }
            let (m, t) = lateness().await;
            // Well under Tokio's 1 ms granularity; on a machine too busy for that, still at
            // most half of Tokio's lateness measured in the same moments.
            if m < 0.5 || m < t / 2.0 {
                return;
            }
            misses.push(format!("median lateness {m} ms, Tokio's {t} ms"));
        }
        panic!("{misses:?}");
    }

    /// Median lateness in ms of 40 wake-ups: ours, then Tokio's own timer on the same deadlines.
    async fn lateness() -> (f64, f64) {
        let mut ours = Vec::new();
        let mut tokio_s = Vec::new();
        for i in 0..40u64 {
            let at = Instant::now() + Duration::from_micros(700 + i * 137);
            sleep_until(at).await;
            let now = Instant::now();
            assert!(now >= at, "woke {:?} before the deadline", at - now);
            ours.push((now - at).as_secs_f64() * 1e3);
            let at = Instant::now() + Duration::from_micros(700 + i * 137);
            tokio::time::sleep_until(at.into()).await;
            tokio_s.push(Instant::now().duration_since(at).as_secs_f64() * 1e3);
        }
        ours.sort_by(f64::total_cmp);
        tokio_s.sort_by(f64::total_cmp);
        (ours[20], tokio_s[20])
    }
}
