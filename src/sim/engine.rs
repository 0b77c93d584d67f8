//! The simulator's timing: a fixed mode with exact known timings, and a model of a
//! continuous-batching engine.
//!
//! Engine model, one step at a time: waiting sequences are admitted while the batch has room
//! (up to `max_batch`); a step costs `decode_ms + decode_ms_per_seq · batch` plus
//! `prefill_ms_per_token` for every prompt token admitted in it that the prefix cache did not
//! hold; at the end of each step every running sequence emits one token (a newly admitted one
//! its first). Steps follow absolute deadlines, so timer lateness never accumulates.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use std::time::Instant;
use tokio::sync::mpsc;

/// Costs of the engine model.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EngineConfig {
    /// Prefill cost per uncached prompt token (ms).
    pub prefill_ms_per_token: f64,
    /// Base cost of one decode step (ms).
    pub decode_ms: f64,
    /// Extra cost of a decode step per running sequence (ms).
    pub decode_ms_per_seq: f64,
    /// Most sequences decoded together; more wait in a queue.
    pub max_batch: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            prefill_ms_per_token: 0.02,
            decode_ms: 8.0,
            decode_ms_per_seq: 0.1,
            max_batch: 32,
        }
    }
}

/// How the simulator times its output.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "mode")]
pub enum Timing {
    /// Every request alone: first token `ttft_ms` after arrival, then one every `itl_ms`.
    Fixed {
        /// Time to first token (ms).
        ttft_ms: f64,
        /// Gap between tokens (ms).
        itl_ms: f64,
        /// Output tokens per request (capped by the request's max_tokens).
        tokens: Option<u32>,
    },
    /// The continuous-batching model.
    Engine(EngineConfig),
}

/// Prefix cache: which prompt blocks are resident, evicting the least recently used.
#[derive(Debug)]
pub struct PrefixCache {
    capacity: usize,
    tick: u64,
    blocks: HashMap<u64, u64>,
}

impl PrefixCache {
    /// A cache holding `capacity` blocks (0 disables it).
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            tick: 0,
            blocks: HashMap::new(),
        }
    }

    /// Number of leading blocks already resident; then makes all of them resident.
    pub fn lookup_insert(&mut self, hashes: &[u64]) -> usize {
        if self.capacity == 0 {
            return 0;
        }
        self.tick += 1;
        let hit = hashes
            .iter()
            .take_while(|h| self.blocks.contains_key(h))
            .count();
        for h in hashes {
            self.blocks.insert(*h, self.tick);
        }
        if self.blocks.len() > self.capacity {
            let mut ages: Vec<(u64, u64)> = self.blocks.iter().map(|(h, t)| (*t, *h)).collect();
            ages.sort_unstable();
            let excess = self.blocks.len() - self.capacity;
            for (_, h) in ages.into_iter().take(excess) {
                self.blocks.remove(&h);
            }
        }
        hit
    }

    /// Fraction of the capacity in use (0 when the cache is disabled).
    pub fn usage(&self) -> f64 {
        if self.capacity == 0 {
            0.0
        } else {
            self.blocks.len() as f64 / self.capacity as f64
        }
    }
}

/// Counters the simulator keeps (exposed on /metrics).
#[derive(Debug, Default)]
pub struct Counters {
    /// Requests received.
    pub requests: AtomicU64,
    /// Requests finished (all tokens sent).
    pub finished: AtomicU64,
    /// Prompt tokens received.
    pub prompt_tokens: AtomicU64,
    /// Tokens generated.
    pub generation_tokens: AtomicU64,
    /// Prompt tokens looked up in the prefix cache.
    pub cache_queries: AtomicU64,
    /// Prompt tokens found in the prefix cache.
    pub cache_hits: AtomicU64,
    /// Sequences running in the engine now.
    pub running: AtomicU64,
    /// Sequences waiting for a batch slot now.
    pub waiting: AtomicU64,
}

/// What a generation stream carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ev {
    /// The sequence was admitted; this many prompt tokens came from the prefix cache.
    Admitted {
        /// Cached prompt tokens.
        cached_tokens: u64,
    },
    /// One generated token.
    Token(&'static str),
}

