//! What a shard result (`run --shard K/N`) and a merged result (`llmbench merge`) add to the
//! result file: the shard, its time base and clock, and per-shard health after a merge.

use serde::{Deserialize, Serialize};

/// A shard's place in its plan and its time base.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ShardInfo {
    /// This shard, from 0.
    pub index: u32,
    /// Shards in the plan.
    pub count: u32,
    /// `--start-at`: when every shard began its measured phase (RFC 3339).
    pub start_at: String,
    /// The wall-clock instant (Unix ms, on the reference clock when one was asked) of the
    /// records' time zero: `merge` puts every shard's times on one base with it.
    pub anchor_unix_ms: f64,
    /// The clock offset this shard measured and corrected by; `null`: none was measured (the
    /// host's clock was trusted).
    #[serde(default)]
    pub clock: Option<ClockOffset>,
}

/// A measured clock offset (Cristian's method: the exchange with the smallest round trip).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ClockOffset {
    /// Reference clock minus this host's clock (ms).
    pub offset_ms: f64,
    /// Bound on the offset's error: half the round trip of the exchange used (ms).
    pub error_ms: f64,
    /// Exchanges made.
    pub exchanges: u32,
}

/// How a merged result was made: the shards and whether their clocks and clients can be
/// trusted.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MergeInfo {
    /// Each shard, in index order.
    pub shards: Vec<ShardHealth>,
    /// The largest clock-offset error bound of the shards (ms); `null` when no shard measured
    /// its offset.
    pub clock_error_ms: Option<f64>,
    /// False when a shard's client was the limit or the clocks' uncertainty is above
    /// `MAX_CLOCK_ERROR_MS`.
    pub trustworthy: bool,
    /// Why not, in words.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
}

/// One shard of a merged result.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ShardHealth {
    /// Its shard information.
    pub shard: ShardInfo,
    /// Its run id.
    pub run_id: String,
    /// Requests it scheduled.
    pub scheduled: u64,
    /// Its client's load (CPU, schedule lateness) and whether it kept up.
    pub client: Option<crate::measure::health::ClientLoad>,
}

/// Clock uncertainty (ms) above which a merged result is not trustworthy: the shards' sends
/// would be misaligned by more than this.
pub const MAX_CLOCK_ERROR_MS: f64 = 2.0;
