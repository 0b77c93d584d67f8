use super::*;
use crate::measure::stats::Dist;

#[test]
fn parses_targets_and_units() {
    let t = parse("ttft_p95<200ms, tpot_p99<=50, e2e_p50<2s,itl_median<500us").unwrap();
    assert_eq!(t.len(), 4);
    assert_eq!(
        t[0].measure,
        Measure::Latency {
            metric: Latency::Ttft,
            stat: Stat::P95
        }
    );
    assert_eq!((t[0].op, t[0].threshold), (Op::Lt, 200.0));
    assert_eq!((t[1].op, t[1].threshold), (Op::Le, 50.0));
    assert_eq!(t[2].threshold, 2000.0);
    assert_eq!(
        t[3].measure,
        Measure::Latency {
            metric: Latency::Itl,
            stat: Stat::P50
        }
    );
    assert!((t[3].threshold - 0.5).abs() < 1e-12);
    let t = parse("tokens_per_s>100,rps>=2/s,goodput>90%,success_rate>0.99").unwrap();
    assert_eq!(t[0].measure, Measure::Rate("output_tokens_per_s"));
    assert_eq!((t[1].op, t[1].threshold), (Op::Ge, 2.0));
    assert_eq!(
        (t[2].measure.clone(), t[2].threshold),
        (Measure::Goodput, 0.9)
    );
    assert_eq!(t[3].threshold, 0.99);
}

#[test]
fn bad_targets_name_the_flag_and_the_target() {
    for bad in [
        "ttft<200ms",
        "ttft_p97<200",
        "foo_p95<1",
        "ttft_p95=200",
        "ttft_p95<",
        "ttft_p95<abc",
        "goodput>120%",
        "",
    ] {
        let e = parse(bad).unwrap_err().to_string();
        assert!(e.contains("--slo"), "{bad}: {e}");
    }
    let e = parse("ttft_p95<200ms,tpot_p99<<5").unwrap_err().to_string();
    assert!(e.contains("tpot_p99<<5"), "{e}");
}

fn scenario() -> (Outcomes, Metrics, RequestSamples) {
    let samples = RequestSamples {
        ttft_ms: vec![Some(10.0), Some(20.0), Some(30.0), Some(40.0)],
        tpot_ms: vec![Some(5.0), None, Some(9.0), Some(5.0)],
        e2e_ms: vec![100.0, 100.0, 100.0, 300.0],
        output_tokens: vec![10, 1, 10, 10],
        seen: 0,
    };
    let mut t: Vec<f64> = vec![10.0, 20.0, 30.0, 40.0];
    (
        Outcomes {
            scheduled: 5,
            counts: [(Outcome::Succeeded, 4), (Outcome::HttpError, 1)]
                .into_iter()
                .collect(),
            retried_attempts: 0,
            stale_connection_resends: 0,
        },
        Metrics {
            ttft_ms: Dist::of(&mut t),
            output_tokens_per_s: 50.0,
            duration_s: 2.0,
            ..Default::default()
        },
        samples,
    )
}

#[test]
fn goodput_needs_every_per_request_target() {
    let (o, m, samples) = scenario();
    let sc = Measured {
        outcomes: &o,
        metrics: &m,
        samples: Some(&samples),
    };
    let r = evaluate(
        &parse("ttft_p50<35ms,tpot_p99<8,e2e_p99<200,tokens_per_s>40").unwrap(),
        sc,
    );
    // Request 0: all met. 1: no TPOT (one token), met. 2: TPOT 9 fails. 3: TTFT 40 and
    // e2e 300 fail. The failed request never counts.
    assert_eq!(r.goodput.good, 2);
    assert_eq!(r.goodput.scheduled, 5);
    assert!((r.goodput.share - 0.4).abs() < 1e-12);
    assert!((r.goodput.requests_per_s - 1.0).abs() < 1e-12);
    assert!(r.targets[0].passed, "p50 of 10..40 is 25");
    assert!(!r.targets[1].passed, "no TPOT distribution: no data fails");
    assert!(r.targets[3].passed);
    assert!(!r.passed);
    let r = evaluate(&parse("goodput>=40%,success_rate>0.9").unwrap(), sc);
    assert!(r.targets[0].passed);
    assert_eq!(r.goodput.good, 4, "no latency target: succeeded requests");
    assert!(!r.targets[1].passed, "4/5 succeeded");
    assert!(text(&r).contains("FAIL success_rate>0.9"));
}

#[test]
fn a_target_limited_to_steps_names_its_flag_and_value() {
    let t = parse("output_tokens_per_s>=400@concurrency=8, ttft_p99<2s").unwrap();
    assert_eq!(
        t[0].step,
        Some(Step {
            flag: "concurrency",
            value: 8.0
        })
    );
    assert_eq!(t[0].threshold, 400.0);
    assert_eq!(t[1].step, None);
    let t = parse("tpot_p50<50ms@max_tokens=256").unwrap();
    assert_eq!(t[0].step.as_ref().unwrap().flag, "max-tokens");
    assert!(t[0].step.as_ref().unwrap().matches(Some(256.0)));
    assert!(!t[0].step.as_ref().unwrap().matches(Some(128.0)));
    assert!(!t[0].step.as_ref().unwrap().matches(None));
    for bad in [
        "ttft_p99<1s@model=x",
        "ttft_p99<1s@concurrency",
        "ttft_p99<1s@rate=fast",
    ] {
        let e = format!("{:#}", parse(bad).unwrap_err());
        assert!(e.contains(bad), "{e}");
    }
}
