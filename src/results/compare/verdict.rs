//! What a row's change amounts to, read against its interval so the two never disagree. Pure.

use serde::Serialize;

/// What a row's change amounts to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Worse by more than the threshold, and the interval lies wholly on the worse side (or,
    /// without an interval, by the threshold alone).
    Regression,
    /// Worse, the interval wholly on the worse side, but within the threshold.
    Worse,
    /// Better, the interval wholly on the better side.
    Better,
    /// The interval holds zero: not told apart from chance.
    NoChange,
    /// The interval excludes zero on the side opposite to the change (possible for a tail
    /// percentile of few requests): no conclusion.
    Unclear,
    /// No interval (no samples, or none honest for this figure) and not beyond the threshold.
    Untested,
}

impl Verdict {
    /// As the console shows it.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Regression => "REGRESSION",
            Self::Worse => "worse",
            Self::Better => "better",
            Self::NoChange => "no change",
            Self::Unclear => "unclear",
            Self::Untested => "untested",
        }
    }
}

/// A change (new − base) in the worse direction: latency up, throughput down.
pub(super) fn is_worse(higher_is_better: bool, change: f64) -> bool {
    if higher_is_better {
        change < 0.0
    } else {
        change > 0.0
    }
}

/// The verdict of a change (new − base) and its interval, read in the row's direction. A
/// regression's, a worsening's and an improvement's interval lies wholly on their side.
pub(super) fn judge(
    higher_is_better: bool,
    change: Option<f64>,
    relative: Option<f64>,
    ci: Option<(f64, f64)>,
    max_regression: f64,
) -> Verdict {
    let Some(change) = change else {
        return Verdict::Untested;
    };
    let worse = is_worse(higher_is_better, change);
    let better = change != 0.0 && !worse;
    let beyond = relative.is_some_and(|r| r.abs() > max_regression);
    let Some((lo, hi)) = ci else {
        return if worse && beyond {
            Verdict::Regression
        } else {
            Verdict::Untested
        };
    };
    let (on_worse_side, on_better_side) = if higher_is_better {
        (hi < 0.0, lo > 0.0)
    } else {
        (lo > 0.0, hi < 0.0)
    };
    match (on_worse_side, on_better_side) {
        (false, false) => Verdict::NoChange,
        (true, _) if worse && beyond => Verdict::Regression,
        (true, _) if worse => Verdict::Worse,
        (_, true) if better => Verdict::Better,
        _ => Verdict::Unclear,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_interval_on_the_other_side_of_the_change_is_unclear_not_a_verdict() {
        // Latency up by 20 % but an interval wholly below zero.
        let v = judge(false, Some(20.0), Some(0.2), Some((-30.0, -5.0)), 0.1);
        assert_eq!(v, Verdict::Unclear);
        // Throughput down by 20 % and an interval wholly above zero.
        let v = judge(true, Some(-20.0), Some(-0.2), Some((3.0, 9.0)), 0.1);
        assert_eq!(v, Verdict::Unclear);
        // Without an interval the threshold alone decides.
        assert_eq!(
            judge(true, Some(-20.0), Some(-0.2), None, 0.1),
            Verdict::Regression
        );
        assert_eq!(
            judge(true, Some(-5.0), Some(-0.05), None, 0.1),
            Verdict::Untested
        );
    }

    #[test]
    fn a_regression_needs_the_threshold_and_the_interval_on_the_worse_side() {
        // Latency up 20 %, interval above zero: a regression at 10 %, only worse at 50 %.
        let up = |t| judge(false, Some(20.0), Some(0.2), Some((5.0, 30.0)), t);
        assert_eq!((up(0.1), up(0.5)), (Verdict::Regression, Verdict::Worse));
        // The same rise with an interval that holds zero: no change, whatever the threshold.
        assert_eq!(
            judge(false, Some(20.0), Some(0.2), Some((-1.0, 30.0)), 0.0),
            Verdict::NoChange
        );
        // Throughput up, interval above zero: better.
        assert_eq!(
            judge(true, Some(20.0), Some(0.2), Some((5.0, 30.0)), 0.1),
            Verdict::Better
        );
        assert_eq!(judge(true, None, None, None, 0.1), Verdict::Untested);
    }
}
