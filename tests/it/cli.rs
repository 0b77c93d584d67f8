//! The command line itself (issue 20): help that fits a screen, colour only on terminals,
//! completions and the manual page, machine-readable output.

use crate::common::*;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn help(args: &[&str]) -> String {
    let o = bin().args(args).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{args:?}: {}", text(&o.stderr));
    text(&o.stdout)
}

/// Run's headings, in the order `-h` and `--help` show them.
const HEADINGS: &[&str] = &[
    "Options:",
    "Target:",
    "Connection:",
    "Load:",
    "Workload:",
    "Output:",
    "Server and telemetry:",
    "Simulator:",
    "Simulator faults:",
];

/// The flags a section lists, in order (the word after the short form, if any).
fn section_flags(h: &str, heading: &str) -> Vec<String> {
    h.split("\n\n")
        .find(|s| s.starts_with(heading))
        .unwrap_or_else(|| panic!("no {heading} in\n{h}"))
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().find(|w| w.starts_with("--")))
        .map(|w| w.trim_end_matches(',').to_string())
        .collect()
}

fn assert_headings_in_order(h: &str) {
    let mut at = 0;
    for head in HEADINGS {
        let i = h[at..]
            .find(&format!("\n{head}\n"))
            .unwrap_or_else(|| panic!("{head} missing or out of order in\n{h}"));
        at += i + 1;
    }
}

#[test]
fn run_short_help_fits_a_screen_with_headings_and_the_everyday_flags_first() {
    for args in [
        &["run", "-h"][..],
        &["sweep", "-h"],
        &["sweep", "-c", "1,2", "-h"],
    ] {
        let h = help(args);
        let lines = h.lines().count();
        // 111 lines at the time of writing (a 333-line flat list before).
        assert!(lines < 120, "{args:?}: {lines} lines\n{h}");
        assert_headings_in_order(&h);
        // One line per flag: no help text on a line of its own.
        for l in h.lines() {
            assert!(
                !l.starts_with("          "),
                "{args:?}: a wrapped flag: {l:?}"
            );
        }
        assert_eq!(
            section_flags(&h, "Options:"),
            [
                "--requests",
                "--duration",
                "--concurrency",
                "--rate",
                "--model",
                "--backend",
                "--output",
                "--report",
                "--slo",
                "--quiet",
                "--file",
                "--help"
            ],
            "{args:?}"
        );
        assert!(section_flags(&h, "Load:").contains(&"--arrival".to_string()));
        assert!(section_flags(&h, "Simulator faults:").contains(&"--fault".to_string()));
        assert!(
            !h.contains("Examples:"),
            "{args:?}: examples belong to --help"
        );
    }
}

#[test]
fn long_help_ends_with_examples_and_keeps_the_details() {
    for args in [&["run", "--help"][..], &["help", "run"]] {
        let h = help(args);
        assert_headings_in_order(&h);
        let ex = h.find("\nExamples:\n").expect("examples");
        assert!(
            ex > h.find("Simulator faults:").unwrap(),
            "examples come last"
        );
        assert!(h[ex..].contains("llmbench run -n 64 -c 8"), "{h}");
        assert!(h[ex..].contains("-o -"), "{h}");
        // The second paragraph of a flag's doc appears only in the long help.
        assert!(h.contains("stale_connection_resent"), "{h}");
    }
    for args in [
        &["sweep", "--help"][..],
        &["help", "sweep"],
        &["sweep", "-c", "1,2", "--help"],
    ] {
        let h = help(args);
        assert!(h.contains("Usage: llmbench sweep [OPTIONS] [URL]"), "{h}");
        assert!(h.contains("Exactly one of --concurrency"), "{h}");
        assert_headings_in_order(&h);
        assert!(
            h.contains("\nExamples:\n") && h.contains("llmbench sweep --concurrency 1,8,16,32,64"),
            "{args:?}: {h}"
        );
    }
    assert!(help(&["run", "-h"]).lines().count() < help(&["run", "--help"]).lines().count());
}

#[test]
fn serve_help_groups_the_simulator_flags() {
    let h = help(&["serve", "-h"]);
    assert!(
        section_flags(&h, "Options:").contains(&"--port".to_string()),
        "{h}"
    );
    assert!(
        section_flags(&h, "Simulator:").contains(&"--ttft-ms".to_string()),
        "{h}"
    );
    assert!(
        section_flags(&h, "Simulator faults:").contains(&"--fault-rate".to_string()),
        "{h}"
    );
}

/// A run of the simulator whose targets give one PASS and one FAIL (exit 3).
const VERDICT_RUN: &[&str] = &[
    "run",
    "-n",
    "2",
    "--ttft-ms",
    "5",
    "--itl-ms",
    "1",
    "--tokens",
    "3",
    "-q",
    "--slo",
    "ttft_p50<10s,ttft_p50<0.001ms",
];

