//! Reports: each takes finished results and turns them into text or bytes. No measuring here.

pub mod charts;
pub mod console;
pub mod export;
pub mod html;
pub mod render;
pub mod tables;
pub mod telemetry;
pub mod turns;

pub use export::Format;
