//! The simulated inference server: `fn app(SimConfig) -> Router`, plus its engine model.
//!
//! It speaks the protocols llmbench measures, with timing from [`engine`], so llmbench can run
//! with nothing else installed and its own accuracy can be tested against known truth.

mod arrival;
mod embed;
pub mod engine;
pub mod fault;
pub mod media;
pub mod metrics;
pub mod openai;
mod openai_sse;
pub mod text;
mod ticker;

pub mod generate;
pub mod llamacpp;
pub mod ollama;
pub mod tgi;
pub mod wire;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::routing::get;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use engine::{Engine, Ev, Seq, Timing};

/// Name the simulator gives its model.
pub const DEFAULT_MODEL: &str = "llmbench-sim";

/// Simulator settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimConfig {
    /// Model name reported by the server.
    pub model: String,
    /// Timing model.
    pub timing: Timing,
    /// Output tokens when a request sets no limit.
    pub default_max_tokens: u32,
    /// Context length reported by the server (tokens).
    pub context_length: u64,
    /// Prefix-cache block size (tokens).
    pub block_size: usize,
    /// Prefix-cache capacity (blocks; 0 disables the cache).
    pub cache_blocks: usize,
    /// Seed of the generated text.
    pub seed: u64,
    /// Every token is this many bytes of text instead of a word (huge-event stress test).
    #[serde(default)]
    pub token_bytes: Option<usize>,
    /// Fault injection (none by default).
    #[serde(default)]
    pub faults: fault::FaultConfig,
    /// Send log (`--send-log`): per streamed response, its request id and chunk send times.
    #[serde(default)]
    pub send_log: Option<std::path::PathBuf>,
    /// The first this many tokens of each chat reply are reasoning (`reasoning_content`;
    /// Ollama `thinking`), the rest the answer; usage reports them as `reasoning_tokens`.
    #[serde(default)]
    pub reasoning_tokens: u64,
    /// Tokens per streamed chunk (speculative decoding sends several); 0 means a random mix
    /// of 1 to 4 per chunk (seeded).
    #[serde(default = "one")]
    pub tokens_per_chunk: u32,
    /// Chat requests that offer `tools` are answered with a call of the first one.
    #[serde(default)]
    pub tool_calls: bool,
    /// Fixed mode: what each image token adds to the time to first token (ms; the engine
    /// model prefills image tokens like any prompt token). See [`image`].
    #[serde(default)]
    pub image_ms_per_token: f64,
}

fn one() -> u32 {
    1
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            model: DEFAULT_MODEL.into(),
            timing: Timing::Engine(engine::EngineConfig::default()),
            default_max_tokens: 128,
            context_length: 131_072,
            block_size: 16,
            cache_blocks: 65_536,
            seed: 0,
            token_bytes: None,
            faults: fault::FaultConfig::default(),
            send_log: None,
            reasoning_tokens: 0,
            tokens_per_chunk: 1,
            tool_calls: false,
            image_ms_per_token: 0.0,
        }
    }
}

/// Shared state of a running simulator.
pub struct Sim {
    /// Settings.
    pub cfg: SimConfig,
    /// Timing engine and counters.
    pub engine: Arc<Engine>,
    next_id: AtomicU64,
    /// `token_bytes` mode: the text of every token, built once per simulator (leaked: it
    /// lives as long as the process, like the built-in vocabulary).
    big_token: Option<&'static str>,
    /// Models pulled through the Ollama API (`/api/pull`), besides `cfg.model`.
    pub pulled: std::sync::Mutex<Vec<String>>,
    /// Fault injection and its counters.
    pub faults: Arc<fault::Injector>,
    /// When the simulator started (`arrived_ms` in the send log counts from here).
    pub started: std::time::Instant,
    /// `--send-log`, open.
    pub send_log: Option<Arc<std::sync::Mutex<std::io::LineWriter<std::fs::File>>>>,
}

