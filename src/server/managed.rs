//! A server llmbench starts, waits for, measures and stops (`run --server-cmd`).
//!
//! The command is split like a POSIX shell would (`shlex`), leading `NAME=value` words become
//! environment variables, and a shell (`sh -c`) is used only when the command has pipes,
//! redirections, `$` expansions or similar. The server runs in a new process group, so stopping
//! it (SIGTERM to the group, SIGKILL after a grace period) reaches its children too. Its stdout
//! and stderr go to a log file. Dropping a `ManagedServer` that was not stopped kills the group,
//! so an error path never leaves a server behind.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use crate::server::detect::{DetectedServer, ServerKind, probe};
use tokio_util::sync::CancellationToken;

/// What the result file records about the server.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerRecord {
    /// `ollama`, `vllm`, `llmbench-sim`, ... as probed; `null` when unknown.
    pub kind: Option<ServerKind>,
    /// Version the server reported.
    pub version: Option<String>,
    /// Models it listed.
    #[serde(default)]
    pub models: Vec<String>,
    /// Where server metrics were scraped (`null`: none).
    pub metrics_url: Option<String>,
    /// Pid whose process tree the resource timeline follows.
    pub pid: Option<u32>,
    /// Set when llmbench started the server (`--server-cmd`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub managed: Option<ManagedInfo>,
}

/// A server started by llmbench.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ManagedInfo {
    /// The command, with values of key/token/secret/password flags redacted.
    pub command: String,
    /// Its log file (stdout and stderr).
    pub log: String,
    /// Times it was started (more than 1 with `--isolate`).
    pub starts: u32,
    /// Seconds from start until it answered, per start.
    pub ready_s: Vec<f64>,
}

impl ServerRecord {
    /// Copies probe findings in.
    pub fn fill(&mut self, d: &DetectedServer) {
        self.kind = Some(d.kind);
        self.version = d.version.clone();
        self.models = d.models.clone();
    }
}

/// How to run the server.
#[derive(Debug, Clone)]
pub struct ServerCmd {
    /// The command as given.
    pub command: String,
    /// Base URL it will answer on.
    pub url: String,
    /// Longest wait for it to answer.
    pub ready_timeout: Duration,
    /// Wait after SIGTERM before SIGKILL.
    pub stop_grace: Duration,
    /// Log file.
    pub log: PathBuf,
}

/// Words that make a flag or variable name a credential, when one of its `-`/`_`-separated
/// words is one of them (`--api-key`, `HF_TOKEN`, `--hf-token`), not when they only appear
/// inside a word (`--tokens 16`, `--max-num-batched-tokens`, `--monkey`).
const SECRET_WORDS: [&str; 10] = [
    "key",
    "apikey",
    "token",
    "secret",
    "password",
    "passwd",
    "auth",
    "authorization",
    "credential",
    "credentials",
];

fn secret_name(s: &str) -> bool {
    s.trim_start_matches('-')
        .to_ascii_lowercase()
        .split(['-', '_', '.'])
        .any(|w| SECRET_WORDS.contains(&w))
}

/// The command with secret values replaced by `<redacted>`.
pub fn redact(command: &str) -> String {
    let Some(words) = shlex::split(command) else {
        return "<unparsable command>".into();
    };
    let mut out = Vec::new();
    let mut hide_next = false;
    let mut hidden = false;
    for w in words {
        if hide_next {
            out.push("<redacted>".to_string());
            hide_next = false;
            hidden = true;
            continue;
        }
        if let Some((k, _)) = w.split_once('=')
            && secret_name(k)
        {
            out.push(format!("{k}=<redacted>"));
            hidden = true;
            continue;
        }
        if w.starts_with('-') && secret_name(&w) {
            hide_next = true;
        }
        out.push(w);
    }
    if !hidden {
        // Nothing secret: keep the command as typed (re-quoting would misstate `$` expansions).
        return command.to_string();
    }
    shlex::try_join(out.iter().map(String::as_str)).unwrap_or_else(|_| out.join(" "))
}

/// True when the command needs `sh -c` (pipes, redirections, `$` expansions and the like).
pub fn needs_shell(command: &str) -> bool {
    command.chars().any(|c| {
        matches!(
            c,
            '|' | '&' | ';' | '<' | '>' | '(' | ')' | '$' | '`' | '*' | '?' | '\n'
        )
    })
}

