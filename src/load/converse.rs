//! Runs multi-turn conversations: each conversation's turns in order, every request carrying
//! the history so far with the model's actual replies; `--concurrency N` conversations at once.
//!
//! Records flow to the same collector as the runner's (`super::collect`); this driver also
//! keeps each record's turn shape for the per-turn statistics.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use tokio::sync::mpsc;

use super::collect::{Collector, Unit};
use super::schedule::Load;
use super::{Cancel, Scenario, Sinks};
use crate::measure::record::{Outcome, Record};
use crate::results::file::ScenarioResult;
use crate::transport::client::Client;
use crate::workload::conversation::{Conversation, ConversationSet, Dialogue, TurnShape, size};

enum Msg {
    Done(Box<Record>, TurnShape),
    Stopped(String),
}

/// Counters the conversation workers share.
struct Counters {
    /// The next record id.
    ids: AtomicU64,
    /// Turns in flight (the live view).
    in_flight: super::live::InFlight,
    /// `--shard`: ids are this shard's of the plan.
    shard: Option<super::shard::Shard>,
}

async fn one_conversation(
    client: &Client,
    sc: &Scenario,
    set: &ConversationSet,
    conv: &Conversation,
    counters: &Counters,
    cancel: &Cancel,
    tx: &mpsc::Sender<Msg>,
) {
    let mut d = Dialogue::new(conv);
    while let Some(t) = d.next_turn() {
        if cancel.soft.is_cancelled() {
            return;
        }
        let (spec, shape) =
            match set.request(&mut d) {
                Ok(x) => x,
                Err(e) => {
                    let _ = tx.send(Msg::Stopped(format!(
                    "conversation {:?} stopped at turn {t}: the chat template failed: {e:#}",
                    conv.id
                ))).await;
                    return;
                }
            };
        let scheduled = Instant::now();
        // A hard cancel ends it inside the client, keeping what it had received.
        let in_flight = counters.in_flight.start();
        let (mut rec, reply) = client.execute_with_reply(&spec, scheduled).await;
        drop(in_flight);
        rec.scenario = sc.name.clone();
        // A shard's ids are its own of the plan's (K, K + N, …), so the shards' never collide.
        let k = counters.ids.fetch_add(1, Ordering::Relaxed);
        rec.id = counters.shard.map_or(k, |s| s.id(k));
        rec.conversation = Some(conv.id.clone());
        rec.turn = Some(t as u32);
        let ok = rec.outcome() == Outcome::Succeeded;
        let _ = tx.send(Msg::Done(Box::new(rec), shape)).await;
        if !ok {
            if t + 1 < conv.turns.len() && !cancel.soft.is_cancelled() {
                let _ = tx.send(Msg::Stopped(format!(
                    "conversation {:?} stopped at turn {t}: the request failed, so later turns (which need its reply) were not sent",
                    conv.id
                ))).await;
            }
            return;
        }
        d.reply_with(reply);
    }
}

