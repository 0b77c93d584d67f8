//! Wire protocols: how to build a request and decode each event of its response.
//!
//! A protocol never touches the network or the clock: the client feeds it event payloads and
//! it says what they carried. One file per protocol, all behind [`Protocol`].

pub mod embed;
pub mod generate;
pub mod llamacpp;
pub mod ollama;
pub mod openai;
pub mod tgi;

mod backend;
mod one_or_more;
mod openai_scan;
mod types;

pub use backend::Backend;
pub use types::*;

use std::sync::Arc;

/// Backends that can be chosen with `--backend`: `auto` and every [`Backend`] by name.
pub fn backend_names() -> Vec<&'static str> {
    std::iter::once("auto")
        .chain(Backend::ALL.iter().map(|b| b.name()))
        .collect()
}

/// The protocol for a backend name (`auto` is resolved by probing, see `crate::server::resolve`).
pub fn by_name(name: &str) -> Option<Arc<dyn Protocol>> {
    Backend::parse(name).map(Backend::protocol)
}
