//! One integration-test binary; modules share the helpers in `common`.

mod common;
mod core;
mod faults;
mod inputs;
mod lifecycle;
mod secrets;
mod workloads;
