//! Real result files checked against the committed JSON Schema (`schema_check`).

use crate::common::*;
use crate::schema_check::errors;
use serde_json::Value;

#[test]
fn real_result_files_match_the_schema() {
    let dir = TempDir::new("schema");
    let out = dir.path("r.json");
    // A sweep with targets (slo, goodput, samples) and a failing endpoint run (errors, nulls).
    let o = bin()
        .args([
            "sweep",
            "-c",
            "1,2",
            "-n",
            "4",
            "-q",
            "--ttft-ms",
            "5",
            "--itl-ms",
            "1",
            "--slo",
            "ttft_p95<1s,goodput>50%",
        ])
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert!(v["scenarios"][0]["slo"].is_object() && v["scenarios"][0]["samples"].is_object());
    assert_eq!(errors(&v), Vec::<String>::new());

    let server = ScriptServer::start(std::sync::Arc::new(|_| {
        vec![Step::Head(500, "text/plain"), Step::Write(b"boom".to_vec())]
    }));
    let failed = run(&[&server.url, "-n", "3"]);
    assert_eq!(failed.output.status.code(), Some(1));
    let v: Value = serde_json::to_value(failed.result()).unwrap();
    assert!(v["scenarios"][0]["metrics"]["ttft_ms"].is_null());
    assert_eq!(errors(&v), Vec::<String>::new());

    // A capacity result: its steps, and goodput at the capacity.
    let cap = dir.path("cap.json");
    let o = bin()
        .args([
            "capacity",
            "--slo",
            "e2e_p50<10s",
            "--max-time",
            "1s",
            "-n",
            "20",
        ])
        .args(["-q", "--ttft-ms", "2", "--itl-ms", "1", "--max-tokens", "4"])
        .arg("-o")
        .arg(&cap)
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let c: Value = serde_json::from_slice(&std::fs::read(&cap).unwrap()).unwrap();
    assert!(c["capacity"]["goodput"]["requests_per_s"].as_f64().unwrap() > 0.0);
    assert_eq!(errors(&c), Vec::<String>::new());
    let mut bad = c.clone();
    bad["capacity"]["goodput"]["good"] = (-1).into();
    assert_eq!(errors(&bad).len(), 1);

    // The validator does reject what the schema forbids.
    let mut bad = v.clone();
    bad["status"] = "bogus".into();
    bad["scenarios"][0]
        .as_object_mut()
        .unwrap()
        .remove("metrics");
    bad["scenarios"][0]["outcomes"]["succeeded"] = (-1).into();
    let errs = errors(&bad);
    assert_eq!(errs.len(), 3, "{errs:?}");
}
