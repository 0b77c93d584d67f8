//! Reports: each takes finished results and turns them into text or bytes. No measuring here.

pub mod charts;
pub mod console;
pub mod html;
pub mod tables;
pub mod telemetry;
pub mod turns;
