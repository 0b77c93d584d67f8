//! The one collector of a phase: every finished record passes through here, in the task that
//! runs the scenario, whether it came from the request runner or the conversation driver. It
//! writes the records file, moves the progress bar and feeds the statistics.

use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::Sinks;
use super::live::{InFlight, Live};
use super::tui::{Screen, View};
use crate::measure::record::{Outcome, Record};
use crate::measure::stats::{Accumulator, Summary};

/// What the progress bar counts.
#[derive(Clone, Copy)]
pub(crate) enum Unit {
    Requests,
    Turns,
}

/// Collects one phase (warm-up or measured) of one scenario.
pub(crate) struct Collector {
    pb: ProgressBar,
    acc: Accumulator,
    /// False for warm-up: written and shown, left out of the statistics.
    measured: bool,
    started: Instant,
    last_message: Instant,
    live: Live,
    dropped: u64,
    /// Writing the records file failed; later records are not written.
    write_failed: bool,
    /// `--tui`: the full-screen view, which takes the live figures instead of the bar.
    screen: Option<Screen>,
    /// Hand over the statistics' mergeable state too (`--shard`).
    keep_state: bool,
}

/// What a phase collected.
pub(crate) struct Collected {
    pub summary: Summary,
    /// Requests the open loop dropped (`--max-concurrency` full).
    pub dropped: u64,
    /// The statistics before they were summed up, for `merge` (`--shard` only).
    pub state: Option<Accumulator>,
}

impl Collector {
    /// A collector of `total` records (or of a run of `duration`) named `name`.
    pub fn new(
        view: View,
        total: Option<u64>,
        duration: Option<Duration>,
        name: &str,
        unit: Unit,
        measured: bool,
    ) -> Self {
        use std::io::IsTerminal as _;
        let full = view == View::Full && std::io::stderr().is_terminal();
        let target = if view == View::Line && !full {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let unit = match unit {
            Unit::Requests => "",
            Unit::Turns => " turns",
        };
        let pb = match total {
            Some(n) => ProgressBar::with_draw_target(Some(n), target).with_style(
                ProgressStyle::with_template(&format!(
                    "{{prefix}} [{{bar:30}}] {{pos}}/{{len}}{unit} {{elapsed_precise}} ETA {{eta}} | {{msg}}"
                ))
                .expect("template")
                .progress_chars("=> "),
            ),
            None => ProgressBar::with_draw_target(None, target).with_style(
                ProgressStyle::with_template(&format!(
                    "{{prefix}} {{spinner}} {{pos}}{unit} done {{elapsed_precise}} | {{msg}}"
                ))
                .expect("template"),
            ),
        };
        pb.set_prefix(name.to_string());
        if !pb.is_hidden() {
            pb.enable_steady_tick(Duration::from_millis(200));
        }
        let now = Instant::now();
        let live = Live::new(duration);
        let screen = full.then(|| {
            let mut shown = Live::new(duration);
            shown.in_flight = live.in_flight.clone();
            Screen::start(name, total, shown)
        });
        Self {
            screen,
            pb,
            acc: Accumulator::default(),
            measured,
            started: now,
            last_message: now,
            live,
            dropped: 0,
            write_failed: false,
            keep_state: false,
        }
    }

    /// Keeps the statistics' mergeable state for the result (`--shard`).
    pub fn keep_state(mut self, keep: bool) -> Self {
        self.keep_state = keep;
        self
    }

    /// Takes one finished record.
    pub async fn take(&mut self, rec: &Record, sinks: &mut Sinks) {
        self.dropped += (rec.outcome() == Outcome::Dropped) as u64;
        if let Some(w) = sinks.records.as_mut()
            && !self.write_failed
            && let Err(e) = w.write(rec).await
        {
            // A full disk: stop sending, let those in flight finish, keep what was measured.
            sinks.stop.cancel();
            sinks.failure.get_or_insert_with(|| format!("{e:#}"));
            self.write_failed = true;
        }
        if rec.retried {
            // A retried attempt: written and counted apart; its request is still running.
        } else {
            if let Some(sc) = &self.screen {
                let mut st = sc.state.lock().unwrap_or_else(|e| e.into_inner());
                st.live.take(rec);
                st.done += 1;
            } else if !self.pb.is_hidden() {
                self.live.take(rec);
            }
            self.pb.inc(1);
        }
        // The message is formatted at most every 100 ms, and never for a hidden bar (`-q`):
        // at thousands of records per second a string per record is measurable client CPU.
        if !self.pb.is_hidden() && self.last_message.elapsed() >= Duration::from_millis(100) {
            self.last_message = Instant::now();
            self.message();
        }
        if self.measured {
            self.acc.add(rec);
            if let Some(w) = sinks.watch.as_mut()
                && w(rec)
            {
                sinks.stop.cancel();
            }
        }
    }

    fn message(&mut self) {
        let line = self.live.line();
        self.pb.set_message(line);
    }

    /// The gauge of requests in flight, for the senders to move.
    pub fn in_flight(&self) -> InFlight {
        self.live.in_flight.clone()
    }

    /// Seconds since the phase began.
    pub fn elapsed_s(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// Clears the bar and hands over what was collected.
    pub fn finish(mut self) -> Collected {
        if !self.pb.is_hidden() {
            self.message();
        }
        self.pb.finish_and_clear();
        if let Some(sc) = self.screen.as_mut() {
            sc.close();
        }
        let state = self.keep_state.then(|| self.acc.clone());
        Collected {
            summary: self.acc.finish(),
            dropped: self.dropped,
            state,
        }
    }
}
