//! `llmbench run`: benchmark a target (or the built-in simulator) and report.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};

use crate::cli::RunArgs;
use crate::client::{Client, ClientConfig, describe, http_client};
use crate::config::{RunPlan, parse_url, run_plan, sim_config};
use crate::record::{Outcome, RecordWriter};
use crate::report::console;
use crate::result::{ResultFile, RunStatus, Target, new_run_id, now_rfc3339};
use crate::runner::{Cancel, Sinks, run_scenario};

/// Exit code when every measured request failed.
pub const EXIT_ALL_FAILED: i32 = 1;

/// Exit code when a performance target (`--slo`) failed.
pub const EXIT_SLO_FAILED: i32 = 3;

/// Fails early, before any request, when an output file cannot be written.
pub fn check_writable(path: &Path, flag: &str) -> anyhow::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        bail!(
            "{flag} {}: directory {} does not exist",
            path.display(),
            dir.display()
        );
    }
    let probe = dir.join(format!(".llmbench-write-test-{}", std::process::id()));
    std::fs::write(&probe, b"x").with_context(|| {
        format!(
            "{flag} {}: cannot write in {}",
            path.display(),
            dir.display()
        )
    })?;
    let _ = std::fs::remove_file(probe);
    Ok(())
}

/// Asks an OpenAI-compatible server for its models; fails fast when it cannot be reached.
pub async fn list_models(cfg: &ClientConfig) -> anyhow::Result<Vec<String>> {
    let http = http_client(cfg)?;
    let url = format!("{}/v1/models", cfg.base_url);
    let mut req = http.get(&url).timeout(cfg.connect_timeout * 3);
    for (k, v) in &cfg.headers {
        req = req.header(k.as_str(), v.as_str());
    }
    let resp = req
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("cannot reach {}: {}", cfg.base_url, describe(&e)))?;
    if !resp.status().is_success() {
        return Ok(Vec::new());
    }
    let v: serde_json::Value = resp.json().await.unwrap_or_default();
    Ok(v["data"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|m| m["id"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default())
}

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

/// Runs the `run` command; returns the process exit code.
pub async fn run(args: RunArgs) -> anyhow::Result<i32> {
    if args.workload.list_conversations {
        return crate::plan::list_conversations(&args);
    }
    let plan = run_plan(&args)?;
    execute(&args, plan).await
}

/// Runs a validated plan (`run` and `sweep`); returns the process exit code. With
/// `--server-cmd`, the server is started first and stopped afterwards whatever happens.
pub async fn execute(args: &RunArgs, plan: RunPlan) -> anyhow::Result<i32> {
    // Bad report formats or targets are bad input: refuse them before anything starts.
    crate::commands::report::check(&args.outputs)?;
    if let Some(s) = &args.outputs.slo {
        crate::slo::parse(s)?;
    }
    let cancel = Cancel::default();
    install_signals(&cancel, args.grace);
    let mut server = match crate::telemetry::monitor::server_cmd(args)? {
        Some(cfg) => match crate::managed::ManagedServer::start(cfg, &cancel).await {
            Ok(s) => Some(s),
            Err(crate::managed::StartError::Cancelled) => {
                eprintln!("Run cancelled before the server was ready.");
                return Ok(EXIT_CANCELLED);
            }
            Err(crate::managed::StartError::Failed(e)) => return Err(e),
        },
        None => None,
    };
    let r = execute_with(args, plan, &cancel, server.as_mut()).await;
    if let Some(s) = server.as_mut() {
        s.stop().await;
    }
    r
}

async fn execute_with(
    args: &RunArgs,
    mut plan: RunPlan,
    cancel: &Cancel,
    mut server: Option<&mut crate::managed::ManagedServer>,
) -> anyhow::Result<i32> {
    let targets = match &args.outputs.slo {
        Some(s) => crate::slo::parse(s)?,
        None => Vec::new(),
    };
    if let Some(p) = &args.output {
        check_writable(p, "--output")?;
    }
    let records = match &args.records {
        Some(p) => {
            check_writable(p, "--records")?;
            Some(RecordWriter::create(p)?)
        }
        None => None,
    };
    let mut sim = None;
    let target = match &args.url {
        Some(raw) => parse_url(raw)?,
        None => {
            let cfg = sim_config(&args.sim)?;
            let running = crate::sim::spawn(cfg, SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
                .await
                .context("cannot start the built-in simulator")?;
            eprintln!(
                "No URL given: benchmarking the built-in simulator at {} (model {}, {}).",
                running.url(),
                running.sim.cfg.model,
                crate::commands::serve::describe_timing(&running.sim.cfg)
            );
            let t = parse_url(&running.url())?;
            sim = Some(running);
            t
        }
    };
    plan.client.base_url = target.url.clone();
    plan.client.url_is_endpoint = target.is_endpoint;
    crate::target::resolve(&mut plan, args).await?;
    let model = plan.options.model.clone();
    let run_id = new_run_id();
    if let Some((_, prefix)) = plan.client.request_id.as_mut() {
        prefix.clone_from(&run_id);
    }
    let epoch = Instant::now();
    let client = Arc::new(
        Client::new(
            plan.client.clone(),
            plan.protocol.clone(),
            plan.options.clone(),
            epoch,
        )?
        .with_tokenizer(plan.tokenizer.clone(), args.tokenizer.is_some()),
    );
    let mut result = ResultFile {
        schema_version: crate::result::SCHEMA_VERSION,
        run_id,
        started_at: now_rfc3339(),
        status: RunStatus::Running,
        target: Target {
            url: plan.client.base_url.clone(),
            backend: plan.protocol.name().into(),
            model,
            simulated: sim.is_some(),
        },
        system: crate::telemetry::system::describe(),
        config: plan.recorded.clone(),
        ..Default::default()
    };
    let mut sinks = Sinks {
        records,
        progress: !args.quiet,
    };
    let context = crate::plan::server_context(&plan, &result.target.model).await;
    let (mut telemetry, record) =
        crate::telemetry::monitor::prepare(args, &target.url, server.as_deref()).await?;
    result.server = Some(record);
    for (i, sc) in plan.scenarios.iter().enumerate() {
        if i > 0
            && args.telemetry.isolate
            && let Some(s) = server.as_deref_mut()
        {
            if let Err(e) = s.restart(cancel).await {
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
        if let Some(skip) = crate::plan::skip(sc, context.as_ref()) {
            eprintln!("Skipping {}: {}", skip.name, skip.reason);
            result.skipped.push(skip);
            continue;
        }
        let monitor = crate::telemetry::monitor::Monitor::start(&telemetry, epoch).await;
        let mut res = run_scenario(client.clone(), sc, &mut sinks, cancel).await?;
        let (resources, metrics) = monitor.finish().await;
        res.resources = Some(resources);
        res.server_metrics = metrics;
        println!("{}", console::scenario_text(&res));
        crate::report::telemetry::print(&res);
        if let Some(t) = crate::report::turns::text(&res) {
            println!("{t}");
        }
        if !targets.is_empty() {
            let verdict = crate::slo::evaluate(&targets, &res);
            println!("{}", crate::slo::text(&verdict));
            res.slo = Some(verdict);
        }
        result.scenarios.push(res);
        if let Some(p) = &args.output {
            result.write(p)?;
        }
    }
    result.status = if cancel.soft.is_cancelled() {
        RunStatus::Cancelled
    } else {
        RunStatus::Completed
    };
    result.finished_at = Some(now_rfc3339());
    if let Some(p) = &args.output {
        result.write(p)?;
        eprintln!("Result written to {}", p.display());
    }
    if !result.scenarios.is_empty() {
        crate::commands::report::after_run(&args.outputs, args.output.as_deref(), &result);
    }
    if let Some(s) = sim {
        s.stop().await;
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
    if scheduled > 0 && succeeded == 0 && result.status == RunStatus::Completed {
        eprintln!("error: every request failed");
        return Ok(EXIT_ALL_FAILED);
    }
    let failed: Vec<&str> = result
        .scenarios
        .iter()
        .filter(|s| s.slo.as_ref().is_some_and(|v| !v.passed))
        .map(|s| s.name.as_str())
        .collect();
    if !failed.is_empty() {
        eprintln!(
            "error: performance targets (--slo) failed in {}",
            failed.join(", ")
        );
        return Ok(EXIT_SLO_FAILED);
    }
    Ok(0)
}
