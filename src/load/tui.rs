//! `--tui`: the live view full screen, oha-style: the phase's progress, the live figures of
//! `live::Live` and a histogram of recent TTFTs, redrawn four times a second on the terminal's
//! alternate screen, which is left (the terminal as it was) when the phase ends.

use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::live::Live;

/// How a phase shows itself on stderr.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum View {
    /// Nothing (`-q`, or stderr is not a terminal).
    #[default]
    Hidden,
    /// The progress bar with the live line.
    Line,
    /// The full-screen view (`--tui`).
    Full,
}

/// What the screen shows, shared with its drawing task.
pub(crate) struct State {
    pub live: Live,
    pub done: u64,
}

/// A full-screen view of one phase.
pub(crate) struct Screen {
    pub state: Arc<Mutex<State>>,
    closed: Arc<AtomicBool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// Bars of `counts`, the longest `width` cells wide.
fn bars(counts: &[usize], width: usize) -> Vec<String> {
    let max = counts.iter().copied().max().unwrap_or(0).max(1);
    counts
        .iter()
        .map(|&c| "█".repeat((c * width).div_ceil(max).min(width)))
        .collect()
}

/// A histogram of `values` in `rows` equal buckets from their min to their max: one line per
/// bucket, "  12.0 ms ████████ 31".
pub(crate) fn histogram(values: &[f64], rows: usize, width: usize) -> Vec<String> {
    if values.is_empty() {
        return vec!["  (no request finished yet)".into()];
    }
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let rows = if hi > lo { rows.max(1) } else { 1 };
    let step = (hi - lo) / rows as f64;
    let mut counts = vec![0usize; rows];
    for v in values {
        let i = if step > 0.0 {
            (((v - lo) / step) as usize).min(rows - 1)
        } else {
            0
        };
        counts[i] += 1;
    }
    bars(&counts, width)
        .into_iter()
        .zip(&counts)
        .enumerate()
        .map(|(i, (b, c))| format!("{:>9.1} ms {b} {c}", lo + step * i as f64))
        .collect()
}

/// One frame of the screen.
pub(crate) fn frame(name: &str, total: Option<u64>, started: Instant, s: &mut State) -> String {
    let mut out = format!("llmbench · {name}\n\n");
    let el = started.elapsed().as_secs();
    match total {
        Some(n) if n > 0 => {
            let w = 40;
            let filled = ((s.done.min(n) * w) / n) as usize;
            out.push_str(&format!(
                "[{}{}] {}/{n} requests, {:02}:{:02} elapsed\n",
                "=".repeat(filled),
                " ".repeat(w as usize - filled),
                s.done,
                el / 60,
                el % 60
            ));
        }
        _ => out.push_str(&format!(
            "{} requests done, {:02}:{:02} elapsed\n",
            s.done,
            el / 60,
            el % 60
        )),
    }
    out.push('\n');
    for part in s.live.line().split(" | ") {
        out.push_str(&format!("  {part}\n"));
    }
    out.push_str("\nTTFT of the latest requests\n");
    for l in histogram(&s.live.recent_ttft(), 10, 40) {
        out.push_str(&l);
        out.push('\n');
    }
    out
}

/// Writes a frame unless the screen was closed (checked under stderr's lock, which `close`
/// holds too, so no frame lands on the terminal's main screen).
fn draw(text: &str, closed: &AtomicBool) {
    let mut e = std::io::stderr().lock();
    if closed.load(Ordering::SeqCst) {
        return;
    }
    // Home, clear, the frame (each line cleared to its end).
    let body = text.replace('\n', "\x1b[K\r\n");
    let _ = write!(e, "\x1b[H\x1b[2J{body}");
    let _ = e.flush();
}

impl Screen {
    /// Enters the alternate screen and starts redrawing.
    pub fn start(name: &str, total: Option<u64>, live: Live) -> Self {
        let state = Arc::new(Mutex::new(State { live, done: 0 }));
        let closed = Arc::new(AtomicBool::new(false));
        {
            let mut e = std::io::stderr().lock();
            // Alternate screen, cursor hidden.
            let _ = write!(e, "\x1b[?1049h\x1b[?25l");
            let _ = e.flush();
        }
        let (st, cl, name) = (state.clone(), closed.clone(), name.to_string());
        let started = Instant::now();
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(250));
            while !cl.load(Ordering::SeqCst) {
                tick.tick().await;
                let text = {
                    let mut s = st.lock().unwrap_or_else(|e| e.into_inner());
                    frame(&name, total, started, &mut s)
                };
                draw(&text, &cl);
            }
        });
        Self {
            state,
            closed,
            task: Some(task),
        }
    }

    /// Stops redrawing and gives the terminal back as it was.
    pub fn close(&mut self) {
        let Some(task) = self.task.take() else {
            return;
        };
        {
            let mut e = std::io::stderr().lock();
            self.closed.store(true, Ordering::SeqCst);
            let _ = write!(e, "\x1b[?25h\x1b[?1049l");
            let _ = e.flush();
        }
        task.abort();
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        self.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_histogram_counts_every_value_in_its_bucket() {
        let v: Vec<f64> = (0..100).map(|i| 10.0 + f64::from(i % 10)).collect();
        let h = histogram(&v, 3, 12);
        assert_eq!(h.len(), 3);
        let counts: Vec<usize> = h
            .iter()
            .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
            .collect();
        assert_eq!(counts.iter().sum::<usize>(), 100);
        assert_eq!(counts, [30, 30, 40]);
        assert!(h[0].starts_with("     10.0 ms "), "{h:?}");
        assert!(h[2].contains(&"█".repeat(12)), "{h:?}");
        assert_eq!(histogram(&[5.0, 5.0], 10, 8).len(), 1);
    }
}
