//! The start of a sharded run (`run --shard K/N --start-at TIME [--clock URL]`): this host's
//! clock offset measured against the reference (Cristian's method), the agreed wall-clock
//! instant as an instant of this host's monotonic clock, and what the shard result records.

use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{DateTime, Utc};

use crate::results::shard::{ClockOffset, ShardInfo};
use crate::settings::shard::ShardSettings;

/// Exchanges with the clock endpoint (after one that opens the connection).
const EXCHANGES: u32 = 16;

/// One exchange: round trip and the offset it implies (ms).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Exchange {
    /// Round trip on this host's monotonic clock.
    pub rtt_ms: f64,
    /// Reference time minus this host's wall clock at the exchange's midpoint.
    pub offset_ms: f64,
}

/// Cristian's estimate: the exchange with the smallest round trip; the reference read its
/// clock somewhere within that round trip, so the offset is known to ± half of it.
pub(crate) fn estimate(xs: &[Exchange]) -> Option<ClockOffset> {
    let best = xs.iter().min_by(|a, b| a.rtt_ms.total_cmp(&b.rtt_ms))?;
    Some(ClockOffset {
        offset_ms: best.offset_ms,
        error_ms: best.rtt_ms / 2.0,
        exchanges: xs.len() as u32,
    })
}

/// This host's wall clock, as the process sees it (`--clock-offset` shifts it, a test hook).
fn local_now(sh: &ShardSettings) -> DateTime<Utc> {
    Utc::now() + chrono::Duration::microseconds((sh.clock_offset_ms * 1e3) as i64)
}

/// Measures the offset against `url` (`llmbench clock`).
async fn measure(url: &str, sh: &ShardSettings) -> anyhow::Result<ClockOffset> {
    let http = reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(5))
        .build()?;
    let time_url = format!("{}/time", url.trim_end_matches('/'));
    let mut xs = Vec::new();
    for i in 0..=EXCHANGES {
        let (i0, w0) = (Instant::now(), local_now(sh));
        let reply: super::clock::TimeReply = http
            .get(&time_url)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .with_context(|| format!("--clock {url}: no answer"))?
            .json()
            .await
            .with_context(|| format!("--clock {url}: not a llmbench clock"))?;
        let rtt = i0.elapsed();
        if i == 0 {
            continue; // opened the connection
        }
        let mid_ns = w0.timestamp_nanos_opt().unwrap_or(0) as f64 + rtt.as_nanos() as f64 / 2.0;
        xs.push(Exchange {
            rtt_ms: rtt.as_secs_f64() * 1e3,
            offset_ms: (reply.unix_ns as f64 - mid_ns) / 1e6,
        });
    }
    estimate(&xs).context("no clock exchange")
}

/// Time zero of the run: `--start-at` on this host's monotonic clock (corrected by the
/// measured offset); and the shard's information for its result file.
pub(crate) async fn start(sh: &ShardSettings) -> anyhow::Result<(Instant, Option<ShardInfo>)> {
    let Some(at) = sh.start_at else {
        return Ok((Instant::now(), None));
    };
    let clock = match &sh.clock {
        Some(url) => {
            let c = measure(url, sh).await?;
            eprintln!(
                "Clock offset {:+.3} ms (±{:.3} ms) against {url}.",
                c.offset_ms, c.error_ms
            );
            Some(c)
        }
        None => None,
    };
    let offset = chrono::Duration::microseconds(clock.map_or(0.0, |c| c.offset_ms * 1e3) as i64);
    let (now_i, now_w) = (Instant::now(), local_now(sh) + offset);
    let wait = (at - now_w).to_std().map_err(|_| {
        anyhow::anyhow!(
            "--start-at {} passed before the run could start (it is now {}): give every shard a later start time",
            stamp(at),
            stamp(now_w)
        )
    })?;
    let epoch = now_i + wait;
    if wait > Duration::from_secs(1) {
        eprintln!(
            "Waiting {:.1} s for --start-at {}.",
            wait.as_secs_f64(),
            stamp(at)
        );
    }
    let info = sh.shard.map(|s| ShardInfo {
        index: s.index,
        count: s.count,
        start_at: stamp(at),
        anchor_unix_ms: at.timestamp_micros() as f64 / 1e3,
        clock,
    });
    Ok((epoch, info))
}

fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fastest_exchange_decides() {
        let xs = [
            Exchange {
                rtt_ms: 3.0,
                offset_ms: 9.0,
            },
            Exchange {
                rtt_ms: 0.4,
                offset_ms: -250.1,
            },
            Exchange {
                rtt_ms: 1.0,
                offset_ms: -249.0,
            },
        ];
        let c = estimate(&xs).unwrap();
        assert_eq!((c.offset_ms, c.error_ms, c.exchanges), (-250.1, 0.2, 3));
        assert!(estimate(&[]).is_none());
    }
}
