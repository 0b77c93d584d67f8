//! `llmbench run`: benchmark a target (or the built-in simulator) and report.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;

use crate::cli::RunArgs;
use crate::load::{Cancel, Sinks, run_scenario};
use crate::measure::record::Outcome;
use crate::report::console;
use crate::results::file::{ResultFile, RunStatus, Target, now_rfc3339};
use crate::results::params::RunConfig;
use crate::results::records::RecordWriter;
use crate::settings::outputs::OutputTarget;
use crate::settings::{RunSettings, TargetSetting, parse_url, run_settings};
use crate::transport::client::Client;

/// Exit code when every measured request failed.
pub const EXIT_ALL_FAILED: i32 = 1;

/// Exit code when a performance target (`--slo`) failed.
pub const EXIT_SLO_FAILED: i32 = 3;

/// Installs Ctrl-C / SIGTERM handling: the first stops sending and waits `grace` for
/// in-flight requests; a second (or the end of the grace period) cancels them.
pub fn install_signals(cancel: &Cancel, grace: std::time::Duration) {
    let cancel = cancel.clone();
    tokio::spawn(async move {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        let first = async {
            match term.as_mut() {
                Some(t) => tokio::select! { _ = tokio::signal::ctrl_c() => {}, _ = t.recv() => {} },
                None => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        };
        first.await;
        eprintln!(
            "\nstopping: no new requests; waiting up to {:.0?} for those in flight (Ctrl-C again to stop now)",
            grace
        );
        cancel.soft.cancel();
        let second_term = async {
            match term.as_mut() {
                Some(t) => {
                    t.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => eprintln!("stopping now: in-flight requests are cancelled"),
            _ = second_term => eprintln!("stopping now: in-flight requests are cancelled"),
            _ = tokio::time::sleep(grace) => {},
        }
        cancel.hard.cancel();
    });
}

/// Exit code of a run stopped by Ctrl-C or SIGTERM (128 + SIGINT, as shells report it).
pub const EXIT_CANCELLED: i32 = 130;
/// Exit code when every scenario was skipped (the workload does not fit the server).
pub const EXIT_NOTHING_MEASURED: i32 = 2;
/// Exit code when llmbench itself failed (a panic) during a run, as Rust's own panics exit.
pub const EXIT_INTERNAL_ERROR: i32 = 101;
/// An output could not be written (the records or the result file: a full disk); what was
/// measured is kept wherever it could be, and the run is stored.
pub const EXIT_WRITE_FAILED: i32 = 2;

/// Runs the `run` command; returns the process exit code.
pub async fn run(args: RunArgs) -> anyhow::Result<i32> {
    if args.workload.list_conversations {
        return crate::settings::workload::list_conversations(&args);
    }
    let settings = run_settings(&args)?;
    execute(settings).await
}

/// The clients telemetry and the managed server's readiness checks probe with: the run's TLS
/// and proxy settings; its headers and key only towards the target's own origin.
fn probe_clients(
    cfg: &crate::transport::client::ClientConfig,
) -> anyhow::Result<crate::telemetry::monitor::ProbeClients> {
    let t = std::time::Duration::from_millis(700);
    Ok(crate::telemetry::monitor::ProbeClients {
        target: crate::transport::http::probe_client(cfg, t, true)?,
        other: crate::transport::http::probe_client(cfg, t, false)?,
    })
}

/// Runs validated settings (`run`, `sweep`, `optimize`'s check); returns the process exit
/// code. With `--server-cmd`, the server is started first and stopped afterwards whatever
/// happens.
pub async fn execute(settings: RunSettings) -> anyhow::Result<i32> {
    crate::settings::check_step_targets(&settings)?;
    crate::settings::shard::check_plan(&settings)?;
    let cancel = Cancel::default();
    install_signals(&cancel, settings.grace);
    let probes = probe_clients(&settings.client)?;
    let mut server = match settings.server_cmd.clone() {
        Some(cfg) => match crate::server::managed::ManagedServer::start(
            cfg,
            probes.target.clone(),
            &cancel.soft,
        )
        .await
        {
            Ok(s) => Some(s),
            Err(crate::server::managed::StartError::Cancelled) => {
                eprintln!("Run cancelled before the server was ready.");
                return Ok(EXIT_CANCELLED);
            }
            Err(crate::server::managed::StartError::Failed(e)) => return Err(e),
        },
        None => None,
    };
    let r = execute_with(settings, &cancel, &probes, server.as_mut()).await;
    if let Some(s) = server.as_mut() {
        s.stop().await;
    }
    r
}

/// `f`'s result, or `None` (said on stderr) when Ctrl-C comes first: the run then ends before
/// its first request, however long the server takes to answer the checks.
async fn before_start<T>(
    cancel: &Cancel,
    f: impl std::future::Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<Option<T>> {
    tokio::select! {
        biased;
        _ = cancel.soft.cancelled() => {
            eprintln!("Run cancelled before the first request.");
            Ok(None)
        }
        r = f => r.map(Some),
    }
}

async fn execute_with(
    mut plan: RunSettings,
    cancel: &Cancel,
    probes: &crate::telemetry::monitor::ProbeClients,
    mut server: Option<&mut crate::server::managed::ManagedServer>,
) -> anyhow::Result<i32> {
    let mut sim = None;
    let target = match &plan.target {
        TargetSetting::Url(t) => t.clone(),
        TargetSetting::Simulator(cfg) => {
            let cfg = cfg.clone();
            let running = crate::sim::spawn(cfg, SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
                .await
                .context("cannot start the built-in simulator")?;
            eprintln!(
                "No URL given: benchmarking the built-in simulator at {} (model {}, {}).",
                running.url(),
                running.sim.cfg.model,
                crate::sim::describe_timing(&running.sim.cfg)
            );
            let t = parse_url(&running.url())?;
            sim = Some(running);
            t
        }
    };
    plan.client.base_url = target.url.clone();
    plan.client.url_is_endpoint = target.is_endpoint;
    plan.client.query = target.query.clone();
    // The checks before the first request wait on the server: Ctrl-C ends them at once.
    if before_start(cancel, crate::server::resolve::resolve(&mut plan))
        .await?
        .is_none()
    {
        return Ok(EXIT_CANCELLED);
    }
    let model = plan.options.model.clone();
    let run_id = plan.run_id.clone();
    if let Some((_, prefix)) = plan.client.request_id.as_mut() {
        prefix.clone_from(&run_id);
    }
    // The records file is created only now: every flag has been checked and the target
    // answered, so a mistake never truncates an existing file.
    let records = match &plan.records {
        Some(p) => Some(RecordWriter::create(p)?),
        None => None,
    };
    // `--start-at`: time zero is the agreed instant, on this host's monotonic clock.
    let (epoch, shard_info) = match &plan.shard {
        Some(sh) => super::shard::start(sh).await?,
        None => (Instant::now(), None),
    };
    let client = Arc::new(
        Client::new(
            plan.client.clone(),
            plan.protocol.clone(),
            plan.options.clone(),
            epoch,
        )?
        .with_tokenizer(plan.tokenizer.clone(), plan.tokenizer_explicit)
        .with_cancel(cancel.hard.clone()),
    );
    let mut result = ResultFile {
        schema_version: crate::results::file::SCHEMA_VERSION,
        run_id,
        started_at: now_rfc3339(),
        status: RunStatus::Running,
        target: Target {
            url: crate::settings::shown_url(&plan.client.base_url, plan.client.query.as_deref()),
            backend: plan.protocol.name().into(),
            model,
            simulated: sim.is_some(),
        },
        system: Some(crate::telemetry::system::detect()),
        config: crate::results::params::Config::Run(RunConfig {
            chunk_clock: Some(client.chunk_clock()),
            ..plan.recorded.clone()
        }),
        shard: shard_info,
        ..Default::default()
    };
    // With `-o -` the result JSON owns standard output: the tables go to stderr.
    let to_stderr = plan.output == Some(OutputTarget::Stdout);
    // Verdicts in colour only where that stream is a terminal (never in a pipe or a file).
    let say = |text: String| {
        use crate::report::colour::{Stream, for_stream};
        if to_stderr {
            eprintln!("{}", for_stream(&text, Stream::Stderr));
        } else {
            println!("{}", for_stream(&text, Stream::Stdout));
        }
    };
    let out_file = plan.output.as_ref().and_then(|o| o.path());
    let mut sinks = Sinks {
        records,
        view: if plan.quiet {
            crate::load::tui::View::Hidden
        } else if plan.tui {
            crate::load::tui::View::Full
        } else {
            crate::load::tui::View::Line
        },
        stop: cancel.soft.clone(),
        failure: None,
        energy: Some(crate::telemetry::gpu::energy_j),
        watch: None,
    };
    let preflight = async {
        let context = crate::settings::workload::server_context(&plan, &result.target.model).await;
        let prepared = crate::telemetry::monitor::prepare(
            &plan.telemetry,
            &target.url,
            probes,
            server.as_deref(),
            plan.detected.clone(),
        )
        .await?;
        anyhow::Ok((context, prepared))
    };
    let Some((context, (mut telemetry, record))) = before_start(cancel, preflight).await? else {
        return Ok(EXIT_CANCELLED);
    };
    result.server = Some(record);
    // A sweep says which step starts, and ends with one table comparing the steps.
    let total_steps = plan.scenarios.len();
    let stepped =
        total_steps > 1 && (plan.recorded.sweep.is_some() || plan.recorded.scenario_file.is_some());
    let mut steps = plan.steps.take();
    let mut next_index = 0;
    loop {
        let (mut sc, watch) = match steps.as_mut() {
            Some(s) => match s.next(&result.scenarios) {
                Some(x) => x,
                None => break,
            },
            None => match plan.scenarios.get(next_index) {
                Some(sc) => (sc.clone(), None),
                None => break,
            },
        };
        if next_index == 0 && plan.shard.is_some() {
            sc.start = Some(epoch);
        }
        let (i, sc) = (next_index, &sc);
        next_index += 1;
        if i > 0
            && plan.telemetry.isolate
            && let Some(s) = server.as_deref_mut()
        {
            if let Err(e) = s.restart(&cancel.soft).await {
                if cancel.soft.is_cancelled() {
                    break;
                }
                return Err(anyhow::anyhow!("{e}"));
            }
            telemetry.server_pid = s.pid();
            if let Some(r) = result.server.as_mut() {
                r.pid = s.pid();
                r.managed = Some(s.info.clone());
            }
        }
        if cancel.soft.is_cancelled() {
            break;
        }
        if let Some(skip) = crate::settings::workload::skip(sc, context.as_ref()) {
            eprintln!("Skipping {}: {}", skip.name, skip.reason);
            result.skipped.push(skip);
            continue;
        }
        if stepped {
            eprintln!("Step {}/{total_steps}: {}", i + 1, sc.name);
        }
        let monitor = crate::telemetry::monitor::Monitor::start(&telemetry, epoch).await;
        // `--until`: the scenario stops once its interval is narrow enough.
        let mut until_state = None;
        let watch = match (watch, &plan.until) {
            (None, Some(u)) => {
                // Not before four rounds of a closed loop, nor before 30 requests.
                let first_look = match sc.load {
                    crate::load::schedule::Load::Closed { concurrency } => {
                        (4 * concurrency as u64).max(30)
                    }
                    crate::load::schedule::Load::Open { .. } => 30,
                };
                let (w, st) = super::until::until_watch(u, first_look);
                until_state = Some(st);
                Some(w)
            }
            (w, _) => w,
        };
        // A watched scenario (a `capacity` step, `--until`) stops on its own token, a child
        // of the run's.
        let step_cancel = match watch {
            Some(_) => crate::load::Cancel {
                soft: cancel.soft.child_token(),
                hard: cancel.hard.clone(),
            },
            None => cancel.clone(),
        };
        sinks.watch = watch;
        sinks.stop = step_cancel.soft.clone();
        let ran = run_scenario(client.clone(), sc, &mut sinks, &step_cancel).await;
        sinks.watch = None;
        sinks.stop = cancel.soft.clone();
        let mut res = ran?;
        if let (Some(u), Some(st)) = (&plan.until, &until_state) {
            res.until = super::until::until_result(u, st);
        }
        let (resources, metrics) = monitor.finish().await;
        res.resources = Some(resources);
        res.server_metrics = metrics;
        let detected_gpus = result.system.as_ref().map_or(0, |s| s.gpus.len());
        res.cost = plan.cost.usd_per_hour.and_then(|u| {
            crate::measure::cost::cost(u, plan.cost.gpus_or(detected_gpus), &res.metrics)
        });
        res.energy_j_per_output_token =
            crate::measure::cost::joules_per_token(res.energy_j, res.metrics.output_tokens.total);
        say(console::scenario_text(&res));
        if plan.cost.usd_per_hour.is_some() && res.cost.is_none() {
            say("Cost: unknown: no GPU detected; give --gpus N".to_string());
        }
        for line in crate::report::telemetry::lines(&res) {
            say(line);
        }
        if let Some(t) = crate::report::turns::text(&res) {
            say(t);
        }
        let targets = crate::settings::targets_for(&plan.slo, &res.params);
        if !targets.is_empty() {
            let verdict = crate::measure::slo::evaluate(&targets, res.measured());
            say(crate::measure::slo::text(&verdict));
            res.slo = Some(verdict);
        }
        result.scenarios.push(res);
        // Written after each scenario, so a later failure loses nothing measured (a failure
        // here is said once, at the end).
        if let Some(p) = out_file {
            let _ = result.write(p);
        }
        if sinks.failure.is_some() {
            break;
        }
    }
    if stepped && result.scenarios.len() > 1 {
        let what = match (&plan.recorded.sweep, &plan.recorded.scenario_file) {
            (Some(sw), _) => format!("Sweep of {}", sw.name),
            (None, Some(f)) => format!("Scenarios of {f}"),
            (None, None) => "Steps".to_string(),
        };
        say(format!(
            "{what}: {} steps\n{}",
            result.scenarios.len(),
            console::sweep_table(&result.scenarios)
        ));
    }
    result.status = if crate::panicked() {
        RunStatus::Failed
    } else if sinks.failure.is_some() {
        RunStatus::WriteFailed
    } else if cancel.soft.is_cancelled() {
        RunStatus::Cancelled
    } else {
        RunStatus::Completed
    };
    if let Some(s) = steps.as_mut() {
        let cancelled = result.status == RunStatus::Cancelled;
        s.finish(&mut result, cancelled);
    }
    // Every record handed to the writer thread reaches the file, then the run's end line,
    // before the result names it.
    if let Some(w) = sinks.records.take() {
        let end = crate::results::records::RunEnd {
            run_id: result.run_id.clone(),
            status: result.status,
        };
        if let Err(e) = w.end(end).await
            && sinks.failure.is_none()
        {
            sinks.failure = Some(format!("{e:#}"));
            result.status = RunStatus::WriteFailed;
        }
    }
    if let Some(f) = &sinks.failure {
        crate::report::colour::eprint_error!(
            "{f}: no request was sent after it; what was measured is kept (status write_failed)"
        );
    }
    result.failure = sinks.failure.clone();
    result.finished_at = Some(now_rfc3339());
    // A result that cannot be written (a full disk) is still stored and reported.
    let mut output_failed = false;
    match &plan.output {
        Some(OutputTarget::File(p)) => match result.write(p) {
            Ok(()) => eprintln!("Result written to {}", p.display()),
            Err(e) => {
                crate::report::colour::eprint_error!("{e:#}");
                output_failed = true;
            }
        },
        Some(OutputTarget::Stdout) => println!("{}", serde_json::to_string_pretty(&result)?),
        None => {}
    }
    if let Some(s) = sim {
        s.stop().await;
    }
    if result.status == RunStatus::Failed {
        crate::report::colour::eprint_error!(
            "llmbench hit an internal error during the run (the panic above): the result is marked failed and not stored"
        );
        return Ok(EXIT_INTERNAL_ERROR);
    }
    if !result.scenarios.is_empty() {
        crate::commands::report::after_run(&plan.report, out_file, &result);
    }
    if output_failed || result.status == RunStatus::WriteFailed {
        return Ok(EXIT_WRITE_FAILED);
    }
    if result.status == RunStatus::Cancelled {
        eprintln!("Run cancelled: results above cover what was measured.");
        return Ok(EXIT_CANCELLED);
    }
    let (scheduled, succeeded) = result.scenarios.iter().fold((0, 0), |(a, b), s| {
        (
            a + s.outcomes.scheduled,
            b + s.outcomes.get(Outcome::Succeeded),
        )
    });
    if scheduled == 0 && result.status == RunStatus::Completed {
        // Every scenario (or every conversation) was skipped: the reasons are above.
        crate::report::colour::eprint_error!(
            "nothing was measured: no request was sent (skipped scenarios and conversations are listed above)"
        );
        return Ok(EXIT_NOTHING_MEASURED);
    }
    if scheduled > 0 && succeeded == 0 && result.status == RunStatus::Completed {
        match result.scenarios.iter().find_map(|s| s.errors.first()) {
            Some(e) => crate::report::colour::eprint_error!(
                "every request failed; the first reason: {}",
                e.message
            ),
            None => crate::report::colour::eprint_error!("every request failed"),
        }
        return Ok(EXIT_ALL_FAILED);
    }
    if let Some(c) = &result.capacity {
        if c.capacity.is_none() {
            eprintln!("error: no load met the targets (--slo)");
            return Ok(EXIT_SLO_FAILED);
        }
        return Ok(0);
    }
    let failed: Vec<&str> = result
        .scenarios
        .iter()
        .filter(|s| s.slo.as_ref().is_some_and(|v| !v.passed))
        .map(|s| s.name.as_str())
        .collect();
    if !failed.is_empty() {
        crate::report::colour::eprint_error!(
            "performance targets (--slo) failed in {}",
            failed.join(", ")
        );
        return Ok(EXIT_SLO_FAILED);
    }
    Ok(0)
}
