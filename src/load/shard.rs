//! One shard of a plan run by several processes (`run --shard K/N`): which requests of the
//! plan are this shard's, and how much of a closed loop's concurrency. Pure.
//!
//! The rule (docs/architecture.md, "Sharded runs"): request ids are the plan's ids; shard `K`
//! of `N` sends the ids `i` with `i mod N = K`. In an open loop each keeps the send offset the
//! unsharded schedule gives it, so the shards together send exactly the unsharded schedule.
//! A closed loop's `C` workers are split as evenly as possible (`C / N`, one more for the
//! first `C mod N` shards), each shard drawing its own ids in order.

use serde::{Deserialize, Serialize};

/// Shard `index` of `count` (0-based, `index < count`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    /// This shard, from 0.
    pub index: u32,
    /// Shards in the plan, at least 1.
    pub count: u32,
}

impl Shard {
    /// Reads `K/N` (`0 <= K < N`); the error says what is wrong.
    pub fn parse(s: &str) -> Result<Shard, String> {
        let (k, n) = s
            .split_once('/')
            .ok_or_else(|| format!("{s:?} is not K/N (for example 0/3: the first of three)"))?;
        let k: u32 = k
            .trim()
            .parse()
            .map_err(|_| format!("{s:?}: K must be a whole number from 0"))?;
        let n: u32 = n
            .trim()
            .parse()
            .map_err(|_| format!("{s:?}: N must be a whole number from 1"))?;
        if n == 0 {
            return Err(format!("{s:?}: N must be at least 1"));
        }
        if k >= n {
            return Err(format!(
                "{s:?}: K counts from 0, so it must be below N (0/{n} to {}/{n})",
                n - 1
            ));
        }
        Ok(Shard { index: k, count: n })
    }

    /// Whether the plan's request `id` is this shard's.
    pub fn owns(self, id: u64) -> bool {
        id % u64::from(self.count) == u64::from(self.index)
    }

    /// The `k`-th id (from 0) this shard sends.
    pub fn id(self, k: u64) -> u64 {
        k.saturating_mul(u64::from(self.count))
            .saturating_add(u64::from(self.index))
    }

    /// This shard's part of `total` closed-loop workers (the first `total mod N` shards get
    /// one more).
    pub fn concurrency(self, total: usize) -> usize {
        let n = self.count as usize;
        total / n + usize::from((self.index as usize) < total % n)
    }

    /// How this shard is written: `K/N`.
    pub fn label(self) -> String {
        format!("{}/{}", self.index, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_checks_both_numbers() {
        assert_eq!(Shard::parse("1/3"), Ok(Shard { index: 1, count: 3 }));
        for bad in ["3/3", "1", "a/3", "0/0", "-1/3"] {
            assert!(Shard::parse(bad).is_err(), "{bad}");
        }
        assert!(Shard::parse("3/3").unwrap_err().contains("below N"));
    }

    #[test]
    fn shards_partition_ids_and_concurrency() {
        let shards: Vec<Shard> = (0..3).map(|k| Shard { index: k, count: 3 }).collect();
        for id in 0..100u64 {
            assert_eq!(shards.iter().filter(|s| s.owns(id)).count(), 1);
        }
        for s in &shards {
            for k in 0..10 {
                assert!(s.owns(s.id(k)));
            }
        }
        for total in [3usize, 7, 8, 100] {
            let parts: Vec<usize> = shards.iter().map(|s| s.concurrency(total)).collect();
            assert_eq!(parts.iter().sum::<usize>(), total);
            assert!(parts.iter().max().unwrap() - parts.iter().min().unwrap() <= 1);
        }
    }
}
