//! `chat`: a telemarketing script in the terminal, against the real LLM: type caller lines, see
//! node, intent (by rule or by the model), captured variables and the agent's lines per turn.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;

#[derive(clap::Args)]
pub struct ChatArgs {
    /// Script file (default: the shipped example, scripts/campaigns/solar.toml).
    #[arg(long, conflicts_with = "open")]
    script: Option<PathBuf>,
    /// The open conversation the `[conversation]` settings make (calls without a script).
    #[arg(long)]
    open: bool,
}

pub async fn chat(config_path: Option<&Path>, args: ChatArgs) -> anyhow::Result<()> {
    use std::io::BufRead;
    use telemarketer::script::format::Script;
    use telemarketer::script::machine::Event;
    use telemarketer::script::runner::{describe, CallContext, ScriptRunner};
    let config = super::config(config_path)?;
    let script = match (&args.script, args.open) {
        (_, true) => {
            let mut raw = super::raw_config(config_path)?;
            raw.conversation.script = None;
            raw.validate(telemarketer::config::Secrets::from_env())?
                .conversation
                .script
        }
        (Some(p), _) => Arc::new(Script::from_file(p)?),
        (None, _) => Arc::new(Script::from_toml(
            "scripts/campaigns/solar.toml",
            telemarketer::script::EXAMPLE_SCRIPT,
        )?),
    };
    for w in &script.warnings {
        println!("warning: {}: {}", w.key, w.reason);
    }
    let llm = telemarketer::engine::llama::LlamaEngine::load(&config.llm)
        .context("cannot load the LLM")?;
    let ctx = CallContext::default();
    let mut runner = ScriptRunner::new(script, Arc::new(llm), "chat", ctx);
    let plan = runner.event(Event::Started).await;
    print!("{}", describe(&runner.realize(plan).await));
    let stdin = std::io::stdin();
    for line in stdin.lock().lines() {
        let line = line?;
        let plan = match line.trim() {
            "/quit" => break,
            "" => continue,
            "/silence" => runner.event(Event::Silence).await,
            key if key.starts_with("/key ") => match key[5..].trim().chars().next() {
                Some(d) => runner.event(Event::Dtmf(d)).await,
                None => continue,
            },
            text => {
                println!("caller: {text}");
                runner.caller(text).await
            }
        };
        print!("{}", describe(&runner.realize(plan).await));
        if let Some(outcome) = runner.outcome() {
            let script = runner.script();
            let vars: Vec<String> = runner
                .vars()
                .iter()
                .map(|(k, v)| format!("{k} = {v} ({})", script.speak(k, v, runner.state().tz)))
                .collect();
            println!("== call ended: {outcome}; variables: {}", vars.join(", "));
            break;
        }
    }
    Ok(())
}
