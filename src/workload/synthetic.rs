//! Synthetic prompts of exact token lengths, and length distributions.
//!
//! Prompts are built from short common English words (at most four letters) that are one token
//! each in cl100k/o200k- and Llama-style BPE vocabularies and in the simulator's tokenizer: the
//! first word has no leading space, every later one has exactly one. So a prompt of `n` words
//! is `n` tokens of content on any of these tokenizers (a chat template adds its own few).

use rand_distr::{Distribution, Normal};
use serde::Serialize;

use super::{RequestSpec, Workload};

/// Words of one token each (with a leading space) in common BPE vocabularies.
pub const WORDS: [&str; 64] = [
    "the", "cat", "dog", "sun", "red", "big", "run", "day", "man", "way", "new", "old", "good",
    "time", "work", "home", "life", "hand", "part", "year", "city", "game", "book", "food", "tree",
    "road", "blue", "fast", "slow", "warm", "cold", "hot", "sea", "sky", "car", "map", "box",
    "cup", "pen", "key", "door", "room", "wall", "name", "idea", "word", "line", "page", "song",
    "fish", "bird", "rain", "snow", "wind", "fire", "gold", "milk", "tea", "boat", "farm", "hill",
    "lake", "star", "moon",
];

use crate::rng::mix64 as mix;

/// Appends `n` one-token words chosen by `seed` to `out` (a space before each word unless
/// `out` is empty).
pub fn push_words(out: &mut String, n: usize, seed: u64) {
    out.reserve(n * 5);
    for i in 0..n {
        if !out.is_empty() {
            out.push(' ');
        }
        let w = WORDS[(mix(seed ^ mix(i as u64 + 1)) % WORDS.len() as u64) as usize];
        out.push_str(w);
    }
}

/// A text of exactly `n` tokens; different seeds give different texts from the first word on.
pub fn text(n: usize, seed: u64) -> String {
    let mut s = String::new();
    push_words(&mut s, n, seed);
    s
}

/// A token length: a mean and a standard deviation (0 = always the mean).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Length {
    /// Mean length (tokens).
    pub mean: u64,
    /// Standard deviation (tokens); samples are rounded and kept at 1 or more.
    pub stdev: f64,
}

impl Length {
    /// A fixed length.
    pub fn fixed(n: u64) -> Self {
        Self {
            mean: n,
            stdev: 0.0,
        }
    }

    /// The length of request `index`, reproducible from `seed`.
    pub fn sample(&self, seed: u64, index: u64) -> u64 {
        if self.stdev <= 0.0 {
            return self.mean;
        }
        let mut rng = crate::rng::seeded(mix(seed ^ mix(index ^ 0x5eed)));
        let normal = Normal::new(self.mean as f64, self.stdev).expect("finite stdev");
        normal.sample(&mut rng).round().max(1.0) as u64
    }
}

/// Prompts of sampled token lengths, optionally after a prefix shared by every request.
#[derive(Debug, Clone)]
pub struct Synthetic {
    /// Prompt length (tokens, shared prefix included).
    pub prompt: Length,
    /// Output length asked for (`max_tokens`); `None`: `default_max_tokens`.
    pub output: Option<Length>,
    /// `max_tokens` when `output` is not given.
    pub default_max_tokens: Option<u32>,
    /// Tokens at the start of every prompt that are the same for all requests.
    pub shared_prefix: u64,
    /// Sampling temperature.
    pub temperature: Option<f64>,
    /// Seed of words and lengths.
    pub seed: u64,
    /// Context the server must have (long-context steps), if any.
    pub needs_context: Option<u64>,
}

impl Synthetic {
    /// Prompt tokens of request `index`.
    pub fn prompt_tokens(&self, index: u64) -> u64 {
        self.prompt.sample(self.seed, index).max(self.shared_prefix)
    }
}

impl Workload for Synthetic {
    fn context_needed(&self) -> Option<u64> {
        self.needs_context
    }

    fn get(&self, index: u64) -> RequestSpec {
        let n = self.prompt_tokens(index);
        let mut s = String::new();
        push_words(&mut s, self.shared_prefix as usize, mix(self.seed ^ 0xabc));
        // The unique part starts with a word that depends on the index, so prompts share
        // nothing beyond the prefix (no accidental prefix-cache hits).
        let unique_seed = mix(self
            .seed
            .wrapping_add(index.wrapping_mul(0x9e37_79b9_7f4a_7c15)));
        push_words(&mut s, (n - self.shared_prefix) as usize, unique_seed);
        let max_tokens = match self.output {
            Some(o) => Some(o.sample(self.seed ^ 0x07, index).min(u32::MAX as u64) as u32),
            None => self.default_max_tokens,
        };
        RequestSpec {
            images: Vec::new(),
            tools: None,
            audio: Vec::new(),
            prompt: super::Prompt::Text(s),
            max_tokens,
            temperature: self.temperature,
        }
    }
}

/// Another workload with its output lengths (`max_tokens`) drawn from a distribution.
pub struct OutputLengths {
    /// The workload whose prompts are sent.
    pub inner: std::sync::Arc<dyn Workload>,
    /// Output length.
    pub output: Length,
    /// Seed of the lengths.
    pub seed: u64,
}

impl Workload for OutputLengths {
    fn get(&self, index: u64) -> RequestSpec {
        let mut spec = self.inner.get(index);
        spec.max_tokens = Some(
            self.output
                .sample(self.seed ^ 0x07, index)
                .min(u32::MAX as u64) as u32,
        );
        spec
    }
    fn len(&self) -> Option<u64> {
        self.inner.len()
    }
    fn context_needed(&self) -> Option<u64> {
        self.inner.context_needed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::text::count;

    #[test]
    fn texts_have_exact_lengths_in_the_simulator_tokenizer() {
        for n in [0, 1, 2, 16, 513, 8192] {
            assert_eq!(count(&text(n, 7)), n as u64);
        }
        assert!(WORDS.iter().all(|w| w.len() <= 4));
    }

    #[test]
    fn lengths_follow_mean_and_stdev() {
        let l = Length {
            mean: 512,
            stdev: 64.0,
        };
        let xs: Vec<f64> = (0..4000).map(|i| l.sample(3, i) as f64).collect();
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        let sd = (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / xs.len() as f64).sqrt();
        assert!((mean - 512.0).abs() < 5.0, "{mean}");
        assert!((sd - 64.0).abs() < 4.0, "{sd}");
        assert_eq!(l.sample(3, 10), l.sample(3, 10));
        assert_eq!(Length::fixed(9).sample(1, 2), 9);
    }

    #[test]
    fn shared_prefix_is_shared_and_the_rest_differs() {
        let w = Synthetic {
            prompt: Length::fixed(100),
            output: None,
            default_max_tokens: Some(8),
            shared_prefix: 40,
            temperature: None,
            seed: 1,
            needs_context: None,
        };
        let (a, b) = (w.get(0).prompt.text(), w.get(1).prompt.text());
        assert_eq!(count(&a), 100);
        let pa: Vec<&str> = a.split(' ').collect();
        let pb: Vec<&str> = b.split(' ').collect();
        assert_eq!(pa[..40], pb[..40]);
        assert_ne!(pa[40..], pb[40..]);
    }
}
