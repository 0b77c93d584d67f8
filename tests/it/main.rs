//! One integration-test binary; modules share the helpers in `common`.

mod common;
mod core;
mod faults;
mod inputs;
mod keepalive;
mod large;
mod lifecycle;
mod protocols;
mod reports;
mod schema;
mod secrets;
mod telemetry;
mod workloads;
