//! Command line: parses and dispatches; each audience's commands live in [`cli`]. `anyhow` lives
//! only in the binary; library modules have their own error types.

mod cli;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

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
    /// Admin client for a running server's campaigns (token from TELEMARKETER_API_TOKEN).
    Campaign {
        #[command(subcommand)]
        action: cli::admin::CampaignCmd,
        #[command(flatten)]
        server: cli::admin::ServerArg,
    },
    /// Manage the do-not-call list of a running server.
    Dnc {
        #[command(subcommand)]
        action: cli::admin::DncCmd,
        #[command(flatten)]
        server: cli::admin::ServerArg,
    },
    /// Console accounts, in this appliance's own store: `operator add NAME` (the password from
    /// TELEMARKETER_OPERATOR_PASSWORD or one line of standard input), `operator list`.
    Operator {
        #[command(subcommand)]
        action: cli::admin::OperatorCmd,
    },
    /// Fetch one call's record: status history, transcript with per-stage latency, outcome.
    Call {
        sid: String,
        #[command(flatten)]
        server: cli::admin::ServerArg,
    },
    /// Rehearse a call: a simulated Twilio caller speaks the given lines to the server (an
    /// in-process one by default), then prints the transcript with per-turn latency and writes
    /// the call as a stereo WAV (caller left, agent right).
    #[cfg(feature = "testbed")]
    Simulate(cli::dev::SimulateArgs),
    /// Try a telemarketing script in the terminal: type caller lines, see node, intent, captured
    /// variables and the agent's reply per turn (LLM only; `/silence`, `/key 9`, `/quit`).
    Chat(cli::chat::ChatArgs),
    /// Run N simulated calls at once against an in-process server; report latency percentiles,
    /// late frames (pacing jitter), CPU and memory per call.
    #[cfg(feature = "testbed")]
    Loadtest(cli::dev::LoadtestArgs),
    /// Run a whole campaign offline: the dialer, the store (SQLite), the conversation engine and
    /// a local Twilio emulator whose callers follow a scenario. Prints every lead's fate, the
    /// audit trail and each conversation. Defaults: the shipped solar campaign, its six leads
    /// and its rehearsal scenario.
    #[cfg(feature = "testbed")]
    Rehearse(cli::rehearse::RehearseArgs),
    /// A local Twilio for rehearsing campaigns offline: REST `Calls.json`, signed status and AMD
    /// callbacks, TwiML fetch, Media Streams with synthetic callers (point `twilio.base_url` at
    /// it). Account and token from TWILIO_ACCOUNT_SID / TWILIO_AUTH_TOKEN.
    #[cfg(feature = "testbed")]
    Emulator(cli::rehearse::EmulatorArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // Commands that print a report keep the log to warnings unless RUST_LOG asks for more.
    let default_filter = match cli.command {
        #[cfg(feature = "testbed")]
        Command::Rehearse(_) => "warn,llama_cpp_2=error",
        Command::Chat(_) => "warn,llama_cpp_2=error",
        _ => "info,llama_cpp_2=warn,whisper_rs=warn,ort=warn",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| default_filter.into()),
        )
        .init();
    let runtime = tokio::runtime::Runtime::new()?;
    let config = cli.config.as_deref();
    match cli.command {
        Command::Serve => runtime.block_on(cli::serve::run(config)),
        // Admin commands are HTTP clients: they never read the server's config.
        Command::Campaign { action, server } => {
            runtime.block_on(cli::admin::campaign(&server, action))
        }
        Command::Dnc { action, server } => runtime.block_on(cli::admin::dnc(&server, action)),
        Command::Operator { action } => runtime.block_on(cli::admin::operator(config, action)),
        Command::Call { sid, server } => runtime.block_on(cli::admin::call(&server, &sid)),
        #[cfg(feature = "testbed")]
        Command::Simulate(args) => runtime.block_on(cli::dev::simulate(config, args)),
        Command::Chat(args) => runtime.block_on(cli::chat::chat(config, args)),
        #[cfg(feature = "testbed")]
        Command::Loadtest(args) => runtime.block_on(cli::dev::loadtest(config, args)),
        #[cfg(feature = "testbed")]
        Command::Rehearse(args) => runtime.block_on(cli::rehearse::rehearse(config, args)),
        #[cfg(feature = "testbed")]
        Command::Emulator(args) => runtime.block_on(cli::rehearse::emulator(config, args)),
    }
}
