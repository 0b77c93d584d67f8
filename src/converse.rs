//! Runs multi-turn conversations: each conversation's turns in order, every request carrying
//! the history so far with the model's actual replies; `--concurrency N` conversations at once.
//!
//! Records flow to one collector, as in the runner: it writes the records file, feeds the
//! statistics and keeps each record's turn shape for the per-turn statistics.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;
use tokio::sync::mpsc;

use crate::client::Client;
use crate::record::{Outcome, Record};
use crate::result::ScenarioResult;
use crate::runner::{Cancel, Scenario, Sinks};
use crate::schedule::Load;
use crate::stats::Accumulator;
use crate::workload::conversation::{Conversation, ConversationSet, Dialogue, TurnShape, size};

enum Msg {
    Done(Box<Record>, TurnShape),
    Stopped(String),
}

async fn one_conversation(
    client: &Client,
    sc: &Scenario,
    set: &ConversationSet,
    conv: &Conversation,
    ids: &AtomicU64,
    cancel: &Cancel,
    tx: &mpsc::UnboundedSender<Msg>,
) {
    let mut d = Dialogue::new(conv);
    while let Some(t) = d.next_turn() {
        if cancel.soft.is_cancelled() {
            return;
        }
        let (spec, shape) = match set.request(&mut d) {
            Ok(x) => x,
            Err(e) => {
                let _ = tx.send(Msg::Stopped(format!(
                    "conversation {:?} stopped at turn {t}: the chat template failed: {e:#}",
                    conv.id
                )));
                return;
            }
        };
        let scheduled = Instant::now();
        let (mut rec, reply) = tokio::select! {
            r = client.execute_with_reply(&spec, scheduled) => r,
            _ = cancel.hard.cancelled() => (Record {
                outcome: Some(Outcome::Cancelled),
                scheduled_at_ms: client.ms(scheduled),
                sent_at_ms: Some(client.ms(scheduled)),
                done_at_ms: client.ms(Instant::now()),
                requested_output_tokens: spec.max_tokens,
                error: Some("cancelled while in flight".into()),
                attempt: 1,
                ..Default::default()
            }, String::new()),
        };
        rec.scenario = sc.name.clone();
        rec.id = ids.fetch_add(1, Ordering::Relaxed);
        rec.conversation = Some(conv.id.clone());
        rec.turn = Some(t as u32);
        let ok = rec.outcome() == Outcome::Succeeded;
        let _ = tx.send(Msg::Done(Box::new(rec), shape));
        if !ok {
            if t + 1 < conv.turns.len() && !cancel.soft.is_cancelled() {
                let _ = tx.send(Msg::Stopped(format!(
                    "conversation {:?} stopped at turn {t}: the request failed, so later turns (which need its reply) were not sent",
                    conv.id
                )));
            }
            return;
        }
        d.reply(&reply);
    }
}

/// Runs the conversations of `set` as scenario `sc`.
pub async fn run(
    client: Arc<Client>,
    sc: &Scenario,
    set: &ConversationSet,
    sinks: &mut Sinks,
    cancel: &Cancel,
) -> anyhow::Result<ScenarioResult> {
    let mut warnings = Vec::new();
    let limit = match set.context_size {
        Some(n) => Some((n, "--context-size".to_string())),
        None => crate::server_info::context_length(client.config(), &client.options().model)
            .await
            .map(|c| (c.tokens, c.source)),
    };
    let mut selected = Vec::new();
    let mut skipped = Vec::new();
    for c in &set.conversations {
        let need = size(c, set.default_max_tokens).peak_tokens;
        match &limit {
            Some((lim, src)) if need > *lim => {
                let msg = format!(
                    "conversation {:?} skipped: needs about {need} tokens of context, {src} allows {lim}",
                    c.id
                );
                eprintln!("{msg}");
                warnings.push(msg);
                skipped.push(c.id.clone());
            }
            _ => selected.push(c.clone()),
        }
    }
    let concurrency = match sc.load {
        Load::Closed { concurrency } => concurrency.max(1),
        Load::Open { .. } => anyhow::bail!("conversations run closed-loop: use --concurrency"),
    };
    let turns_total: u64 = selected.iter().map(|c| c.turns.len() as u64).sum();
    let selected = Arc::new(selected);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let next = Arc::new(AtomicUsize::new(0));
    let ids = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
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
    }
    drop(tx);
    let pb = progress(sinks.progress, turns_total, &sc.name);
    let mut acc = Accumulator::default();
    let mut items = Vec::new();
    let mut write_error = None;
    while let Some(msg) = rx.recv().await {
        match msg {
            Msg::Stopped(w) => warnings.push(w),
            Msg::Done(rec, shape) => {
                if let Some(w) = sinks.records.as_mut()
                    && write_error.is_none()
                    && let Err(e) = w.write(&rec)
                {
                    write_error = Some(e);
                }
                acc.add(&rec);
                pb.inc(1);
                items.push((*rec, shape));
            }
        }
    }
    while workers.join_next().await.is_some() {}
    pb.finish_and_clear();
    if let Some(e) = write_error {
        return Err(e);
    }
    let summary = acc.finish();
    let mut params = sc.params.clone();
    params["conversations_run"] = json!(selected.len());
    params["conversations_skipped"] = json!(skipped);
    if let Some((lim, src)) = &limit {
        params["context_limit"] = json!({"tokens": lim, "source": src});
    }
    Ok(ScenarioResult {
        name: sc.name.clone(),
        params,
        outcomes: summary.outcomes,
        metrics: summary.metrics,
        errors: summary.errors,
        samples: Some(summary.samples),
        warnings,
        turns: crate::turn_stats::per_turn(&items),
        rag: crate::turn_stats::rag(&items),
        ..Default::default()
    })
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

fn progress(show: bool, total: u64, name: &str) -> ProgressBar {
    let target = if show {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let pb = ProgressBar::with_draw_target(Some(total), target).with_style(
        ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} turns {elapsed_precise}")
            .expect("template")
            .progress_chars("=> "),
    );
    pb.set_prefix(name.to_string());
    pb.enable_steady_tick(Duration::from_millis(200));
    pb
}
