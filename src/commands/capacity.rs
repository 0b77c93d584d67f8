//! `llmbench capacity`: the highest load meeting every `--slo` target. Each step is a `run`
//! scenario at one load, chosen from the steps before it (`load::Steps`), on one warm server
//! and one client; the statistics and the search are `measure::capacity`.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::Context;
use clap::Parser;

use crate::cli::{CapacityArgs, CapacityFlags, RunArgs};
use crate::load::{Scenario, Steps, Watch};
use crate::measure::capacity::{
    By, CapacityResult, CapacityStep, Search, StepValues, TargetCheck, Verdict, step_verdict,
};
use crate::measure::steady::{Timing, ramp_end};
use crate::results::file::{ResultFile, ScenarioResult};
use crate::settings::capacity::{CapacitySettings, MAX_LOAD, capacity_settings, set_load};
use crate::settings::run_settings;

#[derive(Parser)]
struct CapacityOnly {
    #[command(flatten)]
    run: RunArgs,
    #[command(flatten)]
    cap: CapacityFlags,
}

fn parse(argv: &[String]) -> anyhow::Result<(RunArgs, CapacityFlags)> {
    use clap::{CommandFactory, FromArgMatches};
    let render = |e: clap::Error| {
        let t = e.render().to_string();
        let t = t.trim_end();
        anyhow::anyhow!("{}", t.strip_prefix("error: ").unwrap_or(t))
    };
    let m = CapacityOnly::command()
        .name("llmbench capacity")
        .try_get_matches_from(std::iter::once("llmbench capacity".to_string()).chain(argv.to_vec()))
        .map_err(render)?;
    let c = CapacityOnly::from_arg_matches(&m).map_err(render)?;
    Ok((c.run, c.cap))
}

/// Runs the search; returns the process exit code (3 when no load met the targets).
pub async fn capacity(a: CapacityArgs) -> anyhow::Result<i32> {
    let (mut run, flags) = parse(&a.args)?;
    let cap = capacity_settings(&mut run, &flags)?;
    set_load(&mut run, cap.by, cap.start);
    // Every flag is checked here, at the first load, before anything is sent.
    let mut plan = run_settings(&run)?;
    if plan.scenarios.len() != 1 {
        anyhow::bail!("capacity runs one scenario per load: give one workload");
    }
    plan.scenarios.clear();
    plan.steps = Some(Box::new(CapacitySteps::new(a.args.clone(), cap)));
    super::run::execute(plan).await
}

/// What the watcher of the running step has seen.
#[derive(Default)]
struct StepState {
    values: StepValues,
    /// The finished requests' times, for the ramp-up seen so far.
    timings: Vec<Timing>,
    next_look: u64,
    decided: Option<Verdict>,
    /// Window of an early verdict that left a ramp-up out: (ramp end, last send seen).
    decided_window: Option<(f64, f64)>,
}

struct Pending {
    load: f64,
    state: Arc<Mutex<StepState>>,
}

/// The search as `load::Steps`: one scenario per load.
struct CapacitySteps {
    argv: Vec<String>,
    cap: CapacitySettings,
    search: Search,
    started: Instant,
    pending: Option<Pending>,
    steps: Vec<CapacityStep>,
    ended: Option<&'static str>,
}

impl CapacitySteps {
    fn new(argv: Vec<String>, cap: CapacitySettings) -> Self {
        Self {
            argv,
            search: Search::new(cap.by, cap.start, cap.precision),
            cap,
            started: Instant::now(),
            pending: None,
            steps: Vec::new(),
            ended: None,
        }
    }

    fn label(&self, load: f64) -> String {
        match self.cap.by {
            By::Concurrency => format!("concurrency={load}"),
            By::Rate => format!("rate={}", trim(load)),
        }
    }

    /// The step's scenario: `run`'s flags at this load, with a seed of its own so synthetic
    /// prompts of one step never hit a prefix cache another step warmed.
    fn scenario(&self, load: f64) -> anyhow::Result<Scenario> {
        let (mut run, flags) = parse(&self.argv)?;
        capacity_settings(&mut run, &flags)?;
        set_load(&mut run, self.cap.by, load);
        run.seed = run.seed.wrapping_add(self.steps.len() as u64);
        let seed = run.seed;
        let mut sc = run_settings(&run)?
            .scenarios
            .into_iter()
            .next()
            .context("no scenario")?;
        sc.name = self.label(load);
        sc.params.seed = Some(seed);
        sc.params.sweep = Some(crate::results::params::SweepPoint {
            name: self.cap.by.name().to_string(),
            value: crate::results::params::SweepValue::parse(&trim(load)),
        });
        Ok(sc)
    }

