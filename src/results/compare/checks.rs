//! Whether two runs are like for like: scenarios paired by name (never by position), and the
//! warnings a comparison carries when the runs differ in status, target or load shape. Pure.

use crate::results::file::{ResultFile, RunStatus, ScenarioResult, Target};
use crate::results::params::{Arrival, Load};

/// Scenarios of two runs paired by name: the k-th scenario of a name in the base run with the
/// k-th of that name in the new run, in the new run's order.
pub(crate) struct Pairing<'a> {
    /// (base, new) pairs.
    pub pairs: Vec<(&'a ScenarioResult, &'a ScenarioResult)>,
    /// Base scenarios without a partner, by name.
    pub only_base: Vec<String>,
    /// New scenarios without a partner, by name.
    pub only_new: Vec<String>,
}

/// Pairs scenarios by name; a scenario whose name the other run lacks stays unpaired, however
/// few scenarios there are.
pub(crate) fn pair<'a>(base: &'a [ScenarioResult], new: &'a [ScenarioResult]) -> Pairing<'a> {
    let mut used = vec![false; base.len()];
    let mut pairs = Vec::new();
    let mut only_new = Vec::new();
    for n in new {
        let partner = (0..base.len()).find(|&i| !used[i] && base[i].name == n.name);
        match partner {
            Some(i) => {
                used[i] = true;
                pairs.push((&base[i], n));
            }
            None => only_new.push(n.name.clone()),
        }
    }
    let only_base = base
        .iter()
        .zip(&used)
        .filter(|(_, u)| !**u)
        .map(|(b, _)| b.name.clone())
        .collect();
    Pairing {
        pairs,
        only_base,
        only_new,
    }
}

/// The warning for an unpaired scenario.
pub(crate) fn unpaired_warning(name: &str, side: &str) -> String {
    format!(
        "scenario \"{name}\" is only in the {side} run: not compared (scenarios are paired by name)"
    )
}

/// Warnings about the two runs as a whole: a run that did not complete, different targets.
pub(crate) fn run_warnings(base: &ResultFile, new: &ResultFile) -> Vec<String> {
    let mut out: Vec<String> = [("base", base.status), ("new", new.status)]
        .into_iter()
        .filter_map(|(side, s)| status_warning(side, s))
        .collect();
    out.extend(target_warning(&base.target, &new.target));
    out
}

fn status_warning(side: &str, status: RunStatus) -> Option<String> {
    let what = match status {
        RunStatus::Completed => return None,
        RunStatus::Cancelled => {
            "was cancelled: it stopped before its end, so its scenarios hold only what was measured until then (the last one may be partial, later ones missing)"
        }
        RunStatus::Running => {
            "is marked running: the file was read while the run was still going, or the run died without finishing it"
        }
        RunStatus::Failed => {
            "failed (llmbench stopped with an internal error): what it measured is kept, but the run did not finish"
        }
        RunStatus::WriteFailed => {
            "stopped when an output could not be written (a full disk): its scenarios hold what was measured until then"
        }
        RunStatus::Interrupted => {
            "was interrupted (killed) before it finished: it was rebuilt from its records, the last scenario may be partial"
        }
    };
    Some(format!("the {side} run {what}"))
}

fn target_warning(b: &Target, n: &Target) -> Option<String> {
    let mut diffs = Vec::new();
    match (b.simulated, n.simulated) {
        // The built-in simulator listens on a new port each run: its URL says nothing.
        (true, true) => {}
        (false, false) if b.url != n.url => diffs.push(format!("url {} → {}", b.url, n.url)),
        (false, false) => {}
        (bs, _) => {
            let what = |sim: bool, url: &str| {
                if sim {
                    "the built-in simulator".to_string()
                } else {
                    url.to_string()
                }
            };
            diffs.push(format!("{} → {}", what(bs, &b.url), what(!bs, &n.url)));
        }
    }
    if b.backend != n.backend {
        diffs.push(format!("backend {} → {}", b.backend, n.backend));
    }
    if b.model != n.model {
        diffs.push(format!("model {} → {}", b.model, n.model));
    }
    (!diffs.is_empty()).then(|| {
        format!(
            "the runs measured different targets ({}): a change may be the target's, not one server's",
            diffs.join("; ")
        )
    })
}

/// The load shape in words.
pub(crate) fn describe(load: Option<Load>) -> String {
    match load {
        None => "not recorded".into(),
        Some(Load::Closed { concurrency }) => format!("closed loop, concurrency {concurrency}"),
        Some(Load::Open {
            rate,
            arrival,
            max_concurrency,
        }) => {
            let arrival = match arrival {
                Arrival::Constant => "constant".to_string(),
                Arrival::Poisson => "poisson".to_string(),
                Arrival::Gamma { cv } => format!("gamma (CV {cv})"),
                Arrival::Trace => "trace".to_string(),
            };
            let cap = max_concurrency.map_or(String::new(), |m| format!(", max concurrency {m}"));
            format!("open loop, {rate} req/s, {arrival} arrivals{cap}")
        }
    }
}

