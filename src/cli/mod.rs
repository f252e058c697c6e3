//! The binary's commands, one module per audience:
//! - [`serve`]: the appliance itself;
//! - [`admin`]: campaign, do-not-call and call-record commands against a running server (a typed
//!   HTTP client; they never read the server's config);
//! - [`chat`]: a script in the terminal;
//! - [`dev`]: `simulate` and `loadtest` on the test bed, for script writers and engineers;
//! - [`rehearse`]: a whole campaign offline against the Twilio emulator, and the emulator alone.

pub mod admin;
pub mod chat;
#[cfg(feature = "testbed")]
pub mod dev;
#[cfg(feature = "testbed")]
pub mod rehearse;
pub mod serve;

use std::path::Path;

use anyhow::Context;
use telemarketer::config::{Config, RawConfig, Secrets};

/// The config file as written (embedded defaults when there is none), before validation:
/// commands that need a variation (`rehearse`, `simulate`) change it here, never afterwards.
pub fn raw_config(path: Option<&Path>) -> anyhow::Result<RawConfig> {
    Ok(match path {
        Some(p) => RawConfig::from_file(p).context("invalid configuration")?,
        None => RawConfig::default(),
    })
}

/// The validated config with secrets from the environment.
pub fn config(path: Option<&Path>) -> anyhow::Result<Config> {
    raw_config(path)?
        .validate(Secrets::from_env())
        .context("invalid configuration")
}
