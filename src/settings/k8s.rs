//! `llmbench k8s`: its flags and the `run` flags it carries, checked before anything is
//! written. A flag that cannot work in a sharded Job is refused, with the reason:
//! - `-o`, `--shard`, `--start-at`, `--clock`: the Job sets them for each shard;
//! - no URL: each pod would benchmark a simulator of its own;
//! - `--records`, `--report`, `--format`: files written in a pod are lost when it ends (merge
//!   the shard results, then report from the merged file);
//! - `--header` and a URL with credentials: their values would be written into the manifest
//!   in clear (the API key comes from a Secret: `--api-key-secret`);
//! - and all that `run --shard` itself refuses (`settings::shard`: `--warmup`, `--until`,
//!   `--server-cmd`, sweeps and suites, a closed loop smaller than the shards).

use anyhow::bail;
use chrono::{DateTime, Utc};

use crate::cli::{K8sArgs, RunArgs};
use crate::k8s::{Plan, Results};

/// The manifest's plan, every flag checked; `run_argv` are the run flags as typed and `run`
/// those flags parsed.
pub fn k8s_plan(
    a: &K8sArgs,
    run_argv: &[String],
    run: RunArgs,
    now: DateTime<Utc>,
) -> anyhow::Result<Plan> {
    if a.shards == 0 || a.shards > 10_000 {
        bail!("--shards must be from 1 to 10000 (got {})", a.shards);
    }
    if !dns_label(&a.name) || a.name.len() > 57 {
        bail!(
            "--name {:?}: a Kubernetes name is lower-case letters, digits and '-', starting with a letter, at most 57 characters (the Service adds -clock)",
            a.name
        );
    }
    if a.image.trim().is_empty() || a.image.contains(char::is_whitespace) {
        bail!("--image {:?} is not an image reference", a.image);
    }
    for (flag, v) in [("--cpu", &a.cpu), ("--memory", &a.memory)] {
        if !quantity(v) {
            bail!("{flag} {v:?} is not a Kubernetes quantity (for example 2, 500m, 1Gi)");
        }
    }
    if let Some(c) = &a.results_claim
        && !dns_label(c)
    {
        bail!("--results-claim {c:?} is not a Kubernetes name");
    }
    if a.start_in < std::time::Duration::from_secs(10) {
        bail!(
            "--start-in {:?} is too short for the pods to be scheduled and the images pulled (at least 10s)",
            a.start_in
        );
    }
    let refuse = |what: &str, why: &str| anyhow::anyhow!("llmbench k8s cannot pass {what}: {why}");
    if run.url.is_none() {
        return Err(refuse(
            "a run without a URL",
            "each pod would benchmark a simulator of its own; give the server's URL after --",
        ));
    }
    if run.output.is_some() {
        return Err(refuse(
            "-o",
            "the Job writes each shard's result (--results-claim, or standard output)",
        ));
    }
    let s = &run.shard;
    if s.shard.is_some() || s.start_at.is_some() || s.clock.is_some() {
        return Err(refuse(
            "--shard, --start-at or --clock",
            "the Job sets them for each shard",
        ));
    }
    if run.records.is_some() {
        return Err(refuse("--records", "a pod's files are lost when it ends"));
    }
    if run.outputs.report.is_some() || !run.outputs.format.is_empty() {
        return Err(refuse(
            "--report or --format",
            "a pod's files are lost when it ends; merge the shard results, then `llmbench report` the merged file",
        ));
    }
    if !run.headers.is_empty() {
        return Err(refuse(
            "--header",
            "its value would be written into the manifest in clear; give the API key with --api-key-secret",
        ));
    }
    if run.url.as_deref().is_some_and(|u| {
        let rest = u.split_once("://").map_or(u, |(_, r)| r);
        rest.split('/')
            .next()
            .is_some_and(|host| host.contains('@'))
    }) {
        return Err(refuse(
            "a URL with credentials",
            "they would be written into the manifest in clear; give the API key with --api-key-secret",
        ));
    }
    let api_key = match &a.api_key_secret {
        None => None,
        Some(s) => {
            let (secret, key) = s.split_once(':').unwrap_or((s, "api-key"));
            if !dns_label(secret) || key.is_empty() {
                bail!(
                    "--api-key-secret {s:?}: give SECRET or SECRET:KEY (a Kubernetes Secret's name and a key in it)"
                );
            }
            Some((run.api_key_env.clone(), secret.to_string(), key.to_string()))
        }
    };
    let start = now
        + chrono::Duration::from_std(a.start_in)
            .map_err(|_| anyhow::anyhow!("--start-in is too long"))?;
    let start_at = start.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    // Every other check of a shard's run, as shard 0 would make it (files it names are read
    // here, and must be in the image at the same path).
    let mut check = run;
    check.shard.shard = Some(format!("0/{}", a.shards));
    check.shard.start_at = Some(start_at.clone());
    check.output = Some(std::env::temp_dir().join("llmbench-k8s-check.json"));
    let settings = super::run_settings(&check)?;
    super::shard::check_plan(&settings)?;
    Ok(Plan {
        name: a.name.clone(),
        image: a.image.clone(),
        shards: a.shards,
        run_args: run_argv.to_vec(),
        start_at,
        cpu: a.cpu.clone(),
        memory: a.memory.clone(),
        results: match &a.results_claim {
            Some(c) => Results::Claim(c.clone()),
            None => Results::Stdout,
        },
        api_key,
    })
}

/// An RFC 1123 label starting with a letter.
fn dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && !s.ends_with('-')
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// A resource quantity: a decimal number and an optional suffix.
fn quantity(s: &str) -> bool {
    let n = s.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let suffix = &s[n.len()..];
    !n.is_empty()
        && n.parse::<f64>().is_ok_and(|x| x > 0.0)
        && ["", "m", "k", "M", "G", "T", "Ki", "Mi", "Gi", "Ti"].contains(&suffix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_quantities() {
        assert!(dns_label("bench-1"));
        assert!(!dns_label("Bench") && !dns_label("1b") && !dns_label("b-") && !dns_label(""));
        assert!(quantity("2") && quantity("500m") && quantity("1Gi") && quantity("0.5"));
        assert!(!quantity("lots") && !quantity("2 cores") && !quantity("1GB"));
    }
}
