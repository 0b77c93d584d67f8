//! Issue 17: capacity's flags (its timing tests are in the truth binary).

use crate::common::*;

#[test]
fn capacity_flags_are_checked_before_anything_is_sent() {
    for (args, says) in [
        (vec!["capacity"], "--slo"),
        (
            vec!["capacity", "--slo", "tpot_p90<26ms", "-c", "4"],
            "--by",
        ),
        (vec!["capacity", "--slo", "requests_per_s>4"], "percentiles"),
        (vec!["capacity", "--slo", "ttft_mean<4ms"], "percentiles"),
        (
            vec!["capacity", "--slo", "ttft_p99<4ms", "--start", "0"],
            "--start",
        ),
        (
            vec!["capacity", "--slo", "ttft_p99<4ms", "--precision", "2"],
            "--precision",
        ),
    ] {
        let o = bin().args(&args).output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
}
