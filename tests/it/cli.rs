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