#[test]
fn no_colour_through_a_pipe_even_without_no_color() {
    let o = bin()
        .env_remove("NO_COLOR")
        .args(VERDICT_RUN)
        .output()
        .unwrap();
    let (out, err) = (text(&o.stdout), text(&o.stderr));
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(out.contains("PASS") && out.contains("FAIL"), "{out}");
    assert!(err.contains("error: performance targets"), "{err}");
    assert!(
        !o.stdout.contains(&0x1b) && !o.stderr.contains(&0x1b),
        "{out}{err}"
    );
    // clap's own errors too.
    let o = bin()
        .env_remove("NO_COLOR")
        .args(["run", "-c", "x"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(!o.stderr.contains(&0x1b), "{}", text(&o.stderr));
}

/// Runs `argv` with a pseudo-terminal as its standard streams (util-linux `script`); `None`
/// when `script` is not installed.
fn on_a_terminal(argv: &[&str], no_color: Option<&str>) -> Option<String> {
    let probe = std::process::Command::new("script")
        .arg("--version")
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        eprintln!("skipped: util-linux `script` is not installed");
        return None;
    }
    let home = std::env::temp_dir().join("llmbench-it-no-home");
    let line = std::iter::once(env!("CARGO_BIN_EXE_llmbench"))
        .chain(argv.iter().copied())
        .map(|a| format!("'{a}'"))
        .collect::<Vec<_>>()
        .join(" ");
    let mut c = std::process::Command::new("script");
    c.args(["-qec", &line, "/dev/null"])
        .env("LLMBENCH_NO_STORE", "1")
        .env("LLMBENCH_HOME", home)
        .env_remove("OPENAI_API_KEY")
        .env_remove("NO_COLOR");
    if let Some(v) = no_color {
        c.env("NO_COLOR", v);
    }
    let o = c.stdin(std::process::Stdio::null()).output().unwrap();
    Some(text(&o.stdout))
}

#[test]
fn colour_on_a_terminal_unless_no_color() {
    let Some(t) = on_a_terminal(VERDICT_RUN, None) else {
        return;
    };
    let red_fail = format!("{}FAIL", anstyle_red());
    assert!(t.contains(&red_fail), "{t:?}");
    assert!(t.contains("\x1b[") && t.contains("PASS"), "{t:?}");
    assert!(t.contains(&format!("{}error:", anstyle_red())), "{t:?}");
    for v in ["1", "true"] {
        let t = on_a_terminal(VERDICT_RUN, Some(v)).unwrap();
        assert!(
            t.contains("FAIL") && t.contains("error: performance"),
            "{t:?}"
        );
        assert!(!t.contains('\x1b'), "NO_COLOR={v}: {t:?}");
    }
}

/// Bold red, as the console writes it.
fn anstyle_red() -> &'static str {
    "\x1b[1m\x1b[31m"
}

