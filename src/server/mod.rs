//! The server under test: which protocol and model it speaks (probing), what it says about
//! itself (context length), and a server llmbench starts and stops itself (`--server-cmd`).

pub(crate) mod advice;
pub mod detect;
pub(crate) mod info;
pub mod managed;
pub(crate) mod resolve;
