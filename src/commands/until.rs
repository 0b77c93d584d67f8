//! `run --until`: the watch that stops a scenario once the interval of one percentile is
//! narrow enough, and the figures it reports. (Apart from `capacity`, which runs `run`.)

use std::sync::{Arc, Mutex};

use crate::load::Watch;
use crate::measure::capacity::StepValues;

/// `run --until`: a watcher that stops the scenario once the statistic's interval is narrow
/// enough. The first look comes after `first_look` finished requests (requests that ran side
/// by side are alike, so the first round alone would give a falsely narrow interval); then
/// after every 5 more, and at least 5 % more each time (a long run sorts its values about 15
/// times per doubling, not once per request).
pub(crate) fn until_watch(
    u: &crate::settings::capacity::Until,
    first_look: u64,
) -> (Watch, Arc<Mutex<UntilState>>) {
    let state = Arc::new(Mutex::new(UntilState {
        values: StepValues::new(1),
        next_look: first_look.max(5),
        reached: false,
        at_stop: None,
    }));
    let (s, target, spec, rel) = (state.clone(), [u.target.clone()], u.spec.clone(), u.rel);
    let watch: Watch = Box::new(move |r| {
        let mut st = s.lock().expect("until state");
        st.values.add(&target, r);
        if st.reached {
            return true;
        }
        let n = st.values.finished;
        if n >= st.next_look {
            st.next_look = (n + 5).max(n + n / 20);
            let checks = st.values.check(&target);
            if let Some(c) = checks.first() {
                let r = crate::measure::capacity::until_check(&spec, c, rel);
                st.reached = r.reached;
                // The figures the stop was decided on are the ones reported.
                st.at_stop = r.reached.then_some(r);
            }
        }
        st.reached
    });
    (watch, state)
}

/// What the `--until` watcher has seen.
pub(crate) struct UntilState {
    values: StepValues,
    next_look: u64,
    reached: bool,
    /// The check that stopped the scenario.
    at_stop: Option<crate::measure::capacity::UntilResult>,
}

/// The `--until` figures of a finished scenario: those of its stop, else of all its records.
pub(crate) fn until_result(
    u: &crate::settings::capacity::Until,
    state: &Mutex<UntilState>,
) -> Option<crate::measure::capacity::UntilResult> {
    let st = state.lock().ok()?;
    // Stopped: the figures it was decided on (the requests still in flight then finish and
    // count in the scenario's metrics, not here). Not stopped: over every record.
    if let Some(r) = &st.at_stop {
        let mut r = r.clone();
        r.stopped = true;
        return Some(r);
    }
    let c = st.values.check(std::slice::from_ref(&u.target));
    let mut r = crate::measure::capacity::until_check(&u.spec, c.first()?, u.rel);
    r.stopped = false;
    Some(r)
}
