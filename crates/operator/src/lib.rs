//! The operator binary's library part: what `main.rs` wires into subcommands.

pub mod playground;