/// One sequence to generate.
pub struct Seq {
    /// Prompt tokens.
    pub prompt_tokens: u64,
    /// Prefix-cache block hashes of the prompt.
    pub blocks: Vec<u64>,
    /// Tokens to generate.
    pub max_tokens: u64,
    /// Seed of the generated words.
    pub seed: u64,
    /// Where tokens go; a closed receiver aborts the sequence.
    pub tx: mpsc::UnboundedSender<Ev>,
    /// How many tokens each streamed chunk carries (fixed mode: a chunk's tokens are all
    /// generated at its step).
    pub chunks: ChunkShape,
    /// Fixed mode: added to the time to first token (the images' prefill).
    pub extra_ttft_ms: f64,
    /// When it was submitted: an idle engine starts its first step from here, so the
    /// scheduling delay of the step task does not leak into the simulated timing.
    submitted: Instant,
    generated: u64,
}

/// Tokens per streamed chunk: `per_chunk` each, or (0) a seeded mix of 1 to 4.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkShape {
    /// Tokens per chunk; 0 for the mix.
    pub per_chunk: u32,
    /// Seed of the mix.
    pub seed: u64,
}

impl Default for ChunkShape {
    fn default() -> Self {
        Self {
            per_chunk: 1,
            seed: 0,
        }
    }
}

impl ChunkShape {
    /// Tokens in chunk number `i` (from 0).
    pub fn size(&self, i: u64) -> u64 {
        match self.per_chunk {
            0 => 1 + crate::rng::splitmix64(self.seed ^ i.wrapping_mul(0x9E37_79B9)) % 4,
            k => u64::from(k),
        }
    }
}

impl Seq {
    /// A new sequence.
    pub fn new(
        prompt_tokens: u64,
        blocks: Vec<u64>,
        max_tokens: u64,
        seed: u64,
        tx: mpsc::UnboundedSender<Ev>,
    ) -> Self {
        Self {
            prompt_tokens,
            blocks,
            max_tokens,
            seed,
            tx,
            chunks: ChunkShape::default(),
            extra_ttft_ms: 0.0,
            submitted: Instant::now(),
            generated: 0,
        }
    }

    /// Emits the next token; false when the sequence is finished or its reader is gone.
    fn emit(&mut self, counters: &Counters) -> bool {
        let w = super::text::word(self.seed, self.generated);
        self.generated += 1;
        counters.generation_tokens.fetch_add(1, Ordering::Relaxed);
        let alive = self.tx.send(Ev::Token(w)).is_ok();
        if self.generated >= self.max_tokens {
            counters.finished.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        alive
    }
}

/// Shared state of the timing side.
pub struct Engine {
    timing: Timing,
    block: usize,
    cache: Mutex<PrefixCache>,
    /// Counters.
    pub counters: Arc<Counters>,
    queue: Option<mpsc::UnboundedSender<Seq>>,
}

impl Engine {
    /// Starts the engine (spawns its step loop in engine mode; needs a Tokio runtime).
    pub fn start(timing: Timing, block: usize, cache_blocks: usize) -> Arc<Self> {
        let counters = Arc::new(Counters::default());
        let (queue, rx) = mpsc::unbounded_channel();
        let engine = Arc::new(Self {
            timing,
            block,
            cache: Mutex::new(PrefixCache::new(cache_blocks)),
            counters,
            queue: matches!(timing, Timing::Engine(_)).then_some(queue),
        });
        if let Timing::Engine(cfg) = timing {
            tokio::spawn(step_loop(cfg, rx, Arc::downgrade(&engine)));
        }
        engine
    }

    /// Fraction of the prefix cache in use.
    pub fn cache_usage(&self) -> f64 {
        self.cache.lock().expect("cache").usage()
    }

    /// Prefix-cache block size in tokens.
    pub fn block(&self) -> usize {
        self.block
    }

    /// Looks a prompt up in the prefix cache and counts it; returns its cached tokens.
    fn lookup(&self, prompt_tokens: u64, blocks: &[u64]) -> u64 {
        let hit_blocks = self.cache.lock().expect("cache").lookup_insert(blocks);
        let cached = (hit_blocks * self.block) as u64;
        let c = &self.counters;
        c.cache_queries.fetch_add(prompt_tokens, Ordering::Relaxed);
        c.cache_hits.fetch_add(cached, Ordering::Relaxed);
        cached
    }

