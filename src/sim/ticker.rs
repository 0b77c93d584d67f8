//! Fixed mode's fast path for plain OpenAI streams: one thread keeps every such stream in a
//! heap of deadlines and, each time it wakes, writes the chunks due by then for all of them in
//! one pass, one SSE event per stream per due chunk, straight into the response bodies.
//!
//! The general path costs, per token, a timer wake-up, a hop through the engine's token channel
//! and the event task, and a `serde_json::Value` built and printed. Here a token costs a heap
//! pop and push and the event's bytes, formatted from a prefix and suffix made once per stream
//! (the same bytes the general path writes). The send log still times each chunk where it is
//! handed to the connection (`Stamped` in `openai.rs`), so its truth is unchanged. Deadlines are
//! absolute (`t0 + ttft + itl · step`), kept to tens of microseconds like `load::timer`.
//!
//! Used only when nothing else shapes the stream: fixed timing, no fault, no reasoning, no
//! tool call, no `token_bytes`, at least one token.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::thread::Thread;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use serde_json::{Value, json};
use tokio::sync::mpsc::UnboundedSender;

use super::Sim;
use super::engine::{ChunkShape, Counters, Timing};
use super::openai_sse::{Kind, usage};

/// Where a stream's events go (the response body).
pub(super) type BodyTx = UnboundedSender<Result<Bytes, std::io::Error>>;

/// One stream served by the ticker.
pub(super) struct Stream {
    t0: Instant,
    /// Time to first token, image prefill included (ms).
    ttft_ms: f64,
    itl_ms: f64,
    step: u64,
    generated: u64,
    max_tokens: u64,
    seed: u64,
    chunks: ChunkShape,
    /// A token chunk's event is `prefix` + the text as a JSON string + `suffix`.
    prefix: Vec<u8>,
    suffix: Vec<u8>,
    /// Chat: the role chunk, sent with the first token.
    role: Option<Bytes>,
    /// The finish, usage and `[DONE]` events, sent with the last token.
    tail: Vec<Bytes>,
    tx: BodyTx,
    counters: Arc<Counters>,
}

impl Stream {
    fn due(&self) -> Instant {
        let ms = self.ttft_ms + self.itl_ms * self.step as f64;
        self.t0 + Duration::from_secs_f64(ms.max(0.0) / 1000.0)
    }

