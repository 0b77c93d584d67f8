//! Built-in suites: named experiments, each a list of steps; every step becomes one scenario.

use std::sync::Arc;

use super::synthetic::{Length, Synthetic};
use super::{Prompt, PromptList, RequestSpec, Workload};

/// A suite's name and what it measures, for `llmbench suites`.
pub struct SuiteInfo {
    /// Name given to `--suite`.
    pub name: &'static str,
    /// One line on what it runs.
    pub about: &'static str,
}

/// Every built-in suite.
pub const SUITES: &[SuiteInfo] = &[
    SuiteInfo {
        name: "standard",
        about: "short_completion (50 tokens x5), medium_completion (150 x3), code_generation (200 x3): fixed prompts",
    },
    SuiteInfo {
        name: "prompt-lengths",
        about: "tiny/short/medium/long/very_long prompts of 16/128/512/2048/8192 tokens, --requests each (default 10)",
    },
    SuiteInfo {
        name: "basic",
        about: "100 sequential requests (--requests) over short/medium/long prompts of 128/512/2048 tokens",
    },
    SuiteInfo {
        name: "long-context",
        about: "8k/32k/64k/128k-token contexts, 3 requests each; steps larger than the server's context are skipped",
    },
];

/// Settings a suite takes from the command line.
#[derive(Debug, Clone)]
pub struct SuiteBase {
    /// `--requests` when given (per step; `basic`: in total).
    pub requests: Option<u64>,
    /// `--max-tokens` (output tokens of steps that do not fix their own).
    pub max_tokens: u32,
    /// `--temperature`.
    pub temperature: Option<f64>,
    /// `--seed`.
    pub seed: u64,
}

/// One step of a suite: its name, what it varies, what it sends and how many requests.
pub struct Step {
    /// Scenario name.
    pub name: String,
    /// What the step fixes, for the result file.
    pub params: StepParams,
    /// What to send.
    pub workload: Arc<dyn Workload>,
    /// Measured requests.
    pub requests: u64,
}

/// What a step fixes (the rest comes from the run's flags).
#[derive(Debug, Clone, Default)]
pub struct StepParams {
    /// A fixed prompt (`standard`).
    pub prompt: Option<String>,
    /// Synthetic prompt length (tokens).
    pub prompt_tokens: Option<u64>,
    /// Context length the step fills (`long-context`).
    pub context_tokens: Option<u64>,
    /// Output tokens asked.
    pub max_tokens: u32,
}

/// Tokens kept free in long-context steps for the chat template and the server's own
/// additions, so a "32k" step fits a 32768-token context.
pub const TEMPLATE_MARGIN: u64 = 64;

fn synthetic(base: &SuiteBase, tokens: u64, needs_context: Option<u64>, salt: u64) -> Synthetic {
    Synthetic {
        prompt: Length::fixed(tokens),
        output: None,
        default_max_tokens: Some(base.max_tokens),
        shared_prefix: 0,
        temperature: base.temperature,
        seed: base.seed ^ salt,
        needs_context,
    }
}

