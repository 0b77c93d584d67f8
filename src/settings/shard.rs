//! `--shard K/N` and `--start-at TIME`, checked before any file or request.
//!
//! What cannot work sharded is refused here, with the reason: a warm-up (shards would leave it
//! at different instants), several scenarios (a sweep or suite: only the first would start
//! together), `--until` and `capacity` (each shard would stop on its own part of the data),
//! `--server-cmd` (each shard would start its own server), and a closed loop with fewer workers
//! than shards. Conversations are split whole: shard K runs those whose index is K mod N.

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};

use crate::cli::RunArgs;
use crate::load::schedule::Load;
use crate::load::shard::Shard;

use super::RunSettings;

/// A sharded run's settings.
#[derive(Debug, Clone, Default)]
pub struct ShardSettings {
    /// This shard of the plan; `None`: the whole plan (`--start-at` alone).
    pub shard: Option<Shard>,
    /// When the measured phase begins, on every shard.
    pub start_at: Option<DateTime<Utc>>,
    /// `--clock URL`: the reference clock to measure this host's offset against.
    pub clock: Option<String>,
    /// `--clock-offset MS` (a test hook): this process's wall clock reads that far ahead.
    pub clock_offset_ms: f64,
}

/// Reads the flags; `None` when neither is given.
pub fn shard_settings(a: &RunArgs, now: DateTime<Utc>) -> anyhow::Result<Option<ShardSettings>> {
    let f = &a.shard;
    if f.shard.is_none() && f.start_at.is_none() {
        if f.clock.is_some() {
            bail!("--clock measures the offset for --start-at: give --start-at TIME too");
        }
        return Ok(None);
    }
    if let Some(u) = &f.clock
        && !(u.starts_with("http://") || u.starts_with("https://"))
    {
        bail!("--clock {u:?}: give the clock endpoint's URL, http://HOST:PORT (`llmbench clock`)");
    }
    if !f.clock_offset.is_finite() {
        bail!("--clock-offset must be a number of ms");
    }
    let shard = match &f.shard {
        Some(s) => Some(Shard::parse(s).map_err(|e| anyhow::anyhow!("--shard {e}"))?),
        None => None,
    };
    let start_at = match &f.start_at {
        Some(t) => Some(parse_time(t)?),
        None => None,
    };
    let Some(start) = start_at else {
        bail!(
            "--shard needs --start-at TIME (the same instant for every shard), so that the shards begin together"
        );
    };
    let now = now + chrono::Duration::microseconds((f.clock_offset * 1e3) as i64);
    if start < now {
        bail!(
            "--start-at {} has passed (it is now {}): give every shard a new start time",
            start.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        );
    }
    if let Some(s) = shard {
        let refuse = |what: &str| anyhow::anyhow!("--shard cannot be combined with {what}");
        if a.output.is_none() {
            bail!(
                "--shard writes a shard result for `llmbench merge`: give -o FILE (or -o - for standard output)"
            );
        }
        if a.warmup > 0 {
            return Err(refuse(
                "--warmup (shards would end it at different instants; warm the server with a separate run)",
            ));
        }
        if a.until.is_some() {
            return Err(refuse(
                "--until (each shard would stop on its own part of the data)",
            ));
        }
        if a.telemetry.server_cmd.is_some() {
            return Err(refuse(
                "--server-cmd (each shard would start a server of its own; start it once and give its URL)",
            ));
        }
        if let Some(c) = a.concurrency
            && c < s.count as usize
        {
            bail!(
                "--shard {}: a closed loop of {c} workers cannot be split over {} shards (give -c {} or more)",
                s.label(),
                s.count,
                s.count
            );
        }
    }
    Ok(Some(ShardSettings {
        shard,
        start_at,
        clock: f.clock.clone(),
        clock_offset_ms: f.clock_offset,
    }))
}

/// `--start-at`: RFC 3339 (`2026-01-01T12:00:00Z`, `…+02:00`, fractions of seconds allowed).
fn parse_time(t: &str) -> anyhow::Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(t.trim())
        .map(|d| d.with_timezone(&Utc))
        .with_context(|| {
            format!("--start-at {t:?} is not an RFC 3339 time (for example 2026-01-01T12:00:00Z)")
        })
}

/// The checks that need the whole plan (a sweep's scenarios are gathered after each step's
/// flags were read): one scenario, no search. Run before any I/O.
pub fn check_plan(s: &RunSettings) -> anyhow::Result<()> {
    let Some(shard) = s.shard.as_ref().and_then(|x| x.shard) else {
        return Ok(());
    };
    if s.steps.is_some() {
        bail!(
            "--shard cannot be combined with capacity (each shard would search on its own part of the data)"
        );
    }
    if s.scenarios.len() > 1 {
        bail!(
            "--shard runs one scenario; this plan has {} (a sweep or a suite): shard each scenario as a run of its own",
            s.scenarios.len()
        );
    }
    for sc in &s.scenarios {
        if let Load::Closed { concurrency } = sc.load
            && concurrency < shard.count as usize
        {
            bail!(
                "--shard {}: a closed loop of {concurrency} workers cannot be split over {} shards",
                shard.label(),
                shard.count
            );
        }
    }
    Ok(())
}

/// Applies the shard to the plan's scenarios. A shard result is not stored (the merged result
/// is, by `merge`).
pub(super) fn apply(s: &mut RunSettings) {
    let shard = s.shard.as_ref().and_then(|x| x.shard);
    for sc in &mut s.scenarios {
        sc.shard = shard;
    }
    if shard.is_some() {
        s.report.no_store = true;
    }
}
