//! A cache mix: a given share of requests repeats the prompt of an earlier request exactly;
//! the others are made unique by a prefix that differs from the first token, so no prefix
//! cache can serve them.
//!
//! Request `i` is a repeat when `⌊(i+1)·R⌋ > ⌊i·R⌋` (repeats spread evenly, `⌊n·R⌋` of the
//! first `n`; request 0 never is, as `R < 1`). A repeat copies the prompt of an earlier
//! unique request chosen by a seeded hash. The per-run `nonce` keeps two runs against the same
//! server from hitting each other's cache. Warm-up requests get prompts of their own.

use super::{Prompt, RequestSpec, Workload};

/// Unique prompts with a share of exact repeats.
#[derive(Debug, Clone)]
pub struct RepeatMix {
    /// The request every prompt is built from.
    pub base: RequestSpec,
    /// Share of requests that repeat an earlier prompt, in `[0, 1)`.
    pub ratio: f64,
    /// Seed of the choice of which earlier prompt a repeat copies.
    pub seed: u64,
    /// Distinguishes this run's prompts from other runs'.
    pub nonce: u64,
}

impl RepeatMix {
    /// Whether request `i` repeats an earlier prompt.
    pub fn is_repeat(&self, i: u64) -> bool {
        let f = |n: u64| (n as f64 * self.ratio).floor() as u64;
        f(i + 1) > f(i)
    }

    /// Number of repeats among the first `n` requests.
    pub fn repeats_in(&self, n: u64) -> u64 {
        (0..n).filter(|&i| self.is_repeat(i)).count() as u64
    }

    fn unique(&self, tag: &str, ordinal: u64) -> RequestSpec {
        let text = format!(
            "[{tag}{:x}-{ordinal}] {}",
            self.nonce,
            self.base.prompt.text()
        );
        RequestSpec {
            prompt: Prompt::Text(text),
            ..self.base.clone()
        }
    }
}

use crate::rng::mix64 as mix;

impl Workload for RepeatMix {
    fn get(&self, i: u64) -> RequestSpec {
        // Unique requests before `i`: i − (repeats before i) = i − ⌊i·R⌋.
        let uniques_before = i - (i as f64 * self.ratio).floor() as u64;
        if self.is_repeat(i) && uniques_before > 0 {
            let pick = mix(self.seed ^ i.wrapping_mul(0x9e37_79b9_7f4a_7c15)) % uniques_before;
            self.unique("", pick)
        } else {
            self.unique("", uniques_before)
        }
    }

    fn get_warmup(&self, i: u64) -> RequestSpec {
        self.unique("w", i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mix_of(ratio: f64) -> RepeatMix {
        RepeatMix {
            base: RequestSpec {
                images: Vec::new(),
                tools: None,
                audio: Vec::new(),
                prompt: Prompt::Text("hello".into()),
                max_tokens: None,
                temperature: None,
            },
            ratio,
            seed: 1,
            nonce: 0xabc,
        }
    }

    #[test]
    fn repeats_are_exact_copies_of_earlier_prompts_in_the_stated_share() {
        let m = mix_of(0.3);
        let n = 100;
        let prompts: Vec<String> = (0..n).map(|i| m.get(i).prompt.text()).collect();
        let mut repeats = 0;
        for i in 0..n as usize {
            let earlier = prompts[..i].contains(&prompts[i]);
            assert_eq!(earlier, m.is_repeat(i as u64), "request {i}");
            repeats += earlier as u64;
        }
        assert_eq!(repeats, 30);
        assert_eq!(m.repeats_in(n), 30);
        assert!(prompts[0].starts_with("[abc-0] hello"));
        assert!(!prompts.contains(&m.get_warmup(0).prompt.text()));
        assert_eq!(mix_of(0.0).repeats_in(50), 0);
    }
}