/// The steps of suite `name`, or `None` when there is no such suite.
pub fn steps(name: &str, base: &SuiteBase) -> Option<Vec<Step>> {
    let mut out = Vec::new();
    match name {
        "standard" => {
            let items: [(&str, &str, u32, u64); 3] = [
                (
                    "short_completion",
                    "Write a hello world program in Python",
                    50,
                    5,
                ),
                (
                    "medium_completion",
                    "Explain how neural networks learn through backpropagation in detail",
                    150,
                    3,
                ),
                (
                    "code_generation",
                    "Write a Rust function to compute the Fibonacci sequence using dynamic programming",
                    200,
                    3,
                ),
            ];
            for (step, prompt, max_tokens, iterations) in items {
                let requests = base.requests.unwrap_or(iterations);
                out.push(Step {
                    name: step.into(),
                    params: StepParams {
                        prompt: Some(prompt.into()),
                        max_tokens,
                        ..Default::default()
                    },
                    workload: Arc::new(PromptList {
                        specs: vec![RequestSpec {
                            images: Vec::new(),
                            tools: None,
                            audio: Vec::new(),
                            prompt: Prompt::Text(prompt.into()),
                            max_tokens: Some(max_tokens),
                            temperature: base.temperature,
                        }],
                    }),
                    requests,
                });
            }
        }
        "prompt-lengths" => {
            let cats = [
                ("tiny", 16),
                ("short", 128),
                ("medium", 512),
                ("long", 2048),
                ("very_long", 8192),
            ];
            for (i, (step, tokens)) in cats.into_iter().enumerate() {
                let requests = base.requests.unwrap_or(10);
                out.push(Step {
                    name: step.into(),
                    params: StepParams {
                        prompt_tokens: Some(tokens),
                        max_tokens: base.max_tokens,
                        ..Default::default()
                    },
                    workload: Arc::new(synthetic(base, tokens, None, i as u64 + 1)),
                    requests,
                });
            }
        }
        "basic" => {
            let total = base.requests.unwrap_or(100).max(3);
            let cats = [("short", 128u64), ("medium", 512), ("long", 2048)];
            for (i, (len, tokens)) in cats.into_iter().enumerate() {
                // Split the total as evenly as possible, the remainder going to the first steps.
                let requests = total / 3 + u64::from((i as u64) < total % 3);
                let step = format!("basic_{len}");
                out.push(Step {
                    params: StepParams {
                        prompt_tokens: Some(tokens),
                        max_tokens: base.max_tokens,
                        ..Default::default()
                    },
                    name: step,
                    workload: Arc::new(synthetic(base, tokens, None, 0x100 + i as u64)),
                    requests,
                });
            }
        }
        "long-context" => {
            for (i, k) in [8u64, 32, 64, 128].into_iter().enumerate() {
                let context = k * 1024;
                let prompt_tokens = context - base.max_tokens as u64 - TEMPLATE_MARGIN;
                let requests = base.requests.unwrap_or(3);
                let step = format!("context_{k}k");
                out.push(Step {
                    params: StepParams {
                        context_tokens: Some(context),
                        prompt_tokens: Some(prompt_tokens),
                        max_tokens: base.max_tokens,
                        ..Default::default()
                    },
                    name: step,
                    workload: Arc::new(synthetic(
                        base,
                        prompt_tokens,
                        Some(context),
                        0x200 + i as u64,
                    )),
                    requests,
                });
            }
        }
        _ => return None,
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::text::count;

    fn base() -> SuiteBase {
        SuiteBase {
            requests: None,
            max_tokens: 128,
            temperature: None,
            seed: 0,
        }
    }

    #[test]
    fn every_listed_suite_builds() {
        for s in SUITES {
            assert!(!steps(s.name, &base()).unwrap().is_empty(), "{}", s.name);
        }
        assert!(steps("nope", &base()).is_none());
    }

    #[test]
    fn prompt_lengths_are_exact() {
        let st = steps("prompt-lengths", &base()).unwrap();
        let lens: Vec<u64> = st
            .iter()
            .map(|s| count(&s.workload.get(0).prompt.text()))
            .collect();
        assert_eq!(lens, vec![16, 128, 512, 2048, 8192]);
    }

    #[test]
    fn basic_splits_its_total() {
        let st = steps("basic", &base()).unwrap();
        assert_eq!(
            st.iter().map(|s| s.requests).collect::<Vec<_>>(),
            [34, 33, 33]
        );
        let long = steps("long-context", &base()).unwrap();
        assert_eq!(long[3].workload.context_needed(), Some(131_072));
        assert_eq!(
            count(&long[0].workload.get(0).prompt.text()),
            8192 - 128 - TEMPLATE_MARGIN
        );
    }
}
