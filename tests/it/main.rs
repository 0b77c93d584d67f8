//! The integration tests that run in parallel; modules share the helpers in `common` (the
//! timing-truth tests are the `truth` binary, run one at a time).

mod capacity;
mod cli;
mod common;
mod compare;
mod conversations;
mod dashboard;
mod diskfull;
mod faults;
mod files;
mod inputs;
mod k8s;
mod large;
mod lifecycle;
mod media;
mod netns;
mod pg;
mod replies;
mod reports;
mod schema;
mod schema_check;
mod secrets;
mod settings;
mod shard;
mod store;
mod telemetry;
mod traces;
mod workloads;
