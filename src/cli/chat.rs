//! `chat`: a telemarketing script in the terminal, against the real LLM: type caller lines, see
//! node, intent, captured variables and the agent's lines per turn.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;

#[derive(clap::Args)]
pub struct ChatArgs {
    /// Script file (default: the shipped example, scripts/campaigns/solar.toml).
    #[arg(long)]
    script: Option<PathBuf>,
}

pub async fn chat(config_path: Option<&Path>, args: ChatArgs) -> anyhow::Result<()> {
    let config = super::config(config_path)?;
    let path = args.script;
    use std::io::BufRead;
    use telemarketer::script::format::Script;
    use telemarketer::script::machine::Event;
    use telemarketer::script::runner::{describe, ScriptRunner};
    let script = match &path {
        Some(p) => Script::from_file(p)?,
        None => Script::from_toml(
            "scripts/campaigns/solar.toml",
            telemarketer::script::EXAMPLE_SCRIPT,
        )?,
    };
    let llm = telemarketer::engine::llama::LlamaEngine::load(&config.llm)
        .context("cannot load the LLM")?;
    let mut runner = ScriptRunner::new(Arc::new(script), Arc::new(llm), "chat");
    print!("{}", describe(&runner.event(Event::Started).await));
    let stdin = std::io::stdin();
    for line in stdin.lock().lines() {
        let line = line?;
        let report = match line.trim() {
            "/quit" => break,
            "/silence" => runner.event(Event::Silence).await,
            key if key.starts_with("/key ") => match key[5..].trim().chars().next() {
                Some(d) => runner.event(Event::Dtmf(d)).await,
                None => continue,
            },
            text => runner.caller(text).await,
        };
        print!("{}", describe(&report));
        if let Some(outcome) = runner.outcome() {
            println!(
                "== call ended: {outcome}; variables {:?}",
                runner.state.vars
            );
            break;
        }
    }
    Ok(())
}