/// Builds the process: env assignments, program, arguments (or `sh -c` when needed).
pub fn command(cmd: &str) -> anyhow::Result<Command> {
    if needs_shell(cmd) {
        let mut c = Command::new("sh");
        c.arg("-c").arg(cmd);
        return Ok(c);
    }
    let words =
        shlex::split(cmd).with_context(|| format!("--server-cmd {cmd:?}: unbalanced quotes"))?;
    let mut it = words.into_iter().peekable();
    let mut env = Vec::new();
    while let Some(w) = it.peek() {
        match w.split_once('=') {
            Some((k, v))
                if !k.is_empty()
                    && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    && !k.starts_with(|c: char| c.is_ascii_digit()) =>
            {
                env.push((k.to_string(), v.to_string()));
                it.next();
            }
            _ => break,
        }
    }
    let Some(program) = it.next() else {
        bail!("--server-cmd {cmd:?}: no program to run");
    };
    let mut c = Command::new(program);
    c.args(it).envs(env);
    Ok(c)
}

fn signal_group(pgid: u32, sig: i32) -> bool {
    // SAFETY: kill has no memory-safety preconditions; a negative pid names a process group.
    unsafe { libc::kill(-(pgid as i32), sig) == 0 }
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

/// Why a start failed.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Ctrl-C while waiting; the server was stopped.
    #[error("cancelled while waiting for the server")]
    Cancelled,
    /// Anything else (message says what, and where the log is).
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

/// A running server process group.
pub struct ManagedServer {
    cfg: ServerCmd,
    /// Readiness checks and the probe (the run's TLS and header settings).
    http: reqwest::Client,
    child: Option<Child>,
    /// What the result file records.
    pub info: ManagedInfo,
    /// Probe findings at the last start.
    pub detected: Option<DetectedServer>,
}

impl ManagedServer {
    /// Starts the server and waits until it answers (or fails, times out, or Ctrl-C).
    pub async fn start(
        cfg: ServerCmd,
        http: reqwest::Client,
        cancel: &CancellationToken,
    ) -> Result<ManagedServer, StartError> {
        let mut s = ManagedServer {
            info: ManagedInfo {
                command: redact(&cfg.command),
                log: cfg.log.display().to_string(),
                ..Default::default()
            },
            cfg,
            http,
            child: None,
            detected: None,
        };
        s.launch(cancel).await?;
        Ok(s)
    }

    /// Pid of the process group leader.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    async fn launch(&mut self, cancel: &CancellationToken) -> Result<(), StartError> {
        use std::os::unix::process::CommandExt;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.cfg.log)
            .with_context(|| format!("cannot write server log {}", self.cfg.log.display()))?;
        let mut cmd = command(&self.cfg.command)?;
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone().context("server log")?)
            .stderr(log)
            .process_group(0);
        let started = Instant::now();
        let child = cmd
            .spawn()
            .with_context(|| format!("--server-cmd: cannot start {:?}", self.cfg.command))?;
        eprintln!(
            "Started server (pid {}): {}; log: {}",
            child.id(),
            self.info.command,
            self.cfg.log.display()
        );
        self.child = Some(child);
        self.info.starts += 1;
        let http = self.http.clone();
        let base = self.cfg.url.trim_end_matches('/').to_string();
        loop {
            if cancel.is_cancelled() {
                self.stop().await;
                return Err(StartError::Cancelled);
            }
            if let Some(st) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                return Err(anyhow::anyhow!(
                    "the server exited ({st}) before answering at {base}; last lines of {}:\n{}",
                    self.cfg.log.display(),
                    log_tail(&self.cfg.log)
                )
                .into());
            }
            if started.elapsed() > self.cfg.ready_timeout {
                self.stop().await;
                return Err(anyhow::anyhow!(
                    "the server did not answer at {base} within {:?} (--server-ready-timeout); last lines of {}:\n{}",
                    self.cfg.ready_timeout,
                    self.cfg.log.display(),
                    log_tail(&self.cfg.log)
                )
                .into());
            }
            if ready(&http, &base).await {
                break;
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                _ = cancel.cancelled() => {}
            }
        }
        let secs = started.elapsed().as_secs_f64();
        self.info.ready_s.push(secs);
        self.detected = probe(&http, &base).await;
        eprintln!(
            "Server ready after {secs:.1} s{}",
            self.detected
                .as_ref()
                .map(|d| format!(
                    " ({} {})",
                    d.kind,
                    d.version.as_deref().unwrap_or("version unknown")
                ))
                .unwrap_or_default()
        );
        Ok(())
    }

    /// Stops and starts the server again (`--isolate`).
    pub async fn restart(&mut self, cancel: &CancellationToken) -> Result<(), StartError> {
        self.stop().await;
        self.launch(cancel).await
    }

    /// SIGTERM to the group, SIGKILL after the grace period; waits until the group is gone.
    pub async fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pgid = child.id();
        signal_group(pgid, libc::SIGTERM);
        let deadline = Instant::now() + self.cfg.stop_grace;
        let mut killed = false;
        loop {
            let leader_done = child.try_wait().ok().flatten().is_some();
            // The group is gone once the leader is reaped and no member answers signal 0.
            if leader_done && !signal_group(pgid, 0) {
                break;
            }
            if !killed && Instant::now() >= deadline {
                eprintln!(
                    "server did not stop within {:?} of SIGTERM: sending SIGKILL",
                    self.cfg.stop_grace
                );
                signal_group(pgid, libc::SIGKILL);
                killed = true;
            }
            if killed && leader_done {
                // Remaining members are orphans now reaped by init; nothing more to wait for.
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        eprintln!("Stopped server (pid {pgid})");
    }
}

