//! Fault injection: the simulator misbehaves on purpose, so llmbench's outcome accounting can be
//! tested against every way a real server fails.
//!
//! Each generation request draws a number from a counter-based hash of (seed, request index):
//! below `rate` it gets one fault, picked among the configured kinds by the same hash. The draw
//! depends only on the seed and the arrival order, so a run is reproducible. `GET /sim/faults`
//! reports how many requests arrived and how many got each fault, so tests can compare the
//! client's outcome counts with what the server really did.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::Sim;

/// One way to misbehave.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Fault {
    /// HTTP 429 without Retry-After.
    Http429,
    /// HTTP 429 with `Retry-After: 1`.
    Http429RetryAfter,
    /// HTTP 500.
    Http500,
    /// HTTP 503 (with `Retry-After: 1`).
    Http503,
    /// HTTP 401.
    Http401,
    /// A 200 stream that carries an OpenAI error object after k tokens.
    ErrorEvent,
    /// A 200 stream that carries a TGI-style string error (`{"error":"..."}`) after k tokens.
    ErrorString,
    /// A complete stream with no generated text.
    Empty,
    /// The stream ends without `data: [DONE]`.
    NoDone,
    /// `data: [DONE]` twice.
    DoubleDone,
    /// No usage chunk even though it was asked for.
    NoUsage,
    /// The usage chunk comes after `[DONE]`.
    LateUsage,
    /// The connection is cut after k tokens.
    Reset,
    /// No response headers for `stall`.
    StallHeaders,
    /// Silence for `stall` after k tokens.
    StallMid,
    /// Every byte written on its own, `trickle_ms` apart.
    Trickle,
    /// CRLF line endings.
    Crlf,
    /// Bare CR line endings.
    Cr,
    /// Comment (ping) lines and `event:`/`id:`/`retry:` fields around every event.
    Pings,
    /// Every event's JSON spread over several `data:` lines.
    Multiline,
    /// Every event written in pieces at rotating offsets, text with multi-byte UTF-8.
    Split,
    /// Several events per write.
    Packed,
    /// An invalid UTF-8 byte inside a content string.
    InvalidUtf8,
    /// A 1 MiB data line (a padding field) with the first token.
    BigLine,
    /// A malformed JSON event after k tokens.
    Malformed,
    /// An event with empty `choices` (and no usage) between every two tokens.
    EmptyChoices,
    /// Three tokens' text per event.
    MultiToken,
}

impl Fault {
    /// Every fault, in documentation order.
    pub const ALL: [Fault; 27] = [
        Fault::Http429,
        Fault::Http429RetryAfter,
        Fault::Http500,
        Fault::Http503,
        Fault::Http401,
        Fault::ErrorEvent,
        Fault::ErrorString,
        Fault::Empty,
        Fault::NoDone,
        Fault::DoubleDone,
        Fault::NoUsage,
        Fault::LateUsage,
        Fault::Reset,
        Fault::StallHeaders,
        Fault::StallMid,
        Fault::Trickle,
        Fault::Crlf,
        Fault::Cr,
        Fault::Pings,
        Fault::Multiline,
        Fault::Split,
        Fault::Packed,
        Fault::InvalidUtf8,
        Fault::BigLine,
        Fault::Malformed,
        Fault::EmptyChoices,
        Fault::MultiToken,
    ];

    /// The name given to `--fault`.
    pub fn name(self) -> &'static str {
        match self {
            Fault::Http429 => "http-429",
            Fault::Http429RetryAfter => "http-429-retry-after",
            Fault::Http500 => "http-500",
            Fault::Http503 => "http-503",
            Fault::Http401 => "http-401",
            Fault::ErrorEvent => "error-event",
            Fault::ErrorString => "error-string",
            Fault::Empty => "empty",
            Fault::NoDone => "no-done",
            Fault::DoubleDone => "double-done",
            Fault::NoUsage => "no-usage",
            Fault::LateUsage => "late-usage",
            Fault::Reset => "reset",
            Fault::StallHeaders => "stall-headers",
            Fault::StallMid => "stall-mid",
            Fault::Trickle => "trickle",
            Fault::Crlf => "crlf",
            Fault::Cr => "cr",
            Fault::Pings => "pings",
            Fault::Multiline => "multiline",
            Fault::Split => "split",
            Fault::Packed => "packed",
            Fault::InvalidUtf8 => "invalid-utf8",
            Fault::BigLine => "big-line",
            Fault::Malformed => "malformed",
            Fault::EmptyChoices => "empty-choices",
            Fault::MultiToken => "multi-token",
        }
    }

    /// Parses a `--fault` name (`429`, `500`... are accepted for the HTTP ones).
    pub fn parse(s: &str) -> Option<Fault> {
        let s = s.trim().to_ascii_lowercase();
        let s = match s.as_str() {
            "429" | "503" | "500" | "401" => format!("http-{s}"),
            "429-retry-after" => "http-429-retry-after".into(),
            _ => s,
        };
        Fault::ALL.into_iter().find(|f| f.name() == s)
    }

    /// The HTTP status this fault answers with, if it is an HTTP fault.
    pub fn status(self) -> Option<u16> {
        match self {
            Fault::Http429 | Fault::Http429RetryAfter => Some(429),
            Fault::Http500 => Some(500),
            Fault::Http503 => Some(503),
            Fault::Http401 => Some(401),
            _ => None,
        }
    }

    /// Whether this fault only makes sense in a streamed response.
    pub fn needs_stream(self) -> bool {
        !matches!(
            self,
            Fault::Http429
                | Fault::Http429RetryAfter
                | Fault::Http500
                | Fault::Http503
                | Fault::Http401
                | Fault::StallHeaders
                | Fault::Empty
        )
    }
}

