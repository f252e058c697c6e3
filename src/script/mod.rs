//! The telemarketing script as data, and the pure state machine that runs it.
//!
//! The model may be small and may babble, so the script, not the model, decides what may be
//! said and when the call ends: the LLM only classifies the caller's words into one of the
//! node's intents (grammar-constrained) and phrases replies where a node allows it.
//!
//! - [`format`]: the TOML file format (raw), validated into a [`format::Script`] with every error
//!   reported as file, key path and reason.
//! - [`machine`]: `step(state, event) -> actions`, no I/O: golden-tested paths.
//! - [`classify`]: caller words -> intent + variables (rules, then grammar-constrained LLM).
//! - [`runner`]: drives a script with a real LLM over text (`chat`, scenario tests).

/// The example campaign shipped with the binary (booking a solar consultation).
pub const EXAMPLE_SCRIPT: &str = include_str!("../../scripts/campaigns/solar.toml");

pub mod classify;
pub mod format;
pub mod machine;
pub mod runner;