    /// Sends chunk `step`; false when the stream is done or its reader is gone.
    fn emit(&mut self, buf: &mut Vec<u8>) -> bool {
        if let Some(role) = self.role.take()
            && self.tx.send(Ok(role)).is_err()
        {
            return false;
        }
        let n = self
            .chunks
            .size(self.step)
            .min(self.max_tokens - self.generated);
        let mut text = String::new();
        for _ in 0..n {
            text.push_str(super::text::word(self.seed, self.generated));
            self.generated += 1;
        }
        self.step += 1;
        self.counters
            .generation_tokens
            .fetch_add(n, Ordering::Relaxed);
        buf.clear();
        buf.extend_from_slice(b"data: ");
        buf.extend_from_slice(&self.prefix);
        serde_json::to_writer(&mut *buf, &text).expect("a string serializes");
        buf.extend_from_slice(&self.suffix);
        buf.extend_from_slice(b"\n\n");
        if self.tx.send(Ok(Bytes::copy_from_slice(buf))).is_err() {
            return false;
        }
        if self.generated < self.max_tokens {
            return true;
        }
        self.counters.finished.fetch_add(1, Ordering::Relaxed);
        for e in std::mem::take(&mut self.tail) {
            if self.tx.send(Ok(e)).is_err() {
                break;
            }
        }
        false
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        self.counters.running.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What a fast stream answers: the request's settings the ticker needs.
pub(super) struct Request<'a> {
    pub(super) prompt: &'a str,
    pub(super) max_tokens: Option<u64>,
    pub(super) image_tokens: u64,
    pub(super) kind: Kind,
    pub(super) model: &'a str,
    pub(super) with_usage: bool,
}

fn sse(v: &Value) -> Bytes {
    Bytes::from(format!("data: {v}\n\n"))
}

/// Starts `req` on the ticker when the fast path applies (see the module); `None` leaves it
/// to the general path, having changed nothing.
pub(super) fn start(sim: &Sim, req: &Request<'_>, tx: &BodyTx) -> Option<()> {
    let Timing::Fixed {
        ttft_ms,
        itl_ms,
        tokens,
    } = sim.cfg.timing
    else {
        return None;
    };
    let mut max_tokens = req.max_tokens.unwrap_or(sim.cfg.default_max_tokens as u64);
    if let Some(n) = tokens {
        max_tokens = max_tokens.min(n as u64);
    }
    if max_tokens == 0 || sim.big_token.is_some() {
        return None;
    }
    let id = sim.next_id.fetch_add(1, Ordering::Relaxed);
    let prompt_tokens = super::text::count(req.prompt) + req.image_tokens;
    let blocks = super::text::block_hashes(req.prompt, sim.cfg.block_size);
    let seed = sim.cfg.seed ^ id.wrapping_mul(0x2545_f491_4f6c_dd1d);
    let t0 = Instant::now();
    let cached = sim.engine.admit_fixed(prompt_tokens, &blocks);
    let ids = format!("sim-{id}");
    let object = match req.kind {
        Kind::Chat => "chat.completion.chunk",
        Kind::Text => "text_completion",
    };
    let chunk = |choice: Value| json!({"id": ids, "object": object, "model": req.model, "choices": [choice]});
    const MARK: &str = "@@LLMBENCH-TOKEN@@";
    let (token, last, role) = match req.kind {
        Kind::Chat => (
            json!({"index": 0, "delta": {"content": MARK}, "finish_reason": null}),
            json!({"index": 0, "delta": {}, "finish_reason": "length"}),
            Some(sse(&chunk(
                json!({"index": 0, "delta": {"role": "assistant", "content": ""}}),
            ))),
        ),
        Kind::Text => (
            json!({"index": 0, "text": MARK, "finish_reason": null}),
            json!({"index": 0, "text": "", "finish_reason": "length"}),
            None,
        ),
    };
    let token = chunk(token).to_string();
    let (prefix, suffix) = token.split_once(&format!("\"{MARK}\""))?;
    let mut tail = vec![sse(&chunk(last))];
    if req.with_usage {
        tail.push(sse(
            &json!({"id": ids, "object": object, "model": req.model, "choices": [],
            "usage": usage(prompt_tokens, max_tokens, cached)}),
        ));
    }
    tail.push(Bytes::from_static(b"data: [DONE]\n\n"));
    let counters = sim.engine.counters.clone();
    counters.running.fetch_add(1, Ordering::Relaxed);
    let stream = Stream {
        t0,
        ttft_ms: ttft_ms + req.image_tokens as f64 * sim.cfg.image_ms_per_token,
        itl_ms,
        step: 0,
        generated: 0,
        max_tokens,
        seed,
        chunks: ChunkShape {
            per_chunk: sim.cfg.tokens_per_chunk,
            seed,
        },
        prefix: prefix.as_bytes().to_vec(),
        suffix: suffix.as_bytes().to_vec(),
        role,
        tail,
        tx: tx.clone(),
        counters,
    };
    hand_over(stream);
    Some(())
}

/// New streams for the ticker, and when it will next look at them on its own.
struct Inbox {
    new: Vec<Stream>,
    /// The deadline the ticker sleeps until (`None`: until woken). While it works this is a
    /// time already past, so no new stream wakes it.
    wakes_at: Option<Instant>,
}

static INBOX: Mutex<Inbox> = Mutex::new(Inbox {
    new: Vec::new(),
    wakes_at: None,
});

/// Gives `stream` to the ticker, waking it only when the stream is due before the ticker's
/// own next deadline. With a TTFT of tens of milliseconds that is almost never: a closed loop
/// that opens 1,000 streams at once used to wake the ticker thread 1,000 times (a futex wake
/// and two context switches each, on the simulator's one core, while it was accepting).
fn hand_over(stream: Stream) {
    let due = stream.due();
    let ticker = ticker();
    let wake = {
        let mut inbox = INBOX.lock().unwrap_or_else(PoisonError::into_inner);
        inbox.new.push(stream);
        inbox.wakes_at.is_none_or(|at| due < at)
    };
    if wake {
        ticker.unpark();
    }
}

struct Entry {
    at: Instant,
    seq: u64,
    stream: Box<Stream>,
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

fn ticker() -> &'static Thread {
    static TICKER: OnceLock<Thread> = OnceLock::new();
    TICKER.get_or_init(|| {
        std::thread::Builder::new()
            .name("llmbench-sim-ticker".into())
            .spawn(run)
            .expect("spawn ticker thread")
            .thread()
            .clone()
    })
}

fn run() {
    let mut heap: BinaryHeap<Reverse<Entry>> = BinaryHeap::new();
    let mut seq = 0u64;
    let mut buf = Vec::with_capacity(512);
    let mut new = Vec::new();
    let mut push = |heap: &mut BinaryHeap<Reverse<Entry>>, stream: Box<Stream>| {
        seq += 1;
        heap.push(Reverse(Entry {
            at: stream.due(),
            seq,
            stream,
        }));
    };
    loop {
        // One pass: every chunk due by now, for all streams.
        let now = Instant::now();
        while heap.peek().is_some_and(|Reverse(e)| e.at <= now) {
            let Reverse(mut e) = heap.pop().expect("peeked");
            if e.stream.emit(&mut buf) {
                push(&mut heap, e.stream);
            }
        }
        // New streams, or else publish the deadline to sleep until (before sleeping, so a
        // stream due earlier wakes the ticker; an unpark before the park is not lost).
        {
            let mut inbox = INBOX.lock().unwrap_or_else(PoisonError::into_inner);
            std::mem::swap(&mut inbox.new, &mut new);
            if new.is_empty() {
                inbox.wakes_at = heap.peek().map(|Reverse(e)| e.at);
            }
        }
        if !new.is_empty() {
            new.drain(..).for_each(|s| push(&mut heap, Box::new(s)));
            continue;
        }
        match heap.peek() {
            None => std::thread::park(),
            Some(Reverse(e)) => {
                std::thread::park_timeout(e.at.saturating_duration_since(Instant::now()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::time::{Duration, Instant};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    use crate::sim::engine::Timing;
    use crate::sim::{SimConfig, spawn};

    fn fixed(ttft_ms: f64) -> SimConfig {
        SimConfig {
            timing: Timing::Fixed {
                ttft_ms,
                itl_ms: 10.0,
                tokens: Some(3),
            },
            ..SimConfig::default()
        }
    }

    /// Sends a streamed completion (the ticker's path); returns when its first token event
    /// arrived, counted from the send.
    async fn first_event(addr: SocketAddr) -> Duration {
        let body = r#"{"model":"m","prompt":"hello there","max_tokens":3,"stream":true}"#;
        let mut s = TcpStream::connect(addr).await.expect("connect");
        let t0 = Instant::now();
        let head = format!(
            "POST /v1/completions HTTP/1.1\r\nHost: sim\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        s.write_all(format!("{head}{body}").as_bytes())
            .await
            .expect("send");
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(&got).contains("data: {") {
            let n = s.read(&mut buf).await.expect("read");
            assert!(n > 0, "closed before the first event");
            got.extend_from_slice(&buf[..n]);
        }
        t0.elapsed()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stream_due_before_the_tickers_deadline_wakes_it() {
        let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let slow = spawn(fixed(3_000.0), any).await.unwrap();
        let fast = spawn(fixed(20.0), any).await.unwrap();
        // The slow stream sets the ticker's deadline about 3 s ahead (when no other stream of
        // this test process is due sooner); the fast one, due in 20 ms, must wake it.
        let slow_first = tokio::spawn(first_event(slow.addr));
        tokio::time::sleep(Duration::from_millis(100)).await;
        let took = first_event(fast.addr).await;
        assert!(
            took >= Duration::from_millis(20) && took < Duration::from_millis(1_000),
            "first event after {took:?} (truth 20 ms; the ticker slept to its old deadline?)"
        );
        // And the slow stream still comes when it is due, not before.
        let slow_took = slow_first.await.unwrap();
        assert!(slow_took >= Duration::from_millis(3_000), "{slow_took:?}");
        slow.stop().await;
        fast.stop().await;
    }
}
