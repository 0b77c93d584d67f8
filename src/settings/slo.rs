//! `--slo` targets limited to some steps (`output_tokens_per_s>=400@concurrency=8`): which
//! targets hold for a scenario, and a check that each such target meets a step.

use anyhow::bail;

use super::RunSettings;
use crate::measure::slo::Target;
use crate::results::params::ScenarioParams;

/// The targets that hold for a scenario with these parameters: every target without `@`, and
/// those whose step is this one.
pub fn targets_for(slo: &[Target], params: &ScenarioParams) -> Vec<Target> {
    slo.iter()
        .filter(|t| {
            t.step
                .as_ref()
                .is_none_or(|s| s.matches(params.flag_value(s.flag)))
        })
        .cloned()
        .collect()
}

/// Every target limited to steps (`@concurrency=8`) must hold for at least one scenario of the
/// run: a target that meets none is a typo, said before anything is sent.
pub fn check_step_targets(plan: &RunSettings) -> anyhow::Result<()> {
    for t in &plan.slo {
        let Some(step) = &t.step else { continue };
        if plan
            .scenarios
            .iter()
            .any(|sc| step.matches(sc.params.flag_value(step.flag)))
        {
            continue;
        }
        let mut seen: Vec<String> = plan
            .scenarios
            .iter()
            .filter_map(|sc| sc.params.flag_value(step.flag))
            .map(|v| v.to_string())
            .collect();
        seen.dedup();
        bail!(
            "--slo {:?}: no step has {}={} (the run's steps have {})",
            t.spec,
            step.flag,
            step.value,
            if seen.is_empty() {
                format!("no {}", step.flag)
            } else {
                format!("{} {}", step.flag, seen.join(", "))
            }
        );
    }
    Ok(())
}