/// The warning for a pair of scenarios run under different loads.
pub(crate) fn load_warning(base: Option<Load>, new: Option<Load>) -> Option<String> {
    (base != new).then(|| {
        format!(
            "load shape differs: base {}; new {}: latency and throughput depend on the load, so a change may be the load's, not the server's",
            describe(base),
            describe(new)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(names: &[&str]) -> Vec<ScenarioResult> {
        names
            .iter()
            .map(|n| ScenarioResult {
                name: n.to_string(),
                ..Default::default()
            })
            .collect()
    }

    #[test]
    fn differently_named_scenarios_are_never_paired() {
        let (b, n) = (named(&["fast"]), named(&["slow"]));
        let p = pair(&b, &n);
        assert!(p.pairs.is_empty());
        assert_eq!(
            (p.only_base, p.only_new),
            (vec!["fast".into()], vec!["slow".into()])
        );
        // Pairs by name whatever the order; repeated names pair in turn.
        let (b, n) = (named(&["a", "b", "a"]), named(&["b", "a", "c", "a", "a"]));
        let p = pair(&b, &n);
        let got: Vec<(&str, &str)> = p
            .pairs
            .iter()
            .map(|(x, y)| (x.name.as_str(), y.name.as_str()))
            .collect();
        assert_eq!(got, [("b", "b"), ("a", "a"), ("a", "a")]);
        assert!(std::ptr::eq(p.pairs[1].0, &b[0]) && std::ptr::eq(p.pairs[2].0, &b[2]));
        assert_eq!(p.only_new, ["c", "a"]);
        assert!(p.only_base.is_empty());
    }

    #[test]
    fn load_shapes_that_differ_are_named_in_the_warning() {
        let closed = |c| Some(Load::Closed { concurrency: c });
        let open = |rate, arrival| {
            Some(Load::Open {
                rate,
                arrival,
                max_concurrency: None,
            })
        };
        assert_eq!(load_warning(closed(4), closed(4)), None);
        let w = load_warning(closed(4), closed(8)).unwrap();
        assert!(
            w.contains("concurrency 4") && w.contains("concurrency 8"),
            "{w}"
        );
        let w = load_warning(closed(4), open(2.0, Arrival::Poisson)).unwrap();
        assert!(
            w.contains("closed loop") && w.contains("open loop, 2 req/s"),
            "{w}"
        );
        let w = load_warning(open(2.0, Arrival::Poisson), open(3.0, Arrival::Poisson)).unwrap();
        assert!(w.contains("2 req/s") && w.contains("3 req/s"), "{w}");
        let w = load_warning(
            open(2.0, Arrival::Constant),
            open(2.0, Arrival::Gamma { cv: 2.0 }),
        )
        .unwrap();
        assert!(
            w.contains("constant arrivals") && w.contains("gamma (CV 2)"),
            "{w}"
        );
        assert!(
            load_warning(None, closed(1))
                .unwrap()
                .contains("not recorded")
        );
    }

    #[test]
    fn status_and_target_differences_are_warned() {
        let file = |status, url: &str, model: &str, simulated| ResultFile {
            status,
            target: Target {
                url: url.into(),
                backend: "openai-chat".into(),
                model: model.into(),
                simulated,
            },
            ..Default::default()
        };
        let a = file(RunStatus::Completed, "http://a/v1", "m", false);
        assert!(run_warnings(&a, &a).is_empty());
        let w = run_warnings(&a, &file(RunStatus::Cancelled, "http://a/v1", "m", false));
        assert_eq!(w.len(), 1);
        assert!(w[0].starts_with("the new run was cancelled"), "{w:?}");
        let w = run_warnings(&file(RunStatus::Failed, "http://a/v1", "m", false), &a);
        assert!(w[0].starts_with("the base run failed"), "{w:?}");
        let w = run_warnings(&a, &file(RunStatus::Completed, "http://b/v1", "n", false));
        assert_eq!(w.len(), 1);
        assert!(
            w[0].contains("url http://a/v1 → http://b/v1") && w[0].contains("model m → n"),
            "{w:?}"
        );
        // Two runs of the built-in simulator differ only in its port: no warning.
        let s1 = file(RunStatus::Completed, "http://127.0.0.1:1/v1", "m", true);
        let s2 = file(RunStatus::Completed, "http://127.0.0.1:2/v1", "m", true);
        assert!(run_warnings(&s1, &s2).is_empty());
        let w = run_warnings(&s1, &a);
        assert!(
            w[0].contains("the built-in simulator → http://a/v1"),
            "{w:?}"
        );
    }
}
