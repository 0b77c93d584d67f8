//! The server under test: which protocol and model it speaks (probing), what it says about
//! itself (context length), and a server llmbench starts and stops itself (`--server-cmd`).

pub mod info;
pub mod managed;
pub mod resolve;
