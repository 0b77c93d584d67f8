//! Issue 18: `llmbench k8s` writes a manifest that validates against Kubernetes' own schemas
//! (offline, PyPI's kubernetes-validate, which bundles them; `.ci/run` installs it), refuses
//! what cannot run sharded, and shard results collected as `kubectl logs` merge.

use std::path::PathBuf;
use std::process::Command;

use crate::common::*;

/// The validator: `$LLMBENCH_KUBERNETES_VALIDATE`, else `kubernetes-validate` on the PATH.
fn validator() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("LLMBENCH_KUBERNETES_VALIDATE") {
        return Some(PathBuf::from(p));
    }
    let found = Command::new("kubernetes-validate")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    found.then(|| PathBuf::from("kubernetes-validate"))
}

fn k8s(args: &[&str]) -> std::process::Output {
    bin().arg("k8s").args(args).output().unwrap()
}

#[test]
fn the_manifest_validates_against_the_kubernetes_schemas() {
    let dir = TempDir::new("k8s");
    for extra in [
        &[][..],
        &[
            "--results-claim",
            "bench-results",
            "--api-key-secret",
            "vllm:token",
        ][..],
    ] {
        let parts: [&[&str]; 3] = [
            &[
                "--shards",
                "3",
                "--image",
                "example.org/llmbench:1",
                "--name",
                "bench",
            ],
            extra,
            &[
                "--",
                "http://vllm.default.svc:8000",
                "-r",
                "30",
                "-n",
                "3000",
            ],
        ];
        let o = k8s(&parts.concat());
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let text = String::from_utf8(o.stdout).unwrap();
        // Two documents: the clock Service and the Indexed Job, the shard from the index.
        let docs: Vec<serde_json::Value> = text
            .split("\n---\n")
            .skip(1)
            .map(|d| serde_json::from_str(d).unwrap())
            .collect();
        assert_eq!(docs.len(), 2, "{text}");
        assert_eq!(docs[0]["kind"], "Service");
        assert_eq!(docs[0]["spec"]["clusterIP"], "None");
        let job = &docs[1];
        assert_eq!(job["spec"]["completionMode"], "Indexed");
        assert_eq!(job["spec"]["completions"], 3);
        let args = job["spec"]["template"]["spec"]["containers"][0]["args"].to_string();
        assert!(
            args.contains(r#""--shard","$(JOB_COMPLETION_INDEX)/3""#),
            "{args}"
        );
        assert!(
            args.contains(r#""--clock","http://bench-clock:7777""#),
            "{args}"
        );
        let path = dir.path("job.yaml");
        std::fs::write(&path, &text).unwrap();
        match validator() {
            Some(v) => {
                // Strict: no field the schema does not know. A release with native sidecars
                // (1.29 on) and the newest bundled.
                for version in ["1.30.0", "1.35.0"] {
                    let o = Command::new(&v)
                        .args(["--strict", "-k", version])
                        .arg(&path)
                        .output()
                        .expect("run kubernetes-validate");
                    assert!(
                        o.status.success(),
                        "{version}: {}{}",
                        String::from_utf8_lossy(&o.stdout),
                        String::from_utf8_lossy(&o.stderr)
                    );
                }
            }
            None if std::env::var_os("CI").is_some() => {
                panic!("kubernetes-validate is missing: .ci/run installs it")
            }
            None => eprintln!(
                "SKIPPED schema validation: kubernetes-validate not found (pip install kubernetes-validate, or set LLMBENCH_KUBERNETES_VALIDATE)"
            ),
        }
    }
    // The validator does catch a bad manifest.
    if let Some(v) = validator() {
        let bad = dir.path("bad.yaml");
        std::fs::write(
            &bad,
            r#"{"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "x"}, "spec": {"completionMode": "Indexed", "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "a", "image": "b", "argz": []}]}}}}"#,
        )
        .unwrap();
        let o = Command::new(&v)
            .args(["--strict"])
            .arg(&bad)
            .output()
            .unwrap();
        assert!(!o.status.success());
    }
}

#[test]
fn k8s_refuses_what_cannot_run_sharded() {
    let base = ["--shards", "3", "--image", "img"];
    for (run, want) in [
        (vec!["-r", "5"], "without a URL"),
        (vec!["http://s:8000", "-o", "r.json"], "cannot pass -o"),
        (vec!["http://s:8000", "--records", "r.jsonl"], "--records"),
        (vec!["http://s:8000", "--report", "d"], "--report"),
        (vec!["http://s:8000", "--shard", "0/2"], "the Job sets them"),
        (vec!["http://s:8000", "--warmup", "3"], "--warmup"),
        (
            vec!["http://s:8000", "-c", "2"],
            "cannot be split over 3 shards",
        ),
        (vec!["http://s:8000", "--until", "ttft_p99±5%"], "--until"),
        (
            vec!["http://s:8000", "--server-cmd", "vllm serve m"],
            "--server-cmd",
        ),
    ] {
        let args: Vec<&str> = base
            .iter()
            .copied()
            .chain(["--"])
            .chain(run.clone())
            .collect();
        let o = k8s(&args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{run:?}: {err}");
        assert!(err.contains(want), "{run:?}: {err}");
        assert!(o.stdout.is_empty(), "{run:?}");
        assert!(!err.contains("sk-1") && !err.contains("pw@"), "{err}");
    }
    let o = k8s(&[
        "--shards",
        "2",
        "--image",
        "i",
        "--name",
        "Bad_Name",
        "--",
        "http://s:8000",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--name"));
}

/// Shards that write their results to standard output, collected as `kubectl logs` collects
/// them (standard error mixed in), merge.
#[test]
fn shard_results_in_logs_merge() {
    let sim = ServeChild::start(&["--ttft-ms", "5", "--itl-ms", "1"]);
    let dir = TempDir::new("k8s-logs");
    let at = (chrono::Utc::now() + chrono::Duration::milliseconds(1500))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let children: Vec<_> = (0..2)
        .map(|k| {
            let log = std::fs::File::create(dir.path(&format!("shard-{k}.log"))).unwrap();
            bin()
                .args([
                    "run",
                    &sim.url,
                    "-r",
                    "100",
                    "-n",
                    "40",
                    "--max-tokens",
                    "4",
                ])
                .args([
                    "--shard",
                    &format!("{k}/2"),
                    "--start-at",
                    &at,
                    "-q",
                    "-o",
                    "-",
                ])
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let merged = dir.path("merged.json");
    let o = bin()
        .arg("merge")
        .arg(dir.path("shard-0.log"))
        .arg(dir.path("shard-1.log"))
        .arg("-o")
        .arg(&merged)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r = llmbench::results::file::ResultFile::read(&merged).unwrap();
    assert_eq!(r.scenarios[0].outcomes.scheduled, 40);
}