/// Fault-injection settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultConfig {
    /// Kinds to inject (one per faulty request, picked evenly).
    pub kinds: Vec<Fault>,
    /// Probability that a request gets a fault (0..=1).
    pub rate: f64,
    /// Seed of the draw.
    pub seed: u64,
    /// Tokens sent before `reset`, `stall-mid`, `error-event`, `error-string`, `malformed`.
    pub after_tokens: u64,
    /// How long `stall-headers` and `stall-mid` stay silent.
    pub stall: Duration,
    /// Gap between bytes of `trickle`, and between pieces of `split` (ms).
    pub trickle_ms: f64,
}

impl Default for FaultConfig {
    fn default() -> Self {
        Self {
            kinds: Vec::new(),
            rate: 1.0,
            seed: 0,
            after_tokens: 3,
            stall: Duration::from_secs(30),
            trickle_ms: 2.0,
        }
    }
}

use crate::rng::splitmix64;

impl FaultConfig {
    /// The fault (if any) of the request with this arrival index.
    pub fn draw(&self, index: u64) -> Option<Fault> {
        if self.kinds.is_empty() || self.rate <= 0.0 {
            return None;
        }
        let h = splitmix64(self.seed ^ splitmix64(index));
        let u = (h >> 11) as f64 / (1u64 << 53) as f64;
        if u >= self.rate {
            return None;
        }
        let k = splitmix64(h) % self.kinds.len() as u64;
        Some(self.kinds[k as usize])
    }
}

/// The running injector: settings and what it did.
#[derive(Debug, Default)]
pub struct Injector {
    /// Settings.
    pub cfg: FaultConfig,
    next: AtomicU64,
    injected: Mutex<BTreeMap<Fault, u64>>,
}

impl Injector {
    /// An injector with these settings.
    pub fn new(cfg: FaultConfig) -> Arc<Self> {
        Arc::new(Self {
            cfg,
            ..Default::default()
        })
    }

    /// Draws the fault of the next generation request and counts it. Stream-only faults are
    /// not injected into non-streamed requests (and not counted).
    pub fn next(&self, stream: bool) -> Option<Fault> {
        let i = self.next.fetch_add(1, Ordering::SeqCst);
        let f = self.cfg.draw(i).filter(|f| stream || !f.needs_stream())?;
        *self
            .injected
            .lock()
            .expect("fault counts")
            .entry(f)
            .or_default() += 1;
        Some(f)
    }

    /// `{"requests": N, "injected": {"http-500": 3, ...}}`.
    pub fn report(&self) -> Value {
        let counts: BTreeMap<&str, u64> = self
            .injected
            .lock()
            .expect("fault counts")
            .iter()
            .map(|(f, n)| (f.name(), *n))
            .collect();
        json!({"requests": self.next.load(Ordering::SeqCst), "injected": counts})
    }
}

async fn report(State(sim): State<Arc<Sim>>) -> Json<Value> {
    Json(sim.faults.report())
}

/// `GET /sim/faults`.
pub fn routes() -> Router<Arc<Sim>> {
    Router::new().route("/sim/faults", get(report))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for f in Fault::ALL {
            assert_eq!(Fault::parse(f.name()), Some(f));
        }
        assert_eq!(Fault::parse("429"), Some(Fault::Http429));
        assert_eq!(Fault::parse("nope"), None);
    }

    #[test]
    fn draws_follow_the_rate_and_the_seed() {
        let cfg = FaultConfig {
            kinds: vec![Fault::Http500, Fault::Reset],
            rate: 0.3,
            seed: 7,
            ..Default::default()
        };
        let draws: Vec<_> = (0..10_000).map(|i| cfg.draw(i)).collect();
        let hit = draws.iter().filter(|d| d.is_some()).count();
        assert!((2_800..3_200).contains(&hit), "{hit}");
        let resets = draws.iter().filter(|d| **d == Some(Fault::Reset)).count();
        assert!((hit / 2).abs_diff(resets) < 150, "{resets} of {hit}");
        let again: Vec<_> = (0..10_000).map(|i| cfg.draw(i)).collect();
        assert_eq!(draws, again);
        let all = FaultConfig {
            rate: 1.0,
            ..cfg.clone()
        };
        assert!((0..100).all(|i| all.draw(i).is_some()));
    }
}
