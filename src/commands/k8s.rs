//! `llmbench k8s --shards N --image IMAGE [flags] -- URL [run flags]`: writes the Kubernetes
//! manifest (a headless clock Service and an Indexed Job) that runs the plan as N shards, to
//! standard output.

use crate::cli::K8sArgs;

/// Runs the command; returns the exit code.
pub fn k8s(args: K8sArgs) -> anyhow::Result<i32> {
    let argv = std::iter::once("k8s".to_string()).chain(args.run.iter().cloned());
    let run = super::sweep::parse_run_args("llmbench k8s --", argv)?;
    let plan = crate::settings::k8s::k8s_plan(&args, &args.run, run, chrono::Utc::now())?;
    let (service, job) = crate::k8s::manifest(&plan);
    print!("{}", crate::k8s::to_text(&service, &job)?);
    eprintln!(
        "{} shards start at {}: apply before then (kubectl apply -f FILE); then see README, \"Beyond one machine\".",
        plan.shards, plan.start_at
    );
    Ok(0)
}
