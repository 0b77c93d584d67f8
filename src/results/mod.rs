//! What is kept: the records file, the versioned result file, the results store and
//! comparisons of runs.

pub mod compare;
pub mod compare_capacity;
pub mod file;
pub mod params;
pub mod records;
pub mod shard;
pub mod store;
