//! Reports: each takes finished results and turns them into text or bytes. No measuring here.

pub mod capacity;
pub(crate) mod capacity_charts;
pub mod chart;
pub mod charts;
pub(crate) mod colour;
pub mod console;
pub(crate) mod experiments;
pub mod export;
pub mod html;
mod legend;
pub(crate) mod model;
pub mod render;
pub(crate) mod sections;
pub mod tables;
pub mod telemetry;
pub mod turns;

pub use export::Format;