#[test]
fn completions_for_each_shell_name_the_commands_and_the_sweep_flags() {
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let s = help(&["completions", shell]);
        assert!(s.len() > 1000, "{shell}: {} bytes", s.len());
        // Flags as each shell spells them (fish: `-l concurrency`).
        for word in ["run", "sweep", "serve", "completions", "concurrency", "slo"] {
            assert!(s.contains(word), "{shell}: no {word}");
        }
        if shell == "fish" {
            assert!(
                s.contains("using_subcommand sweep\" -s c -l concurrency"),
                "a sweep's flags: {s}"
            );
        }
        if shell == "bash" {
            // The sweep's own flags complete too: its entry lists run's options.
            let sweep = s
                .find("\n        llmbench__subcmd__sweep)")
                .expect("a sweep case");
            let opts = &s[sweep..sweep + s[sweep..].find("opts=").unwrap() + 2000];
            assert!(opts.contains("--prompt-tokens"), "{opts}");
        }
    }
    let dir = TempDir::new("completions");
    let path = dir.path("llmbench.bash");
    std::fs::write(&path, help(&["completions", "bash"])).unwrap();
    match std::process::Command::new("bash")
        .arg("-n")
        .arg(&path)
        .output()
    {
        Ok(o) => assert!(o.status.success(), "bash -n: {}", text(&o.stderr)),
        Err(e) => eprintln!("skipped bash -n: {e}"),
    }
    let o = bin().args(["completions", "tcsh"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
}

/// A page's first request after clap_mangen's two-line preamble (`.ie`/`.el`: the apostrophe
/// string for groff and other roffs): the `.TH` title line.
fn title_line(page: &str) -> &str {
    page.lines()
        .find(|l| !l.starts_with(".ie ") && !l.starts_with(".el "))
        .unwrap_or_default()
}

#[test]
fn man_pages_are_roff() {
    let m = help(&["man"]);
    assert!(
        m.starts_with(".ie ") || m.starts_with(".TH"),
        "{}",
        &m[..m.len().min(200)]
    );
    assert_eq!(title_line(&m), ".TH llmbench 1  \"llmbench 0.1.0\" ");
    for sub in ["run", "sweep", "completions", "man"] {
        assert!(
            m.contains(&format!("llmbench\\-{sub}(1)")),
            "{sub} listed: {m}"
        );
    }
    let r = help(&["man", "run"]);
    assert!(
        title_line(&r).starts_with(".TH llmbench-run 1 "),
        "{}",
        title_line(&r)
    );
    assert!(
        title_line(&r).contains("llmbench 0.1.0"),
        "{}",
        title_line(&r)
    );
    assert!(r.contains("\\-\\-concurrency"), "run's flags");
    assert!(r.contains("Examples:"), "run's examples");
    let s = help(&["man", "sweep"]);
    assert!(
        s.contains("\\-\\-prompt\\-tokens"),
        "a sweep's page lists run's flags"
    );
    let o = bin().args(["man", "nosuch"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("man nosuch: no such command"));
}

/// A quick run of the simulator's fixed mode.
const QUICK: &[&str] = &["--ttft-ms", "5", "--itl-ms", "1", "--tokens", "8"];

#[test]
fn dash_output_puts_the_result_json_alone_on_stdout() {
    let o = bin()
        .args(["run", "--requests", "8", "-o", "-"])
        .args(QUICK)
        .output()
        .unwrap();
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    // The whole of standard output is one JSON document: nothing before or after it.
    let v: serde_json::Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: stdout {:?}", text(&o.stdout)));
    assert_eq!(v["schema_version"], 1);
    assert_eq!(v["status"], "completed");
    assert_eq!(v["target"]["simulated"], true);
    let sc = &v["scenarios"][0];
    assert_eq!(sc["outcomes"]["scheduled"], 8, "{sc}");
    assert!(
        sc["metrics"]["ttft_ms"]["p50"].as_f64().unwrap() >= 5.0,
        "{sc}"
    );
    assert_eq!(sc["metrics"]["output_tokens"]["total"], 64, "{sc}");
    let r: llmbench::results::file::ResultFile = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r.scenarios.len(), 1);
    // The console summary went to standard error.
    assert!(
        err.contains("Scenario default") && err.contains("TTFT"),
        "{err}"
    );

    // A sweep too: one document with a scenario per step.
    let o = bin()
        .args(["sweep", "-c", "1,2", "-n", "2", "-o", "-"])
        .args(QUICK)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["scenarios"].as_array().unwrap().len(), 2);
}

