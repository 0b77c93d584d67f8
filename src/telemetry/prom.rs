//! Prometheus text format (pure, no I/O) and the series of known servers that llmbench reads.

use std::collections::BTreeMap;

/// One sample line: `name{labels} value`.
#[derive(Debug, Clone, PartialEq)]
pub struct PromSample {
    /// Metric name.
    pub name: String,
    /// Label pairs as written.
    pub labels: Vec<(String, String)>,
    /// Value.
    pub value: f64,
}

fn parse_labels(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(eq) = rest.find('=') {
        let key = rest[..eq].trim().trim_start_matches(',').trim().to_string();
        let after = rest[eq + 1..].trim_start();
        let Some(body) = after.strip_prefix('"') else {
            break;
        };
        let mut val = String::new();
        let mut chars = body.char_indices();
        let mut end = body.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, n)) = chars.next() {
                        val.push(if n == 'n' { '\n' } else { n });
                    }
                }
                '"' => {
                    end = i + 1;
                    break;
                }
                c => val.push(c),
            }
        }
        out.push((key, val));
        rest = &body[end..];
    }
    out
}

/// Parses a Prometheus text exposition; lines that do not parse are skipped.
pub fn parse(text: &str) -> Vec<PromSample> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, labels, rest) = match line.find(['{', ' ', '\t']) {
            Some(i) if line.as_bytes()[i] == b'{' => {
                // The closing brace outside quotes.
                let mut in_q = false;
                let mut esc = false;
                let mut close = None;
                for (j, c) in line[i + 1..].char_indices() {
                    match c {
                        _ if esc => esc = false,
                        '\\' => esc = true,
                        '"' => in_q = !in_q,
                        '}' if !in_q => {
                            close = Some(i + 1 + j);
                            break;
                        }
                        _ => {}
                    }
                }
                let Some(close) = close else { continue };
                (
                    &line[..i],
                    parse_labels(&line[i + 1..close]),
                    &line[close + 1..],
                )
            }
            Some(i) => (&line[..i], Vec::new(), &line[i..]),
            None => continue,
        };
        let Some(v) = rest.split_whitespace().next() else {
            continue;
        };
        let value = match v {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => match v.parse::<f64>() {
                Ok(x) => x,
                Err(_) => continue,
            },
        };
        out.push(PromSample {
            name: name.to_string(),
            labels,
            value,
        });
    }
    out
}

/// True when `text` has at least one sample line and no HTML.
pub fn looks_like_prometheus(text: &str) -> bool {
    !text.trim_start().starts_with('<') && !parse(text).is_empty()
}

/// Sum of each metric over its label sets.
pub fn totals(samples: &[PromSample]) -> BTreeMap<String, f64> {
    let mut m = BTreeMap::new();
    for s in samples {
        *m.entry(s.name.clone()).or_insert(0.0) += s.value;
    }
    m
}

/// Counter (recorded as a delta) or gauge (recorded as a timeline).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up; the run's share is after − before.
    Counter,
    /// A level; the timeline and its mean/peak matter.
    Gauge,
}

