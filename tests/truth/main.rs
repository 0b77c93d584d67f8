//! The tests that hold timing to known truth (the simulator's fixed mode, scripted servers,
//! kept-alive connections closed within microseconds): one binary whose tests run one at a time
//! (each holds `common::serial`), while the `it` binary's tests run in parallel. Cargo runs the
//! two binaries one after the other, so these never share the machine with other tests.

mod capacity;
mod capacity_report;
#[path = "../it/common.rs"]
mod common;
mod compare;
mod connections;
mod core;
mod keepalive;
mod media;
mod protocols;
#[path = "../it/schema_check.rs"]
mod schema_check;
mod stalls;
mod tools;
mod traces;
mod workloads;