    fn admit(&self, seq: &Seq) -> u64 {
        let cached = self.lookup(seq.prompt_tokens, &seq.blocks);
        let _ = seq.tx.send(Ev::Admitted {
            cached_tokens: cached,
        });
        cached
    }

    /// Fixed mode's fast path ([`super::ticker`]): counts a request and admits its prompt
    /// without a token channel; returns its cached prompt tokens.
    pub(crate) fn admit_fixed(&self, prompt_tokens: u64, blocks: &[u64]) -> u64 {
        let c = &self.counters;
        c.requests.fetch_add(1, Ordering::Relaxed);
        c.prompt_tokens.fetch_add(prompt_tokens, Ordering::Relaxed);
        self.lookup(prompt_tokens, blocks)
    }

    /// Starts generating `seq`; its tokens arrive on its channel.
    pub fn submit(&self, mut seq: Seq) {
        let c = &self.counters;
        c.requests.fetch_add(1, Ordering::Relaxed);
        c.prompt_tokens
            .fetch_add(seq.prompt_tokens, Ordering::Relaxed);
        match self.timing {
            Timing::Fixed {
                ttft_ms,
                itl_ms,
                tokens,
            } => {
                if let Some(n) = tokens {
                    seq.max_tokens = seq.max_tokens.min(n as u64);
                }
                self.admit(&seq);
                let counters = self.counters.clone();
                let t0 = Instant::now();
                tokio::spawn(async move {
                    if seq.max_tokens == 0 {
                        return;
                    }
                    counters.running.fetch_add(1, Ordering::Relaxed);
                    // Chunk `step` goes out `step` gaps after the first; its tokens all at once.
                    let (mut step, mut in_step) = (0u64, 0u64);
                    loop {
                        let at = t0 + ms(ttft_ms + seq.extra_ttft_ms + itl_ms * step as f64);
                        crate::load::timer::sleep_until(at).await;
                        if !seq.emit(&counters) {
                            break;
                        }
                        in_step += 1;
                        if in_step == seq.chunks.size(step) {
                            step += 1;
                            in_step = 0;
                        }
                    }
                    counters.running.fetch_sub(1, Ordering::Relaxed);
                });
            }
            Timing::Engine(_) => {
                c.waiting.fetch_add(1, Ordering::Relaxed);
                if let Some(q) = &self.queue {
                    let _ = q.send(seq);
                }
            }
        }
    }
}

fn ms(x: f64) -> Duration {
    Duration::from_secs_f64(x.max(0.0) / 1000.0)
}

async fn step_loop(
    cfg: EngineConfig,
    mut rx: mpsc::UnboundedReceiver<Seq>,
    engine: std::sync::Weak<Engine>,
) {
    let mut waiting: VecDeque<Seq> = VecDeque::new();
    let mut running: Vec<Seq> = Vec::new();
    let mut clock = Instant::now();
    loop {
        if waiting.is_empty() && running.is_empty() {
            match rx.recv().await {
                Some(s) => {
                    clock = s.submitted;
                    waiting.push_back(s);
                }
                None => return,
            }
        }
        while let Ok(s) = rx.try_recv() {
            waiting.push_back(s);
        }
        let Some(engine) = engine.upgrade() else {
            return;
        };
        let mut prefill = 0u64;
        while running.len() < cfg.max_batch.max(1) {
            let Some(seq) = waiting.pop_front() else {
                break;
            };
            if seq.tx.is_closed() {
                continue;
            }
            let cached = engine.admit(&seq);
            prefill += seq.prompt_tokens.saturating_sub(cached);
            running.push(seq);
        }
        let c = &engine.counters;
        c.running.store(running.len() as u64, Ordering::Relaxed);
        c.waiting.store(waiting.len() as u64, Ordering::Relaxed);
        let step = cfg.decode_ms
            + cfg.decode_ms_per_seq * running.len() as f64
            + cfg.prefill_ms_per_token * prefill as f64;
        clock += ms(step);
        // Never make up for lost time with a burst: a late step starts the next one from now.
        let now = Instant::now();
        if clock + ms(step) < now {
            clock = now;
        }
        crate::load::timer::sleep_until(clock).await;
        running.retain_mut(|s| s.emit(c));
        c.running.store(running.len() as u64, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_cache_counts_leading_blocks_and_evicts_lru() {
        let mut c = PrefixCache::new(3);
        assert_eq!(c.lookup_insert(&[1, 2, 3]), 0);
        assert_eq!(c.lookup_insert(&[1, 2, 9]), 2);
        // 4 blocks exceed 3: the oldest (3) goes.
        assert_eq!(c.lookup_insert(&[1, 2, 3]), 2);
        assert_eq!(PrefixCache::new(0).lookup_insert(&[1]), 0);
    }

    async fn run(engine: &Arc<Engine>, prompt_tokens: u64, n: u64) -> (Vec<Instant>, u64) {
        let (tx, mut rx) = mpsc::unbounded_channel();
        engine.submit(Seq::new(prompt_tokens, vec![], n, 1, tx));
        let mut times = Vec::new();
        let mut cached = 0;
        while let Some(ev) = rx.recv().await {
            match ev {
                Ev::Admitted { cached_tokens } => cached = cached_tokens,
                Ev::Token(_) => times.push(Instant::now()),
            }
        }
        (times, cached)
    }

    /// Milliseconds since `t0`, and whether each is within 1.5 ms of `want` and never early.
    fn close(got: &[Instant], t0: Instant, want: &[f64]) -> Result<(), String> {
        let got: Vec<f64> = got
            .iter()
            .map(|t| t.duration_since(t0).as_secs_f64() * 1e3)
            .collect();
        let ok = got.len() == want.len()
            && got
                .iter()
                .zip(want)
                .all(|(g, w)| *g >= w - 0.05 && g - w < 1.5);
        if ok {
            Ok(())
        } else {
            Err(format!("got {got:?}, want {want:?}"))
        }
    }

    /// Wall-clock checks on a loaded machine (CI, parallel builds) can miss by the OS's
    /// scheduling delay; the property is that the engine *can* keep these times, so each
    /// check gets up to six attempts with a fresh engine. Lateness never counts as early. The
    /// unit tests run in parallel and are done within a few seconds (seen on a clean CI-like
    /// build: three attempts 1.5 s apart all met the parallel tests): a missed attempt waits
    /// 1.5 s more each time, so later ones meet a quiet machine.
    async fn within_attempts<F, Fut>(f: F)
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<(), String>>,
    {
        let mut errs = Vec::new();
        for attempt in 0..6u64 {
            if attempt > 0 {
                tokio::time::sleep(std::time::Duration::from_millis(1500 * attempt)).await;
            }
            match f().await {
                Ok(()) => return,
                Err(e) => errs.push(e),
            }
        }
        panic!("six attempts missed: {errs:#?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn fixed_mode_times_are_exact() {
        within_attempts(|| async {
            let e = Engine::start(
                Timing::Fixed {
                    ttft_ms: 50.0,
                    itl_ms: 20.0,
                    tokens: Some(5),
                },
                16,
                0,
            );
            let t0 = Instant::now();
            let (times, _) = run(&e, 10, 100).await;
            close(&times, t0, &[50.0, 70.0, 90.0, 110.0, 130.0])
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn engine_steps_cost_prefill_and_batch() {
        within_attempts(|| async {
            let cfg = EngineConfig {
                prefill_ms_per_token: 0.5,
                decode_ms: 10.0,
                decode_ms_per_seq: 1.0,
                max_batch: 1,
            };
            let e = Engine::start(Timing::Engine(cfg), 16, 0);
            let t0 = Instant::now();
            let a = tokio::spawn({
                let e = e.clone();
                async move { run(&e, 100, 3).await }
            });
            let b = tokio::spawn({
                let e = e.clone();
                async move { run(&e, 100, 3).await }
            });
            let (mut a, _) = a.await.unwrap();
            let (mut b, _) = b.await.unwrap();
            if b[0] < a[0] {
                std::mem::swap(&mut a, &mut b);
            }
            // Batch of 1: first step 10 + 1 + 50 (prefill) = 61, then 11 per step.
            close(&a, t0, &[61.0, 72.0, 83.0])?;
            // The second waits in the queue for the first to finish.
            close(&b, t0, &[144.0, 155.0, 166.0])
        })
        .await;
    }
}
