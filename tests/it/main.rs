//! One integration-test binary; modules share the helpers in `common`.

mod common;
mod core;
mod large;
mod protocols;
mod reports;
mod schema;
mod telemetry;
mod workloads;