/// Runs the conversations of `set` as scenario `sc`.
pub(crate) async fn run(
    client: Arc<Client>,
    sc: &Scenario,
    set: &ConversationSet,
    sinks: &mut Sinks,
    cancel: &Cancel,
) -> anyhow::Result<ScenarioResult> {
    super::runner::warm_up(&client, sc, sinks, cancel).await;
    let mut warnings = Vec::new();
    let limit = match set.context_size {
        Some(n) => Some((n, "--context-size".to_string())),
        None => crate::server::info::context_length(client.config(), &client.options().model)
            .await
            .map(|c| (c.tokens, c.source)),
    };
    let mut selected = Vec::new();
    let mut skipped = Vec::new();
    // A shard (`--shard K/N`) runs the conversations whose index in the file is K modulo N,
    // each whole (its turns need its own replies).
    let mine = |i: usize| sc.shard.is_none_or(|s| s.owns(i as u64));
    for (_, c) in set
        .conversations
        .iter()
        .enumerate()
        .filter(|(i, _)| mine(*i))
    {
        let need = size(c, set.default_max_tokens).peak_tokens;
        match &limit {
            Some((lim, src)) if need > *lim => {
                let msg = format!(
                    "conversation {:?} skipped: needs about {need} tokens of context, {src} allows {lim}",
                    c.id
                );
                warnings.push(msg);
                skipped.push(c.id.clone());
            }
            _ => selected.push(c.clone()),
        }
    }
    let concurrency = match sc.load {
        Load::Closed { concurrency } => sc
            .shard
            .map_or(concurrency, |s| s.concurrency(concurrency))
            .max(1),
        Load::Open { .. } => anyhow::bail!("conversations run closed-loop: use --concurrency"),
    };
    let turns_total: u64 = selected.iter().map(|c| c.turns.len() as u64).sum();
    let selected = Arc::new(selected);
    let (tx, mut rx) = mpsc::channel(super::COLLECT_QUEUE);
    let next = Arc::new(AtomicUsize::new(0));
    let mut col = Collector::new(
        sinks.view,
        Some(turns_total),
        sc.stop.duration,
        &sc.name,
        Unit::Turns,
        true,
    )
    .keep_state(sc.shard.is_some());
    if let Some(at) = sc.start {
        tokio::select! {
            _ = crate::load::timer::sleep_until(at) => {}
            _ = cancel.soft.cancelled() => {}
        }
    }
    let ids = Arc::new(Counters {
        shard: sc.shard,
        ids: AtomicU64::new(0),
        in_flight: col.in_flight(),
    });
    let start = Instant::now();
    let energy_at_start = sinks.energy.and_then(|f| f());
    let duration = sc.stop.duration;
    // Workers borrow the scenario and set for the life of this function: scoped by joining
    // them all before returning.
    let set_ptr: Arc<ConversationSetRef> = Arc::new(ConversationSetRef::new(sc, set));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency.min(selected.len().max(1)) {
        let (client, selected, next, ids, tx, cancel, r) = (
            client.clone(),
            selected.clone(),
            next.clone(),
            ids.clone(),
            tx.clone(),
            cancel.clone(),
            set_ptr.clone(),
        );
        workers.spawn(async move {
            loop {
                if cancel.soft.is_cancelled() || duration.is_some_and(|d| start.elapsed() >= d) {
                    return;
                }
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(conv) = selected.get(i) else { return };
                one_conversation(&client, &r.sc, &r.set, conv, &ids, &cancel, &tx).await;
            }
        });
        // One worker starts at a time, the sockets polled between two (as `runner::closed`).
        tokio::task::yield_now().await;
    }
    drop(tx);
    let mut items = Vec::new();
    while let Some(msg) = rx.recv().await {
        match msg {
            Msg::Stopped(w) => warnings.push(w),
            Msg::Done(rec, shape) => {
                col.take(&rec, sinks).await;
                items.push((turn_point(&rec), shape));
            }
        }
    }
    while workers.join_next().await.is_some() {}
    let got = col.finish();
    let energy_at_end = sinks.energy.and_then(|f| f());
    let mut params = sc.params.clone();
    params.conversations_run = Some(selected.len() as u64);
    params.conversations_skipped = Some(skipped);
    if let Some((lim, src)) = &limit {
        params.context_limit = Some(crate::results::params::ContextLimit {
            tokens: *lim,
            source: src.to_string(),
        });
    }
    let mut res = ScenarioResult::from_summary(&sc.name, params, got.summary);
    res.shard_state = got.state.map(Box::new);
    warnings.append(&mut res.warnings);
    res.warnings = warnings;
    res.turns = crate::measure::turns::per_turn(&items);
    res.rag = crate::measure::turns::rag(&items);
    res.energy_j = energy_at_start
        .zip(energy_at_end)
        .map(|(a, b)| b - a)
        .filter(|e| *e >= 0.0);
    Ok(res)
}

/// What the per-turn statistics read of a record: its outcome, times and token counts. The
/// collector writes the whole record; the driver keeps only this for the per-turn tables, so
/// chunk times and error texts do not accumulate over a long run.
fn turn_point(r: &Record) -> Record {
    Record {
        outcome: r.outcome,
        sent_at_ms: r.sent_at_ms,
        first_token_at_ms: r.first_token_at_ms,
        done_at_ms: r.done_at_ms,
        input_tokens: r.input_tokens,
        cached_tokens: r.cached_tokens,
        cache_hit: r.cache_hit,
        output_tokens: r.output_tokens,
        ..Default::default()
    }
}

/// What the worker tasks need of the scenario and the set (owned, so tasks are `'static`).
struct ConversationSetRef {
    sc: Scenario,
    set: ConversationSet,
}

impl ConversationSetRef {
    fn new(sc: &Scenario, set: &ConversationSet) -> Self {
        Self {
            sc: sc.clone(),
            set: ConversationSet {
                conversations: Vec::new(),
                default_max_tokens: set.default_max_tokens,
                temperature: set.temperature,
                context_size: set.context_size,
                template: set.template.clone(),
            },
        }
    }
}
