//! `compare` of two capacity results: each capacity comes with its interval, from the last
//! load that passed to the first that did not (`[capacity, first_fail]`; no pass: from 0; no
//! failure: open above). New is worse when its interval lies wholly below base's (its first
//! failing load at or under base's capacity) and its capacity dropped by more than
//! `--max-regression`; better when wholly above; otherwise the intervals overlap and the
//! change is not clear.

use serde::Serialize;

use crate::measure::capacity::CapacityResult;

/// How the new capacity stands against the base one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// New's interval lies wholly above base's.
    Better,
    /// New's interval lies wholly below base's, by more than the threshold.
    Worse,
    /// The intervals overlap (or the drop is within the threshold).
    Unclear,
}

/// One side: the capacity and its interval.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Side {
    /// The last load that passed.
    pub capacity: Option<f64>,
    /// Lower end of the interval (the capacity, 0 when nothing passed).
    pub lower: f64,
    /// Upper end (the first failing load); null: no load failed.
    pub upper: Option<f64>,
    /// Goodput at the capacity, requests per second.
    pub goodput_requests_per_s: Option<f64>,
    /// Goodput at the capacity, output tokens per second.
    pub goodput_output_tokens_per_s: Option<f64>,
}

/// Two capacity results side by side.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CapacityComparison {
    /// `concurrency` or `rate`.
    pub by: String,
    /// The targets (the same on both sides).
    pub slo: Vec<String>,
    /// Base.
    pub base: Side,
    /// New.
    pub new: Side,
    /// new capacity / base capacity − 1; null when either has none.
    pub relative: Option<f64>,
    /// The verdict.
    pub change: Change,
}

fn side(c: &CapacityResult) -> Side {
    Side {
        capacity: c.capacity,
        lower: c.capacity.unwrap_or(0.0),
        upper: c.first_fail,
        goodput_requests_per_s: c.goodput.as_ref().map(|g| g.requests_per_s),
        goodput_output_tokens_per_s: c.goodput.as_ref().map(|g| g.output_tokens_per_s),
    }
}

/// Compares two capacity results; an error when they searched different things.
pub fn compare(
    base: &CapacityResult,
    new: &CapacityResult,
    max_regression: f64,
) -> anyhow::Result<CapacityComparison> {
    if base.by != new.by {
        anyhow::bail!(
            "the capacity results vary different loads (base --by {}, new --by {}): not comparable",
            base.by.name(),
            new.by.name()
        );
    }
    if base.slo != new.slo {
        anyhow::bail!(
            "the capacity results have different --slo targets (base {}, new {}): not comparable",
            base.slo.join(","),
            new.slo.join(",")
        );
    }
    let (b, n) = (side(base), side(new));
    let relative = match (b.capacity, n.capacity) {
        (Some(b), Some(n)) if b > 0.0 => Some(n / b - 1.0),
        _ => None,
    };
    let below = n.upper.is_some_and(|u| u <= b.lower) && b.capacity.is_some();
    let above = b.upper.is_some_and(|u| n.lower >= u) && n.capacity.is_some();
    let change = if below && relative.is_none_or(|r| -r > max_regression) {
        Change::Worse
    } else if above {
        Change::Better
    } else {
        Change::Unclear
    };
    Ok(CapacityComparison {
        by: base.by.name().to_string(),
        slo: base.slo.clone(),
        base: b,
        new: n,
        relative,
        change,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::capacity::By;

    fn cap(p: Option<f64>, f: Option<f64>) -> CapacityResult {
        CapacityResult {
            by: By::Rate,
            slo: vec!["ttft_p99<500ms".into()],
            confidence: 0.95,
            capacity: p,
            first_fail: f,
            ended: "converged".into(),
            requests: 0,
            duration_s: 0.0,
            steps: Vec::new(),
            goodput: None,
        }
    }

    #[test]
    fn disjoint_intervals_decide_overlapping_do_not() {
        let base = cap(Some(35.0), Some(40.0));
        let c = |p, f| compare(&base, &cap(p, f), 0.05).unwrap().change;
        assert_eq!(c(Some(28.0), Some(32.0)), Change::Worse);
        // Touching: the new first failure is base's capacity.
        assert_eq!(c(Some(30.0), Some(35.0)), Change::Worse);
        assert_eq!(c(Some(40.0), Some(45.0)), Change::Better);
        assert_eq!(c(Some(36.0), Some(41.0)), Change::Unclear);
        // Nothing passed: [0, 2] lies below.
        assert_eq!(c(None, Some(2.0)), Change::Worse);
        // No failure on either side: open intervals overlap.
        assert_eq!(c(Some(50.0), None), Change::Better);
        assert_eq!(
            compare(&cap(Some(50.0), None), &cap(Some(60.0), None), 0.05)
                .unwrap()
                .change,
            Change::Unclear
        );
        // A drop within the threshold is not a regression.
        let base = cap(Some(100.0), Some(101.0));
        assert_eq!(
            compare(&base, &cap(Some(99.0), Some(100.0)), 0.05)
                .unwrap()
                .change,
            Change::Unclear
        );
        // Different targets are refused.
        let mut other = cap(Some(1.0), Some(2.0));
        other.slo = vec!["ttft_p90<500ms".into()];
        assert!(compare(&base, &other, 0.05).is_err());
    }
}
