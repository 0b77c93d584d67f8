//! Outputs that cannot be written mid-run (a full disk): the run stops sending, keeps what it
//! measured, stores the run and says what failed. A full disk is made real with the shell's
//! `ulimit -f` (each file the run writes may grow to 64 KiB; writes past that fail with EFBIG,
//! as they would with ENOSPC, and SIGXFSZ is ignored so the write returns the error).

use std::process::Command;

use llmbench::measure::record::Outcome;
use llmbench::results::file::{ResultFile, RunStatus};

use crate::common::*;

/// `llmbench ARGS` under a 64 KiB limit per written file, with the results store in `home`.
fn limited(home: &TempDir, args: &[&str]) -> std::process::Output {
    Command::new("bash")
        .arg("-c")
        .arg("ulimit -f 64; trap '' XFSZ; exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_llmbench"))
        .args(args)
        .env_remove("LLMBENCH_NO_STORE")
        .env_remove("OPENAI_API_KEY")
        .env("LLMBENCH_HOME", &home.0)
        .output()
        .unwrap()
}

#[test]
fn a_records_file_that_fills_the_disk_stops_the_run_and_keeps_what_was_measured() {
    let dir = TempDir::new("diskfull");
    let (result, records) = (dir.path("r.json"), dir.path("rec.jsonl"));
    let out = limited(
        &dir,
        &[
            "run",
            "--ttft-ms",
            "1",
            "--itl-ms",
            "1",
            "--tokens",
            "8",
            "-n",
            "20000",
            "-c",
            "4",
            "-q",
            "-o",
            result.to_str().unwrap(),
            "--records",
            records.to_str().unwrap(),
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("error: cannot write to the records file: File too large"),
        "{stderr}"
    );
    // The summary was printed, and the result says what failed.
    assert!(stdout.contains("Outcomes:"), "{stdout}");
    let res = ResultFile::read(&result).unwrap();
    assert_eq!(res.status, RunStatus::WriteFailed);
    assert!(res.failure.as_deref().unwrap().contains("records file"));
    let sc = &res.scenarios[0];
    // Scheduling stopped soon after the failure: far fewer than the 20,000 asked for, and
    // the requests in flight finished.
    assert!(sc.outcomes.scheduled < 2000, "{:?}", sc.outcomes);
    assert_eq!(sc.outcomes.get(Outcome::Succeeded), sc.outcomes.scheduled);
    // The records file holds only whole lines.
    let text = std::fs::read(&records).unwrap();
    assert!(text.len() <= 64 * 1024 && text.ends_with(b"\n"));
    let kept = llmbench::results::records::read_records(&records).unwrap();
    assert!(!kept.is_empty() && kept.len() as u64 <= sc.outcomes.scheduled);
    // The run was stored, with its status.
    let history = with_home(&dir.0).arg("history").output().unwrap();
    let listed = String::from_utf8_lossy(&history.stdout);
    assert!(listed.contains(&res.run_id), "{listed}");
    assert!(listed.contains("write_failed"), "{listed}");
}

#[test]
fn a_result_file_that_cannot_be_written_still_stores_the_run() {
    // The result's directory disappears during the run (as a full or unmounted disk would
    // take it): the result cannot be written at the end, the run is stored all the same,
    // and nothing is left behind.
    let dir = TempDir::new("outgone");
    let out_dir = dir.path("out");
    std::fs::create_dir(&out_dir).unwrap();
    let result = out_dir.join("r.json");
    let child = with_home(&dir.0)
        .args(["run", "--ttft-ms", "20", "--itl-ms", "20", "--tokens", "10"])
        .args(["-n", "40", "-c", "2", "-q", "-o"])
        .arg(&result)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(800));
    std::fs::remove_dir_all(&out_dir).unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("cannot write result file"), "{stderr}");
    assert!(stderr.contains("Recorded as run"), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("Outcomes:"));
    assert!(!out_dir.exists(), "no directory or .tmp re-created");
    let history = with_home(&dir.0).arg("history").output().unwrap();
    assert!(
        String::from_utf8_lossy(&history.stdout).contains("completed"),
        "{}",
        String::from_utf8_lossy(&history.stdout)
    );
}
