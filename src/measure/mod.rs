//! What happened and what it adds up to: records, token counting, statistics in bounded
//! memory, per-turn statistics, SLO verdicts and the client's own load. No I/O here.

pub mod capacity;
pub mod capacity_goodput;
pub mod cost;
pub mod health;
pub mod merge;
pub mod metrics;
pub mod record;
pub mod samples;
pub mod slo;
pub mod stats;
pub mod steady;
pub mod timeline;
pub mod tokenize;
pub mod turns;
