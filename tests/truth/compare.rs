//! `compare` on real runs: a doubled TTFT is a regression, a run against itself and a rerun of
//! the same server are not (a rerun's tail must not move by 10 %: a quiet machine's truth).

use crate::common::*;

#[test]
fn compare_flags_doubled_ttft_and_passes_a_run_against_itself() {
    let _serial = serial();
    let fast = ServeChild::start(&["--ttft-ms", "50", "--itl-ms", "5", "--tokens", "10"]);
    let slow = ServeChild::start(&["--ttft-ms", "100", "--itl-ms", "5", "--tokens", "10"]);
    let dir = TempDir::new("compare");
    let a = run_to(&dir, "a.json", &fast.url, None);
    let b = run_to(&dir, "b.json", &slow.url, None);
    let c = run_to(&dir, "c.json", &fast.url, None);

    let same = bin().arg("compare").arg(&a).arg(&a).output().unwrap();
    assert_eq!(code(&same), 0, "{}", text(&same));
    assert!(text(&same).contains("No significant regression"));

    let json = dir.path("cmp.json");
    let worse = bin()
        .arg("compare")
        .arg(&a)
        .arg(&b)
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    assert_eq!(code(&worse), 4, "{}", text(&worse));
    let t = text(&worse);
    assert!(t.contains("REGRESSION") && t.contains("TTFT p50"), "{t}");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let ttft = &v["scenarios"][0]["rows"][0];
    assert_eq!(ttft["metric"], "TTFT p50");
    assert!(ttft["relative"].as_f64().unwrap() > 0.8, "{ttft}");
    // TTFT went from 50 to 100 ms: the interval of the change sits near +50 ms.
    let lo = ttft["ci"][0].as_f64().unwrap();
    assert!(
        lo > 40.0 && lo <= ttft["change"].as_f64().unwrap(),
        "{ttft}"
    );
    assert_eq!(ttft["regression"], true);

    // Faster is not a regression; a threshold above the change lets it pass too.
    let better = bin().arg("compare").arg(&b).arg(&a).output().unwrap();
    assert_eq!(code(&better), 0, "{}", text(&better));
    let loose = bin()
        .arg("compare")
        .arg(&a)
        .arg(&b)
        .args(["--max-regression", "500%"])
        .output()
        .unwrap();
    assert_eq!(code(&loose), 0, "{}", text(&loose));
    // Two runs of the same server: no regression flagged beyond 10 %.
    let rerun = bin().arg("compare").arg(&a).arg(&c).output().unwrap();
    assert_eq!(code(&rerun), 0, "{}", text(&rerun));

    let bad = bin()
        .arg("compare")
        .arg(&a)
        .arg(&b)
        .args(["--max-regression", "lots"])
        .output()
        .unwrap();
    assert_eq!(code(&bad), 2);
    assert!(text(&bad).contains("--max-regression"));
}