/// A generation in progress: its size and its token stream.
pub struct Generation {
    /// Request number (for ids).
    pub id: u64,
    /// Prompt tokens.
    pub prompt_tokens: u64,
    /// Tokens that will be generated.
    pub max_tokens: u64,
    /// Admission and token events.
    pub rx: mpsc::UnboundedReceiver<Ev>,
    /// Tokens per streamed chunk.
    pub chunks: engine::ChunkShape,
}

impl Sim {
    /// Starts the engine (needs a Tokio runtime).
    pub fn new(cfg: SimConfig) -> Arc<Self> {
        let engine = Engine::start(cfg.timing, cfg.block_size, cfg.cache_blocks);
        let big_token = cfg.token_bytes.map(|n| {
            let s: String = "lorem ipsum ".chars().cycle().take(n).collect();
            &*Box::leak(s.into_boxed_str())
        });
        let faults = fault::Injector::new(cfg.faults.clone());
        let send_log = cfg
            .send_log
            .as_ref()
            .and_then(|p| match std::fs::File::create(p) {
                Ok(f) => Some(Arc::new(std::sync::Mutex::new(std::io::LineWriter::new(f)))),
                Err(e) => {
                    eprintln!("warning: --send-log {}: {e}; no send log", p.display());
                    None
                }
            });
        Arc::new(Self {
            started: std::time::Instant::now(),
            send_log,
            cfg,
            engine,
            next_id: AtomicU64::new(0),
            big_token,
            pulled: std::sync::Mutex::new(Vec::new()),
            faults,
        })
    }

    /// Starts generating a response to `prompt`.
    pub fn generate(&self, prompt: &str, max_tokens: Option<u64>) -> Generation {
        self.generate_with_images(prompt, max_tokens, 0)
    }

    /// Starts generating a response to `prompt` and images of `image_tokens` tokens in all.
    pub fn generate_with_images(
        &self,
        prompt: &str,
        max_tokens: Option<u64>,
        image_tokens: u64,
    ) -> Generation {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let prompt_tokens = text::count(prompt) + image_tokens;
        let blocks = text::block_hashes(prompt, self.cfg.block_size);
        let max_tokens = max_tokens.unwrap_or(self.cfg.default_max_tokens as u64);
        let (tx, rx) = mpsc::unbounded_channel();
        let seed = self.cfg.seed ^ id.wrapping_mul(0x2545_f491_4f6c_dd1d);
        let mut seq = Seq::new(prompt_tokens, blocks, max_tokens, seed, tx);
        let chunks = engine::ChunkShape {
            per_chunk: self.cfg.tokens_per_chunk,
            seed,
        };
        seq.chunks = chunks;
        seq.extra_ttft_ms = image_tokens as f64 * self.cfg.image_ms_per_token;
        let max_tokens = match self.cfg.timing {
            Timing::Fixed {
                tokens: Some(n), ..
            } => max_tokens.min(n as u64),
            _ => max_tokens,
        };
        self.engine.submit(seq);
        let rx = match self.big_token {
            None => rx,
            Some(big) => big_tokens(rx, big),
        };
        Generation {
            id,
            prompt_tokens,
            max_tokens,
            rx,
            chunks,
        }
    }
}

impl Generation {
    /// Waits for every token; returns the first `reasoning` tokens' text, the rest, the
    /// token count and the cached prompt tokens.
    pub async fn collect_split(mut self, reasoning: u64) -> (String, String, u64, u64) {
        let (mut thought, mut text) = (String::new(), String::new());
        let (mut n, mut cached) = (0, 0);
        while let Some(ev) = self.rx.recv().await {
            match ev {
                Ev::Admitted { cached_tokens } => cached = cached_tokens,
                Ev::Token(w) => {
                    n += 1;
                    if n <= reasoning {
                        thought.push_str(w);
                    } else {
                        text.push_str(w);
                    }
                }
            }
        }
        (thought, text, n, cached)
    }

    /// Waits for every token; returns the text and the cached prompt tokens.
    pub async fn collect(mut self) -> (String, u64, u64) {
        let mut text = String::new();
        let mut cached = 0;
        let mut n = 0;
        while let Some(ev) = self.rx.recv().await {
            match ev {
                Ev::Admitted { cached_tokens } => cached = cached_tokens,
                Ev::Token(w) => {
                    text.push_str(w);
                    n += 1;
                }
            }
        }
        (text, n, cached)
    }
}