    /// Closes the step that ran: its verdict (decided early, else from every record, else
    /// undecided) goes into the search and the table.
    fn close(&mut self, done: Option<&ScenarioResult>) {
        let Some(p) = self.pending.take() else {
            return;
        };
        let st = p.state.lock().expect("step state");
        // A step that ran to its budget is judged on its steady-state window when a ramp or
        // drain was detected; an early verdict stands on the records it was decided on.
        let window = match st.decided {
            Some(_) => st.decided_window,
            None => done
                .and_then(|d| d.steady_state.as_ref())
                .map(|w| (w.start_ms, w.end_ms)),
        };
        let checks: Vec<TargetCheck> = match window {
            Some((a, b)) => st.values.within(a, b).check(&self.cap.targets),
            None => st.values.check(&self.cap.targets),
        };
        let verdict = st.decided.unwrap_or_else(|| step_verdict(&checks));
        self.search.record(p.load, verdict);
        self.steps.push(CapacityStep {
            load: p.load,
            scenario: self.label(p.load),
            requests: st.values.finished,
            verdict,
            stopped_early: st.decided.is_some(),
            duration_s: done.map_or(0.0, |d| d.metrics.duration_s),
            targets: checks,
            window_ms: window,
        });
        eprintln!(
            "{}",
            crate::report::capacity::step_line(self.steps.last().unwrap())
        );
    }

    fn watcher(&self, load: f64) -> (Watch, Arc<Mutex<StepState>>) {
        let every = self
            .cap
            .check_every
            .unwrap_or_else(|| (load.ceil() as u64).max(5));
        let state = Arc::new(Mutex::new(StepState {
            values: StepValues::new(self.cap.targets.len()),
            timings: Vec::new(),
            next_look: every,
            decided: None,
            decided_window: None,
        }));
        let (s, targets) = (state.clone(), self.cap.targets.clone());
        let watch: Watch = Box::new(move |r| {
            let mut st = s.lock().expect("step state");
            if st.decided.is_some() {
                st.values.add(&targets, r);
                return true;
            }
            st.values.add(&targets, r);
            st.timings.extend(Timing::of(r));
            if st.values.finished >= st.next_look {
                st.next_look += every;
                // A ramp-up seen so far is left out, as the steady-state window would.
                let (checks, window) = match ramp_end(&st.timings) {
                    Some(a) => {
                        let last = st.timings.iter().map(|t| t.sent_ms).fold(a, f64::max);
                        (st.values.within(a, last).check(&targets), Some((a, last)))
                    }
                    None => (st.values.check(&targets), None),
                };
                let v = step_verdict(&checks);
                if v != Verdict::Undecided {
                    st.decided = Some(v);
                    st.decided_window = window;
                    return true;
                }
            }
            false
        });
        (watch, state)
    }
}

fn trim(x: f64) -> String {
    let s = format!("{x:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

impl Steps for CapacitySteps {
    fn next(&mut self, done: &[ScenarioResult]) -> Option<(Scenario, Option<Watch>)> {
        self.close(done.last());
        if self.ended.is_some() {
            return None;
        }
        if self.started.elapsed() >= self.cap.max_time {
            self.ended = Some("max_time");
            return None;
        }
        let Some(load) = self.search.next() else {
            self.ended = Some(if self.search.pass.is_some() {
                "converged"
            } else {
                "no_pass"
            });
            return None;
        };
        if load > MAX_LOAD {
            self.ended = Some("max_load");
            return None;
        }
        let sc = match self.scenario(load) {
            Ok(sc) => sc,
            Err(e) => {
                eprintln!("error: capacity step at {}: {e:#}", self.label(load));
                self.ended = Some("error");
                return None;
            }
        };
        let (watch, state) = self.watcher(load);
        self.pending = Some(Pending { load, state });
        Some((sc, Some(watch)))
    }

    fn finish(&mut self, result: &mut ResultFile, cancelled: bool) {
        self.close(result.scenarios.last());
        let goodput = self.search.pass.and_then(|load| {
            let name = self.label(load);
            let sc = result.scenarios.iter().rev().find(|s| s.name == name)?;
            crate::measure::capacity_goodput::at_capacity(
                load,
                &name,
                &self.cap.targets,
                sc.measured(),
            )
        });
        let c = CapacityResult {
            by: self.cap.by,
            slo: self.cap.targets.iter().map(|t| t.spec.clone()).collect(),
            confidence: crate::measure::capacity::CONFIDENCE,
            capacity: self.search.pass,
            first_fail: self.search.fail,
            ended: if cancelled {
                "cancelled"
            } else {
                self.ended.unwrap_or("converged")
            }
            .to_string(),
            requests: self.steps.iter().map(|s| s.requests).sum(),
            duration_s: self.started.elapsed().as_secs_f64(),
            steps: std::mem::take(&mut self.steps),
            goodput,
        };
        println!("{}", crate::report::capacity::text(&c));
        result.capacity = Some(c);
    }
}