#[test]
fn history_json_lists_the_stored_runs() {
    let home = TempDir::new("history-json");
    let o = with_home(&home.0)
        .args(["history", "--json"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v, serde_json::json!([]), "an empty store is an empty array");
    let mut ids = Vec::new();
    for _ in 0..2 {
        let o = with_home(&home.0)
            .args(["run", "-n", "2", "-q", "-o", "-"])
            .args(QUICK)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
        let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        ids.push(r["run_id"].as_str().unwrap().to_string());
    }
    let o = with_home(&home.0)
        .args(["history", "--json"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let runs = v.as_array().unwrap();
    assert_eq!(runs.len(), 2, "{v}");
    let mut listed: Vec<String> = runs
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    listed.sort();
    ids.sort();
    assert_eq!(listed, ids);
    for r in runs {
        assert_eq!(r["status"], "completed");
        assert_eq!(r["scenarios"], 1);
        assert!(
            r["summary"][0]["ttft_p50_ms"].as_f64().unwrap() >= 5.0,
            "{r}"
        );
    }
}

/// The one JSON object a `--json` failure writes on standard error.
fn json_error(o: &std::process::Output) -> serde_json::Value {
    let err = text(&o.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    serde_json::from_str(&err).unwrap_or_else(|e| panic!("{e}: {err}"))
}

#[test]
fn json_errors_are_one_object_with_the_exit_code() {
    // A value clap refuses.
    let o = bin()
        .args(["--json", "run", "-c", "many"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(o.stdout.is_empty());
    let v = json_error(&o);
    assert_eq!(v["exit_code"], 2);
    let msg = v["error"].as_str().unwrap();
    assert!(
        msg.contains("--concurrency") && msg.contains("many"),
        "{msg}"
    );
    assert!(!msg.starts_with("error:"), "{msg}");
    // A value the settings pass refuses (before any request).
    let o = bin()
        .args(["--json", "run", "--dataset", "/no/such/prompts.jsonl"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let v = json_error(&o);
    assert_eq!(v["exit_code"], 2);
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("/no/such/prompts.jsonl"),
        "{v}"
    );
    // Without --json, the usual text.
    let o = bin().args(["run", "-c", "many"]).output().unwrap();
    assert!(
        text(&o.stderr).starts_with("error: "),
        "{}",
        text(&o.stderr)
    );
    // Help is not an error.
    let o = bin().args(["--json", "run", "-h"]).output().unwrap();
    assert_eq!(o.status.code(), Some(0));
    assert!(text(&o.stdout).contains("Usage: llmbench run"));
}

#[test]
fn a_sweep_says_each_step_and_ends_with_one_comparison_table() {
    let o = bin()
        .args(["sweep", "-c", "1,2,4", "-n", "4"])
        .args(QUICK)
        .output()
        .unwrap();
    let (out, err) = (text(&o.stdout), text(&o.stderr));
    assert_eq!(o.status.code(), Some(0), "{err}");
    for (i, c) in ["1", "2", "4"].iter().enumerate() {
        assert!(
            err.contains(&format!("Step {}/3: concurrency={c}\n", i + 1)),
            "{err}"
        );
    }
    let at = out.find("Sweep of concurrency: 3 steps").expect(&out);
    assert!(
        at > out.find("Scenario concurrency=4").unwrap(),
        "the table comes last"
    );
    let table = &out[at..];
    for col in [
        "load",
        "req/s",
        "out tok/s",
        "TTFT p50",
        "TTFT p99",
        "TPOT p50",
        "E2E p99",
        "errors",
    ] {
        assert!(table.contains(col), "{col}: {table}");
    }
    let rows: Vec<&str> = table
        .lines()
        .filter(|l| l.contains("concurrency="))
        .collect();
    assert_eq!(rows.len(), 3, "{table}");
    for (row, c) in rows.iter().zip(["c=1", "c=2", "c=4"]) {
        assert!(row.contains(c), "{row}");
        // No request failed: the last cell is 0.
        let cells: Vec<&str> = row.split(['│', '┆']).map(str::trim).collect();
        assert_eq!(cells[cells.len() - 2], "0", "{row}");
    }
    // A plain run prints neither.
    let o = bin().args(["run", "-n", "2"]).args(QUICK).output().unwrap();
    assert!(!text(&o.stderr).contains("Step 1/") && !text(&o.stdout).contains("Sweep of"));
}

#[test]
fn live_view_on_a_terminal_shows_eta_in_flight_and_recent_latency_then_clears() {
    let argv = [
        "run",
        "--requests",
        "80",
        "-c",
        "4",
        "--ttft-ms",
        "20",
        "--itl-ms",
        "5",
        "--tokens",
        "20",
    ];
    let Some(t) = on_a_terminal(&argv, Some("1")) else {
        return;
    };
    // A frame of the bar: progress, ETA, in flight, current rates, recent TTFT and ITL.
    let frame = t
        .split(['\r', '\n'])
        .rfind(|l| l.contains("in flight"))
        .unwrap_or_else(|| panic!("no live frame in {t:?}"));
    for part in [
        "/80",
        "ETA",
        "in flight",
        "tok/s",
        "req/s",
        "TTFT p50",
        "ITL p50",
        "errors 0",
    ] {
        assert!(frame.contains(part), "{part:?} missing from {frame:?}");
    }
    // The bar is cleared before the summary: nothing of it after the last clear-line.
    let last_clear = t.rfind("\x1b[2K").expect("the bar clears its line");
    let after = &t[last_clear..];
    assert!(!after.contains("in flight"), "{after:?}");
    assert!(after.contains("TTFT"), "the summary follows: {after:?}");
}

#[test]
fn tui_on_a_terminal_draws_full_screen_with_a_histogram_and_gives_the_screen_back() {
    let argv = [
        "run",
        "--tui",
        "--requests",
        "120",
        "-c",
        "4",
        "--ttft-ms",
        "20",
        "--itl-ms",
        "5",
        "--tokens",
        "20",
    ];
    let Some(t) = on_a_terminal(&argv, Some("1")) else {
        return;
    };
    let enter = t.find("\x1b[?1049h").expect("enters the alternate screen");
    let leave = t.rfind("\x1b[?1049l").expect("leaves the alternate screen");
    assert!(enter < leave);
    let screen = &t[enter..leave];
    // The last full frame drawn.
    let frame = screen
        .rsplit("\x1b[H\x1b[2J")
        .next()
        .unwrap()
        .replace("\x1b[K", "");
    for part in [
        "llmbench · default",
        "/120 requests",
        "in flight",
        "tok/s",
        "TTFT of the latest requests",
        " ms █",
    ] {
        assert!(frame.contains(part), "{part:?} missing from {frame:?}");
    }
    // The summary is printed on the main screen, after the view is gone; no bar was drawn.
    assert!(t[leave..].contains("TTFT"), "{:?}", &t[leave..]);
    assert!(!t.contains("ETA"), "the progress bar was drawn too");
}
