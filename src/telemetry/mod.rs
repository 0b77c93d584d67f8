//! What the machine is (hardware detection) and what it did (samplers).

pub mod system;
