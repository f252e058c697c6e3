//! Command line: `serve` (the appliance), `simulate` (rehearse a call offline). `anyhow` lives
//! only here; library modules have their own error types.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use telemarketer::app::{self, Engines};
use telemarketer::config::Config;
use telemarketer::engine::{SpeechToText, TextToSpeech};
use telemarketer::sim::{self, CallerStep, SimCall};

#[derive(Parser)]
#[command(name = "telemarketer", version = telemarketer::build_info::VERSION,
    long_version = telemarketer::build_info::LONG_VERSION,
    about = "On-prem AI telemarketing: Twilio Media Streams <-> local Whisper, llama.cpp and Piper")]
struct Cli {
    /// TOML config file (defaults are embedded; secrets come from the environment only).
    #[arg(long, short, global = true, env = "TELEMARKETER_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Load the models and serve Twilio webhooks, the media WebSocket and the API.
    Serve,
    /// Rehearse a call offline: a simulated Twilio caller speaks lines (voiced by the TTS model)
    /// to an in-process server and prints the transcript with per-stage latency.
    Simulate {
        /// A caller line; repeat for several turns.
        #[arg(long = "say")]
        lines: Vec<String>,
    },
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,llama_cpp_2=warn,whisper_rs=warn".into()),
        )
        .init();
    let cli = Cli::parse();
    let config = Config::load(cli.config.as_deref()).context("invalid configuration")?;
    let engines = Engines::load(&config).context("cannot load the models")?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        match cli.command {
            Command::Serve => serve(config, engines).await,
            Command::Simulate { lines } => simulate(config, engines, lines).await,
        }
    })
}

async fn serve(config: Config, engines: Engines) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    tracing::info!(addr = %listener.local_addr()?, version = telemarketer::build_info::LONG_VERSION, "serving");
    if config.secrets.twilio_auth_token.is_none() && !config.allow_unsigned_webhooks {
        tracing::warn!("TWILIO_AUTH_TOKEN is not set: Twilio webhooks will be refused");
    }
    let state = app::state(config, &engines);
    app::serve(listener, state, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}

async fn simulate(config: Config, engines: Engines, mut lines: Vec<String>) -> anyhow::Result<()> {
    if lines.is_empty() {
        lines = vec![
            "Hi. Yes, I have a minute. What is this about?".into(),
            "My electricity bill is about two hundred dollars a month.".into(),
        ];
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let state = app::state(config, &engines);
    let registry = state.registry.clone();
    tokio::spawn(app::serve(listener, state, std::future::pending()));

    // The caller's voice: the TTS model, resampled to the phone's 8 kHz.
    let mut steps = vec![CallerStep::WaitForAgent { quiet: Duration::from_millis(700), max: Duration::from_secs(30) }];
    for line in &lines {
        let audio = engines.tts.synthesize(line.clone(), Default::default()).await?;
        let pcm = telemarketer::audio::resample::resample_all(&audio.samples, audio.sample_rate, 8000)?;
        steps.push(CallerStep::Say(telemarketer::audio::f32_to_i16(&pcm)));
        steps.push(CallerStep::WaitForAgent { quiet: Duration::from_millis(700), max: Duration::from_secs(30) });
    }
    let call = SimCall::random();
    let report = sim::run_call(&format!("ws://{addr}/twilio/media"), &call, steps).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;

    println!("== transcript ({}) ==", call.call_sid);
    if let Some(record) = registry.get(&call.call_sid) {
        for turn in &record.turns {
            println!("[{:>6} ms] {:?}: {}", turn.at_ms, turn.speaker, turn.text);
            if let Some(l) = &turn.latency {
                println!("             latency: {}", serde_json::to_string(l)?);
            }
        }
    }
    println!("== what the caller heard (whisper on the 8 kHz line audio) ==");
    for heard in &report.heard {
        let pcm = telemarketer::audio::i16_to_f32(&heard.samples);
        let wide = telemarketer::audio::resample::resample_all(&pcm, 8000, 16000)?;
        let text = engines.stt.transcribe(wide).await?.text;
        println!("[{:>6} ms] {text}", heard.start_ms);
    }
    println!(
        "caller speech end -> agent audio heard (ms): {:?}; frames {}, underruns {}",
        report.response_latencies_ms(),
        report.frames_received,
        report.underruns
    );
    Ok(())
}