/// Replaces every token of a stream by `big` (the `token_bytes` stress mode).
fn big_tokens(
    mut rx: mpsc::UnboundedReceiver<Ev>,
    big: &'static str,
) -> mpsc::UnboundedReceiver<Ev> {
    let (tx, out) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(ev) = rx.recv().await {
            let ev = match ev {
                Ev::Token(_) => Ev::Token(big),
                other => other,
            };
            if tx.send(ev).is_err() {
                break;
            }
        }
    });
    out
}

/// The simulator's HTTP routes.
pub fn app(sim: Arc<Sim>) -> Router {
    Router::new()
        .route("/health", get(|| async { "ok" }))
        .merge(openai::routes())
        .merge(embed::routes())
        .merge(ollama::routes())
        .merge(tgi::routes())
        .merge(llamacpp::routes())
        .merge(generate::routes())
        .merge(metrics::routes())
        .merge(fault::routes())
        .with_state(sim)
        // Long-context requests (a 128k-token prompt is ~0.5 MiB of text; stress tests send
        // more): axum's 2 MB default would answer 413 where real servers accept the body.
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
}

/// Largest request body the simulator accepts.
pub const MAX_BODY_BYTES: usize = 64 << 20;

/// A simulator serving on a bound address.
pub struct Running {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The simulator's state (counters, config).
    pub sim: Arc<Sim>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Base URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting and waits (at most a second) for open responses to finish; a response
    /// stalled on purpose (fault injection) does not hold the caller.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if tokio::time::timeout(std::time::Duration::from_secs(1), &mut self.task)
            .await
            .is_err()
        {
            self.task.abort();
        }
    }
}

/// Connections the kernel holds for the simulator before it accepts them (capped by the
/// system's `somaxconn`). Tokio's default, 128 here, overflowed when a closed loop opened
/// 1,000 connections at once: each dropped connection cost its client a SYN retransmit (1 s),
/// which the TTFT error of the overhead matrix then showed. uvicorn (vLLM) listens with 2,048.
const BACKLOG: u32 = 4096;

/// A listening socket on `addr` with [`BACKLOG`].
fn listen(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

/// Binds `addr` (port 0 picks a free one) and serves in the background.
pub async fn spawn(cfg: SimConfig, addr: SocketAddr) -> std::io::Result<Running> {
    let listener = listen(addr)?;
    let addr = listener.local_addr()?;
    let sim = Sim::new(cfg);
    let router = app(sim.clone());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let stop = async {
        let _ = rx.await;
    };
    // With a send log, requests carry when they reached the socket (the kernel's timestamp),
    // so the log can tell the simulator's own read queue from the client's sending.
    let task = if sim.send_log.is_some() {
        let listener = arrival::ArrivalListener::new(listener).await?;
        let app = router.into_make_service_with_connect_info::<arrival::SocketClock>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(stop)
                .await;
        })
    } else {
        use axum::serve::ListenerExt;
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        tokio::spawn(async move {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(stop)
                .await;
        })
    };
    Ok(Running {
        addr,
        sim,
        shutdown: Some(tx),
        task,
    })
}

/// One line describing the simulator's timing.
pub fn describe_timing(cfg: &SimConfig) -> String {
    match cfg.timing {
        engine::Timing::Fixed {
            ttft_ms,
            itl_ms,
            tokens,
        } => format!(
            "fixed timing: TTFT {ttft_ms} ms, ITL {itl_ms} ms{}",
            tokens.map(|n| format!(", {n} tokens")).unwrap_or_default()
        ),
        engine::Timing::Engine(e) => format!(
            "engine model: prefill {} ms/token, decode {} ms + {} ms/sequence per step, batch ≤ {}",
            e.prefill_ms_per_token, e.decode_ms, e.decode_ms_per_seq, e.max_batch
        ),
    }
}