impl Drop for ManagedServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal_group(child.id(), libc::SIGKILL);
            let _ = child.wait();
        }
    }
}

async fn ready(http: &reqwest::Client, base: &str) -> bool {
    for path in ["/health", "/v1/models", "/api/version"] {
        if let Ok(r) = http.get(format!("{base}{path}")).send().await
            && r.status().is_success()
        {
            return true;
        }
    }
    false
}

/// The log file: `--server-log`, else next to the result file (`NAME.server.log`), else
/// `llmbench-server-RUNID.log` in the current directory.
pub fn log_path(explicit: Option<&Path>, output: Option<&Path>, run_id: &str) -> PathBuf {
    if let Some(p) = explicit {
        return p.to_path_buf();
    }
    match output {
        Some(o) => o.with_extension("server.log"),
        None => PathBuf::from(format!("llmbench-server-{run_id}.log")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_secret_values() {
        assert_eq!(
            redact("vllm serve m --api-key abc --port 8000 HF_TOKEN=x --token=y"),
            "vllm serve m --api-key '<redacted>' --port 8000 'HF_TOKEN=<redacted>' '--token=<redacted>'"
        );
        // Vocabulary is not a secret: token counts and batch sizes stay as typed.
        for plain in [
            "llmbench serve --tokens 16 --port 8000",
            "vllm serve m --max-num-batched-tokens 8192 --monkey 3",
        ] {
            assert_eq!(redact(plain), plain);
        }
        assert_eq!(
            redact("x --hf-token abc OPENAI_API_KEY=k"),
            "x --hf-token '<redacted>' 'OPENAI_API_KEY=<redacted>'"
        );
    }

    #[test]
    fn splits_env_program_and_args() {
        let c = command("OLLAMA_NUM_PARALLEL=4 A_B='x y' ollama serve --flag 'two words'").unwrap();
        assert_eq!(c.get_program(), "ollama");
        let args: Vec<_> = c
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(args, vec!["serve", "--flag", "two words"]);
        let envs: Vec<_> = c
            .get_envs()
            .map(|(k, v)| {
                (
                    k.to_string_lossy().into_owned(),
                    v.unwrap().to_string_lossy().into_owned(),
                )
            })
            .collect();
        assert_eq!(
            envs,
            vec![
                ("A_B".into(), "x y".into()),
                ("OLLAMA_NUM_PARALLEL".into(), "4".into())
            ]
        );
        assert_eq!(command("a | b").unwrap().get_program(), "sh");
        assert!(command("a 'b").is_err());
        assert!(command("X=1").is_err());
    }
}
