//! The telemarketing script as data, and the pure state machine that runs it.
//!
//! The model may be small and may babble, so the script, not the model, decides what may be
//! said and when the call ends: rules and typed parsers read the caller's words first, the LLM
//! only picks among the node's labels (grammar-constrained, `unclear` being an honest answer)
//! and phrases replies where a node allows it (an open node: every turn).
//!
//! - [`format`]: the TOML file format (raw), validated into a [`format::Script`] with every error
//!   reported as file, key path and reason.
//! - [`graph`]: nodes in reading order, the SVG drawing and the funnel of the console (pure).
//! - [`machine`]: `step(state, event) -> actions`, no I/O: golden-tested paths.
//! - [`classify`]: caller words -> intent + variables (rules, then grammar-constrained LLM).
//! - [`context`]: the call's history for generated lines, within a token budget.
//! - [`clauses`]: splits (streamed) text into speakable clauses (pure).
//! - [`slots`]: typed answers: times in the lead's zone inside the calling window, numbers,
//!   yes/no (pure).
//! - [`runner`]: drives a script with an LLM for one conversation: the clock, classification,
//!   the machine, prompts of generated lines, undo (the call's agent, `chat`, scenario tests).

/// The example campaign shipped with the binary (booking a solar consultation).
pub const EXAMPLE_SCRIPT: &str = include_str!("../../scripts/campaigns/solar.toml");

pub mod classify;
pub mod clauses;
pub mod context;
pub mod format;
pub mod graph;
pub mod machine;
pub mod runner;
pub mod slots;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// Scripts of the campaigns this appliance dials, by campaign id: a call placed for a campaign
/// follows that campaign's script instead of the configured default.
#[derive(Clone, Default)]
pub struct ScriptBook {
    inner: Arc<RwLock<HashMap<String, Arc<format::Script>>>>,
    /// Told of each script as it is added (the app warms the voice with its fixed lines).
    on_insert: Option<Arc<OnInsert>>,
}

type OnInsert = dyn Fn(&Arc<format::Script>) + Send + Sync;

impl ScriptBook {
    pub fn with_hook(hook: impl Fn(&Arc<format::Script>) + Send + Sync + 'static) -> Self {
        Self {
            inner: Arc::default(),
            on_insert: Some(Arc::new(hook)),
        }
    }

    pub fn insert(&self, campaign_id: &str, script: Arc<format::Script>) {
        if let Some(hook) = &self.on_insert {
            hook(&script);
        }
        self.inner
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(campaign_id.to_string(), script);
    }

    pub fn get(&self, campaign_id: &str) -> Option<Arc<format::Script>> {
        self.inner
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(campaign_id)
            .cloned()
    }
}
