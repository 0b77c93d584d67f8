//! Trace replay against the simulator's fixed mode: requests go out at the trace's
//! timestamps divided by the speed-up.

use llmbench::measure::record::Outcome;

use crate::common::*;

#[test]
fn a_trace_is_sent_at_its_timestamps() {
    let _serial = serial();
    let sim = ServeChild::start(&["--ttft-ms", "20", "--itl-ms", "5", "--tokens", "4"]);
    let dir = TempDir::new("trace-truth");
    let file = dir.path("t.jsonl");
    // 40 requests with uneven gaps (10 to 130 ms in the trace, half that at speed-up 2).
    let mut t = 0u64;
    let mut want = Vec::new();
    let mut text = String::new();
    for i in 0..40u64 {
        text.push_str(&format!(
            "{{\"timestamp\": {}, \"input_length\": {}, \"output_length\": {}, \"hash_ids\": []}}\n",
            1000 + t,
            10 + i,
            1 + i % 4
        ));
        want.push(t as f64 / 2.0);
        t += 10 + (i * 37) % 121;
    }
    std::fs::write(&file, text).unwrap();
    let r = run(&[
        &sim.url,
        "--trace",
        file.to_str().unwrap(),
        "--trace-speedup",
        "2",
    ]);
    let sc = &r.result().scenarios[0];
    assert_eq!(sc.outcomes.get(Outcome::Succeeded), 40, "{:?}", sc.errors);
    // The schedule itself is the trace's, exactly.
    let mut recs = r.records.clone();
    recs.sort_by_key(|x| x.id);
    let t0 = recs[0].scheduled_at_ms;
    for (rec, w) in recs.iter().zip(&want) {
        assert!(
            (rec.scheduled_at_ms - t0 - w).abs() < 0.01,
            "{} {w}",
            rec.scheduled_at_ms - t0
        );
    }
    timing_within_five_runs(&r, |r| {
        let mut recs = r.records.clone();
        recs.sort_by_key(|x| x.id);
        let t0 = recs[0].scheduled_at_ms;
        // Never before its trace time; the typical request on it (a busy machine can make one
        // late, which the p99 below bounds as the issue asks).
        let mut lags = Vec::new();
        for (rec, w) in recs.iter().zip(&want) {
            let sent = rec.sent_at_ms.ok_or("a request was not sent")? - t0;
            if sent < w - 0.5 {
                return Err(format!(
                    "request {} sent at {sent:.2} ms, before the trace's {w} ms",
                    rec.id
                ));
            }
            lags.push(sent - w);
        }
        lags.sort_by(f64::total_cmp);
        let median = lags[lags.len() / 2];
        if median >= 1.0 {
            return Err(format!("median send {median:.2} ms after its trace time"));
        }
        let q = r.result().scenarios[0].metrics.queue_ms.unwrap();
        if q.p99 >= 5.0 {
            return Err(format!("schedule lag p99 {:.2} ms", q.p99));
        }
        Ok(())
    });
}
