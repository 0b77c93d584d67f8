//! When to send: closed-loop concurrency or open-loop arrival schedules.
//!
//! Open-loop schedules are pure functions of (rate, arrival, seed): the offsets of every
//! request from the start of the measured phase, so a seeded Poisson run is reproducible.

use std::time::Duration;

use rand::rngs::Xoshiro256PlusPlus;
use rand_distr::{Distribution, Exp, Gamma};

// The load is part of the result file's contract, so its types live with the file's.
pub use crate::results::params::{Arrival, Load};

/// When a phase ends: after a number of requests, after a duration, or whichever comes first.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Stop {
    /// Requests to schedule.
    pub requests: Option<u64>,
    /// Time after which no new request is scheduled.
    pub duration: Option<Duration>,
}

/// Offsets (from the phase start) of an open-loop schedule; endless, so callers stop it.
pub struct Offsets {
    rate: f64,
    arrival: Arrival,
    rng: Xoshiro256PlusPlus,
    t: f64,
    n: u64,
    trace: Option<std::sync::Arc<[Duration]>>,
}

impl Offsets {
    /// A schedule for `rate` requests per second. The first request is sent at offset 0.
    pub fn new(rate: f64, arrival: Arrival, seed: u64) -> Self {
        assert!(rate > 0.0 && rate.is_finite(), "rate must be positive");
        Self {
            rate,
            arrival,
            rng: crate::rng::seeded(seed),
            t: 0.0,
            n: 0,
            trace: None,
        }
    }

    /// A trace's offsets as given; the schedule ends after the last.
    pub fn trace(offsets: std::sync::Arc<[Duration]>) -> Self {
        Self {
            rate: 1.0,
            arrival: Arrival::Trace,
            rng: crate::rng::seeded(0),
            t: 0.0,
            n: 0,
            trace: Some(offsets),
        }
    }

    fn gap(&mut self) -> f64 {
        match self.arrival {
            Arrival::Constant | Arrival::Trace => 1.0 / self.rate,
            Arrival::Poisson => Exp::new(self.rate).expect("rate > 0").sample(&mut self.rng),
            Arrival::Gamma { cv } => {
                // Gaps with mean 1/rate and std cv/rate: shape k = 1/cv², scale θ = cv²/rate.
                let shape = 1.0 / (cv * cv);
                let scale = cv * cv / self.rate;
                Gamma::new(shape, scale)
                    .expect("cv > 0")
                    .sample(&mut self.rng)
            }
        }
    }
}

impl Iterator for Offsets {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        if let Some(t) = &self.trace {
            let at = t.get(self.n as usize).copied();
            self.n += 1;
            return at;
        }
        if self.n > 0 {
            self.t += self.gap();
        }
        self.n += 1;
        Some(Duration::from_secs_f64(self.t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn take(rate: f64, arrival: Arrival, seed: u64, n: usize) -> Vec<f64> {
        Offsets::new(rate, arrival, seed)
            .take(n)
            .map(|d| d.as_secs_f64())
            .collect()
    }

    #[test]
    fn trace_offsets_are_sent_as_given_and_end() {
        let o: Vec<Duration> =
            Offsets::trace(vec![Duration::ZERO, Duration::from_millis(7)].into()).collect();
        assert_eq!(o, vec![Duration::ZERO, Duration::from_millis(7)]);
    }

    #[test]
    fn constant_is_evenly_spaced() {
        let t = take(20.0, Arrival::Constant, 0, 5);
        for (i, x) in t.iter().enumerate() {
            assert!((x - i as f64 * 0.05).abs() < 1e-9);
        }
    }

    #[test]
    fn poisson_is_reproducible_and_has_the_right_rate() {
        let a = take(50.0, Arrival::Poisson, 7, 20_000);
        let b = take(50.0, Arrival::Poisson, 7, 20_000);
        assert_eq!(a, b);
        let c = take(50.0, Arrival::Poisson, 8, 20_000);
        assert_ne!(a, c);
        let rate = (a.len() - 1) as f64 / a.last().unwrap();
        assert!((rate - 50.0).abs() / 50.0 < 0.03, "rate {rate}");
        // Exponential gaps: coefficient of variation near 1.
        let gaps: Vec<f64> = a.windows(2).map(|w| w[1] - w[0]).collect();
        let m = gaps.iter().sum::<f64>() / gaps.len() as f64;
        let sd = (gaps.iter().map(|g| (g - m).powi(2)).sum::<f64>() / gaps.len() as f64).sqrt();
        assert!((sd / m - 1.0).abs() < 0.05, "cv {}", sd / m);
    }

    #[test]
    fn gamma_cv_controls_burstiness() {
        for cv in [0.5, 2.0] {
            let a = take(10.0, Arrival::Gamma { cv }, 1, 20_000);
            let gaps: Vec<f64> = a.windows(2).map(|w| w[1] - w[0]).collect();
            let m = gaps.iter().sum::<f64>() / gaps.len() as f64;
            let sd = (gaps.iter().map(|g| (g - m).powi(2)).sum::<f64>() / gaps.len() as f64).sqrt();
            assert!((m - 0.1).abs() < 0.005, "mean gap {m}");
            assert!((sd / m - cv).abs() / cv < 0.08, "cv {} want {cv}", sd / m);
        }
    }
}
