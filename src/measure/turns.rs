//! Pure: per-turn and RAG statistics of multi-turn conversations. No I/O.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::measure::record::{Outcome, Record};
use crate::measure::stats::Dist;
use crate::workload::conversation::TurnShape;

/// Statistics of one group of conversation requests (a turn index, or with/without documents).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Group {
    /// Requests sent.
    pub requests: u64,
    /// Requests that succeeded (the statistics below use these).
    pub succeeded: u64,
    /// Messages per request (mean; system prompt included).
    pub messages: f64,
    /// Prompt tokens per request as the server reported them: the whole context so far (mean).
    pub context_tokens: Option<f64>,
    /// Estimated tokens of documents in the context (mean).
    pub document_tokens: f64,
    /// Time to first token (ms).
    pub ttft_ms: Option<Dist>,
    /// Prompt tokens served from the server's prefix cache (mean), when the server said.
    pub cached_tokens: Option<f64>,
    /// Share of prompt tokens served from the cache (cached / prompt tokens, summed).
    pub cached_share: Option<f64>,
    /// Share of requests with any cached tokens (or a reported cache hit).
    pub cache_hit_rate: Option<f64>,
    /// Output tokens per request (mean).
    pub output_tokens: f64,
}

/// Per-turn statistics: one group per turn index across conversations.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TurnStats {
    /// Turn index (0 = the first user message).
    pub turn: u32,
    /// The statistics of requests at this turn.
    #[serde(flatten)]
    pub stats: Group,
}

/// Requests with documents in their context against those without.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RagStats {
    /// Requests whose context held at least one document.
    pub with_documents: Group,
    /// Requests whose context held none.
    pub without_documents: Group,
}

fn mean(xs: impl Iterator<Item = f64>) -> Option<f64> {
    let (mut n, mut sum) = (0u64, 0.0);
    for x in xs {
        n += 1;
        sum += x;
    }
    (n > 0).then(|| sum / n as f64)
}

/// Summarises a group of (record, shape) pairs.
pub fn group(items: &[(&Record, &TurnShape)]) -> Group {
    let ok: Vec<&(&Record, &TurnShape)> = items
        .iter()
        .filter(|(r, _)| r.outcome() == Outcome::Succeeded)
        .collect();
    let mut ttft: Vec<f64> = ok.iter().filter_map(|(r, _)| r.ttft_ms()).collect();
    let hits: Vec<bool> = ok
        .iter()
        .filter_map(|(r, _)| r.cache_hit.or(r.cached_tokens.map(|c| c > 0)))
        .collect();
    let (cached_sum, prompt_sum) = ok
        .iter()
        .filter_map(|(r, _)| Some((r.cached_tokens?, r.input_tokens?)))
        .fold((0u64, 0u64), |(a, b), (c, p)| (a + c, b + p));
    Group {
        requests: items.len() as u64,
        succeeded: ok.len() as u64,
        messages: mean(items.iter().map(|(_, s)| s.messages as f64)).unwrap_or(0.0),
        context_tokens: mean(
            ok.iter()
                .filter_map(|(r, _)| r.input_tokens.map(|n| n as f64)),
        ),
        document_tokens: mean(items.iter().map(|(_, s)| s.document_tokens as f64)).unwrap_or(0.0),
        ttft_ms: Dist::of(&mut ttft),
        cached_tokens: mean(
            ok.iter()
                .filter_map(|(r, _)| r.cached_tokens.map(|n| n as f64)),
        ),
        cached_share: (prompt_sum > 0).then(|| cached_sum as f64 / prompt_sum as f64),
        cache_hit_rate: mean(hits.iter().map(|h| *h as u8 as f64)),
        output_tokens: mean(ok.iter().map(|(r, _)| r.output_tokens as f64)).unwrap_or(0.0),
    }
}

/// Per-turn statistics, in turn order.
pub fn per_turn(items: &[(Record, TurnShape)]) -> Vec<TurnStats> {
    let mut by: BTreeMap<u32, Vec<(&Record, &TurnShape)>> = BTreeMap::new();
    for (r, s) in items {
        by.entry(s.turn).or_default().push((r, s));
    }
    by.into_iter()
        .map(|(turn, g)| TurnStats {
            turn,
            stats: group(&g),
        })
        .collect()
}

/// With/without-documents statistics; `None` when no request carried documents.
pub fn rag(items: &[(Record, TurnShape)]) -> Option<RagStats> {
    if !items.iter().any(|(_, s)| s.documents > 0) {
        return None;
    }
    let (with, without): (Vec<_>, Vec<_>) = items
        .iter()
        .map(|(r, s)| (r, s))
        .partition(|(_, s)| s.documents > 0);
    Some(RagStats {
        with_documents: group(&with),
        without_documents: group(&without),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(ttft: f64, input: u64, cached: u64) -> Record {
        Record {
            outcome: Some(Outcome::Succeeded),
            sent_at_ms: Some(0.0),
            first_token_at_ms: Some(ttft),
            done_at_ms: ttft + 1.0,
            input_tokens: Some(input),
            cached_tokens: Some(cached),
            output_tokens: 2,
            ..Default::default()
        }
    }

    fn shape(turn: u32, documents: u32) -> TurnShape {
        TurnShape {
            turn,
            messages: 2 * turn + 1,
            documents,
            document_tokens: documents as u64 * 100,
        }
    }

    #[test]
    fn groups_by_turn_and_by_documents() {
        let items = vec![
            (rec(100.0, 200, 0), shape(0, 1)),
            (rec(20.0, 300, 192), shape(1, 1)),
            (rec(40.0, 120, 0), shape(2, 0)),
            (rec(110.0, 210, 0), shape(0, 1)),
        ];
        let t = per_turn(&items);
        assert_eq!(t.len(), 3);
        assert_eq!(t[0].stats.requests, 2);
        assert_eq!(t[0].stats.ttft_ms.unwrap().mean, 105.0);
        assert_eq!(t[1].stats.cached_tokens, Some(192.0));
        assert_eq!(t[1].stats.cached_share, Some(192.0 / 300.0));
        assert_eq!(t[1].stats.messages, 3.0);
        let r = rag(&items).unwrap();
        assert_eq!(r.with_documents.requests, 3);
        assert_eq!(r.without_documents.ttft_ms.unwrap().p50, 40.0);
        assert_eq!(r.with_documents.cache_hit_rate, Some(1.0 / 3.0));
        assert!(rag(&items[2..3]).is_none());
    }
}
