use super::*;

/// A succeeded streamed request: sent at `sent`, first token after `ttft`, then `tokens − 1`
/// more chunks `itl` apart, one token each.
fn req(sent: f64, ttft: f64, itl: f64, tokens: u64) -> Record {
    let chunks: Vec<f64> = (0..tokens).map(|i| sent + ttft + i as f64 * itl).collect();
    Record {
        outcome: Some(Outcome::Succeeded),
        scheduled_at_ms: sent,
        sent_at_ms: Some(sent),
        first_token_at_ms: chunks.first().copied(),
        done_at_ms: *chunks.last().unwrap(),
        chunk_times_ms: chunks,
        output_tokens: tokens,
        ..Default::default()
    }
}

#[test]
fn a_bucket_centre_is_within_its_stated_error_of_every_value_in_it() {
    let mut v = 0.001;
    while v < 1e7 {
        let c = centre(bucket(v));
        assert!((c - v).abs() / v <= 1.0 / 32.0 + 1e-12, "{v} -> {c}");
        v *= 1.0137;
    }
    assert_eq!(bucket(0.0), 0);
    assert_eq!(bucket(-3.0), 0);
    assert_eq!(bucket(f64::NAN), 0);
    assert_eq!(bucket(f64::INFINITY), MAX_BUCKET);
}

#[test]
fn a_steady_closed_loop_shows_its_true_concurrency_rate_and_latencies() {
    // Two workers back to back for 10 s: each request 100 ms to first token, then 9 more
    // tokens 20 ms apart (280 ms in all), so 2 in flight and 2 · 10 / 0.28 tokens per second.
    let mut t = Timeline::default();
    for w in 0..2 {
        let mut at = w as f64 * 37.0;
        while at + 280.0 <= 10_000.0 {
            t.add(&req(at, 100.0, 20.0, 10));
            at += 280.0;
        }
    }
    let r = t.finish().unwrap();
    assert_eq!(r.width_ms, 250.0);
    assert_eq!(r.bins.len(), 40);
    let sent: u64 = r.bins.iter().map(|b| b.sent).sum();
    assert_eq!(sent, r.bins.iter().map(|b| b.succeeded).sum::<u64>());
    // Away from the edges every bin sees the plateau.
    for b in &r.bins[2..38] {
        assert!((b.in_flight - 2.0).abs() < 1e-9, "{b:?}");
        let want = 2.0 * 10.0 / 0.28;
        assert!(
            (b.output_tokens_per_s - want).abs() / want < 0.15,
            "{} vs {want}",
            b.output_tokens_per_s
        );
        let itl = b.itl_p50_ms.unwrap();
        assert!((itl - 20.0).abs() / 20.0 <= 1.0 / 32.0, "{itl}");
        assert_eq!(b.itl_p99_ms, b.itl_p50_ms);
    }
    let ttfts: Vec<f64> = r.bins.iter().filter_map(|b| b.ttft_p50_ms).collect();
    assert!(ttfts.len() > 30);
    assert!(
        ttfts
            .iter()
            .all(|x| (x - 100.0).abs() / 100.0 <= 1.0 / 32.0)
    );
}

#[test]
fn a_long_run_keeps_at_most_max_bins_and_every_count() {
    // One request a second for an hour, 1 s long each.
    let mut t = Timeline::default();
    for i in 0..3600 {
        t.add(&req(i as f64 * 1000.0, 200.0, 100.0, 9));
    }
    let r = t.finish().unwrap();
    assert!(r.bins.len() <= MAX_BINS, "{}", r.bins.len());
    // 3600 s in at most 120 bins: 250 ms doubled to 32 s (113 bins).
    assert_eq!(r.width_ms, 32_000.0);
    assert_eq!(r.bins.iter().map(|b| b.sent).sum::<u64>(), 3600);
    assert_eq!(r.bins.iter().map(|b| b.succeeded).sum::<u64>(), 3600);
    // One request always in flight: 1 s of every second.
    for b in &r.bins[1..r.bins.len() - 1] {
        assert!((b.in_flight - 1.0).abs() < 1e-9, "{b:?}");
        assert!((b.requests_per_s - 1.0).abs() < 0.05, "{b:?}");
    }
}

#[test]
fn failures_and_drops_count_where_they_ended_and_carry_no_latency() {
    let mut t = Timeline::default();
    t.add(&req(0.0, 50.0, 10.0, 5));
    t.add(&Record {
        outcome: Some(Outcome::HttpError),
        sent_at_ms: Some(100.0),
        done_at_ms: 600.0,
        ..Default::default()
    });
    t.add(&Record {
        outcome: Some(Outcome::Dropped),
        done_at_ms: 700.0,
        ..Default::default()
    });
    t.add(&Record {
        outcome: Some(Outcome::Cancelled),
        sent_at_ms: Some(100.0),
        done_at_ms: 900.0,
        ..Default::default()
    });
    let r = t.finish().unwrap();
    assert_eq!(r.bins.len(), 3);
    assert_eq!(r.bins[0].succeeded, 1);
    assert_eq!(r.bins[2].failed, 2);
    assert_eq!(r.bins.iter().map(|b| b.sent).sum::<u64>(), 2);
    assert!(r.bins[2].ttft_p50_ms.is_none());
}

#[test]
fn shards_merged_give_the_timeline_of_all_their_requests() {
    // Two shards whose clocks differ by exactly 4 bins: the merged timeline equals one
    // built from all requests on the first shard's clock.
    let a: Vec<Record> = (0..20)
        .map(|i| req(i as f64 * 100.0, 80.0, 15.0, 6))
        .collect();
    let b: Vec<Record> = (0..20)
        .map(|i| req(i as f64 * 130.0, 90.0, 12.0, 4))
        .collect();
    let shift = 1000.0;
    let (mut ta, mut tb, mut all) = (
        Timeline::default(),
        Timeline::default(),
        Timeline::default(),
    );
    a.iter().for_each(|r| ta.add(r));
    b.iter().for_each(|r| tb.add(r));
    a.iter().for_each(|r| all.add(r));
    for r in &b {
        let mut s = r.clone();
        s.sent_at_ms = s.sent_at_ms.map(|x| x + shift);
        s.first_token_at_ms = s.first_token_at_ms.map(|x| x + shift);
        s.done_at_ms += shift;
        s.chunk_times_ms.iter_mut().for_each(|x| *x += shift);
        all.add(&s);
    }
    // Saved and read back, as a shard's state is.
    let tb: Timeline = serde_json::from_str(&serde_json::to_string(&tb).unwrap()).unwrap();
    ta.merge(&tb, shift);
    let (m, w) = (ta.finish().unwrap(), all.finish().unwrap());
    assert_eq!(m.width_ms, w.width_ms);
    assert_eq!(m.bins.len(), w.bins.len());
    for (x, y) in m.bins.iter().zip(&w.bins) {
        assert_eq!(
            (x.start_ms, x.sent, x.succeeded),
            (y.start_ms, y.sent, y.succeeded)
        );
        assert!((x.in_flight - y.in_flight).abs() < 1e-9);
        assert!((x.output_tokens_per_s - y.output_tokens_per_s).abs() < 1e-6);
        assert_eq!((x.ttft_p50_ms, x.itl_p99_ms), (y.ttft_p50_ms, y.itl_p99_ms));
    }
}
