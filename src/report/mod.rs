//! Reports: each takes finished results and turns them into text or bytes. No measuring here.

pub mod console;
pub mod telemetry;
pub mod turns;
