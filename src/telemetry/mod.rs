//! What the machine is (hardware detection) and what it did (samplers).

pub mod gpu;
pub mod monitor;
pub mod procfs;
pub mod prom;
pub mod resources;
pub mod scrape;
pub mod system;