/// The series llmbench understands: canonical name, kind, and the names servers use for it
/// (first found wins; vLLM, SGLang, TGI, llama.cpp).
pub const KNOWN: [(&str, Kind, &[&str]); 9] = [
    (
        "requests_running",
        Kind::Gauge,
        &[
            "vllm:num_requests_running",
            "sglang:num_running_reqs",
            "tgi_batch_current_size",
            "llamacpp:requests_processing",
        ],
    ),
    (
        "requests_waiting",
        Kind::Gauge,
        &[
            "vllm:num_requests_waiting",
            "sglang:num_queue_reqs",
            "tgi_queue_size",
            "llamacpp:requests_deferred",
        ],
    ),
    (
        "kv_cache_usage",
        Kind::Gauge,
        &[
            "vllm:kv_cache_usage_perc",
            "vllm:gpu_cache_usage_perc",
            "sglang:token_usage",
            "llamacpp:kv_cache_usage_ratio",
        ],
    ),
    (
        "prefix_cache_hit_rate_reported",
        Kind::Gauge,
        &["sglang:cache_hit_rate"],
    ),
    (
        "prefix_cache_queries",
        Kind::Counter,
        &[
            "vllm:prefix_cache_queries_total",
            "vllm:prefix_cache_queries",
            "vllm:gpu_prefix_cache_queries_total",
            "vllm:gpu_prefix_cache_queries",
        ],
    ),
    (
        "prefix_cache_hits",
        Kind::Counter,
        &[
            "vllm:prefix_cache_hits_total",
            "vllm:prefix_cache_hits",
            "vllm:gpu_prefix_cache_hits_total",
            "vllm:gpu_prefix_cache_hits",
        ],
    ),
    (
        "prompt_tokens",
        Kind::Counter,
        &[
            "vllm:prompt_tokens_total",
            "sglang:prompt_tokens_total",
            "llamacpp:prompt_tokens_total",
            "tgi_request_input_length_sum",
        ],
    ),
    (
        "generation_tokens",
        Kind::Counter,
        &[
            "vllm:generation_tokens_total",
            "sglang:generation_tokens_total",
            "llamacpp:tokens_predicted_total",
            "tgi_request_generated_tokens_sum",
        ],
    ),
    (
        "requests_finished",
        Kind::Counter,
        &[
            "vllm:request_success_total",
            "sglang:num_requests_total",
            "tgi_request_success",
        ],
    ),
];

/// The known series present in one scrape: canonical name → (source name, value).
pub fn known(totals: &BTreeMap<String, f64>) -> BTreeMap<&'static str, (&'static str, f64)> {
    let mut out = BTreeMap::new();
    for (canon, _, names) in KNOWN {
        if let Some((n, v)) = names.iter().find_map(|n| totals.get(*n).map(|v| (*n, *v))) {
            out.insert(canon, (n, v));
        }
    }
    out
}

/// Kind of a canonical series.
pub fn kind_of(canon: &str) -> Kind {
    KNOWN
        .iter()
        .find(|(c, _, _)| *c == canon)
        .map(|(_, k, _)| *k)
        .unwrap_or(Kind::Gauge)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_labels_values() {
        let t = "# HELP vllm:x help\n# TYPE vllm:x counter\n\
                 vllm:prompt_tokens_total{model_name=\"a b\",x=\"}\\\"\"} 12.0\n\
                 vllm:prompt_tokens_total{model_name=\"c\"} 3\n\
                 plain 4.5 1700000000\n\
                 hist_bucket{le=\"+Inf\"} 7\n\
                 broken{a=\"1\" \n";
        let s = parse(t);
        assert_eq!(s.len(), 4);
        assert_eq!(
            s[0].labels,
            vec![
                ("model_name".into(), "a b".into()),
                ("x".into(), "}\"".into())
            ]
        );
        let tot = totals(&s);
        assert_eq!(tot["vllm:prompt_tokens_total"], 15.0);
        assert_eq!(tot["plain"], 4.5);
        let k = known(&tot);
        assert_eq!(k["prompt_tokens"], ("vllm:prompt_tokens_total", 15.0));
        assert!(looks_like_prometheus(t));
        assert!(!looks_like_prometheus("<html>metrics</html>"));
    }

    #[test]
    fn first_known_name_wins() {
        let mut t = BTreeMap::new();
        t.insert("vllm:gpu_cache_usage_perc".to_string(), 0.5);
        t.insert("llamacpp:kv_cache_usage_ratio".to_string(), 0.25);
        assert_eq!(
            known(&t)["kv_cache_usage"],
            ("vllm:gpu_cache_usage_perc", 0.5)
        );
        assert_eq!(kind_of("prompt_tokens"), Kind::Counter);
    }
}
