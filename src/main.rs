//! Command line: `serve` (the appliance), `simulate` (rehearse a call offline). `anyhow` lives
//! only here; library modules have their own error types.

use std::path::PathBuf;
use std::sync::Arc;
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
    /// Rehearse a call: a simulated Twilio caller speaks the given lines to the server (an
    /// in-process one by default), then prints the transcript with per-turn latency and writes
    /// the call as a stereo WAV (caller left, agent right).
    Simulate {
        /// Caller lines in order: a path to a WAV file, or text spoken by the project's TTS.
        lines: Vec<String>,
        /// Media WebSocket of a running server (e.g. ws://127.0.0.1:8080/twilio/media) instead of
        /// an in-process one. Its transcript is read from the API if TELEMARKETER_API_TOKEN is set.
        #[arg(long)]
        url: Option<String>,
        /// Where to write the stereo recording.
        #[arg(long, default_value = "simulated-call.wav")]
        record: PathBuf,
        /// Talk over the agent: from the second line on, the caller speaks this many ms after the
        /// agent starts answering instead of waiting for it to finish (barge-in rehearsal).
        #[arg(long)]
        barge_in_after_ms: Option<u64>,
    },
    /// Try a telemarketing script in the terminal: type caller lines, see node, intent, captured
    /// variables and the agent's reply per turn (LLM only; `/silence`, `/key 9`, `/quit`).
    Chat {
        /// Script file (default: the shipped example, scripts/campaigns/solar.toml).
        #[arg(long)]
        script: Option<PathBuf>,
    },
    /// Admin client for a running server's campaigns (token from TELEMARKETER_API_TOKEN).
    Campaign {
        #[command(subcommand)]
        action: CampaignCmd,
        #[command(flatten)]
        server: ServerArg,
    },
    /// Manage the do-not-call list of a running server.
    Dnc {
        #[command(subcommand)]
        action: DncCmd,
        #[command(flatten)]
        server: ServerArg,
    },
    /// Fetch one call's record: status history, transcript with per-stage latency, outcome.
    Call {
        sid: String,
        #[command(flatten)]
        server: ServerArg,
    },
    /// Run a whole campaign offline: the dialer, the store (SQLite), the conversation engine and
    /// a local Twilio emulator whose callers follow a scenario. Prints every lead's fate, the
    /// audit trail and each conversation. Defaults: the shipped solar campaign, its six leads
    /// and its rehearsal scenario.
    Rehearse {
        /// Leads (CSV); default scripts/campaigns/solar-leads.csv.
        #[arg(long)]
        leads: Option<PathBuf>,
        /// Who answers which number; default scripts/campaigns/solar-rehearsal.toml.
        #[arg(long)]
        scenario: Option<PathBuf>,
        /// Campaign script; default the shipped example.
        #[arg(long)]
        script: Option<PathBuf>,
        /// Database to write the campaign into.
        #[arg(long, default_value = "sqlite://rehearsal.db")]
        store: String,
        /// Use the real clock for calling hours (default: pretend it is 10:00 in Los Angeles,
        /// so the rehearsal shows calls at any hour).
        #[arg(long)]
        real_clock: bool,
    },
    /// A local Twilio for rehearsing campaigns offline: REST `Calls.json`, signed status and AMD
    /// callbacks, TwiML fetch, Media Streams with synthetic callers (point `twilio.base_url` at
    /// it). Account and token from TWILIO_ACCOUNT_SID / TWILIO_AUTH_TOKEN.
    Emulator {
        #[arg(long, default_value = "127.0.0.1:3999")]
        listen: std::net::SocketAddr,
        /// Who answers which number (TOML, see src/emulator/scenario.rs); default: everyone
        /// answers, listens and hangs up.
        #[arg(long)]
        scenario: Option<PathBuf>,
    },
    /// Run N simulated calls at once against an in-process server; report latency percentiles,
    /// late frames (pacing jitter), CPU and memory per call.
    Loadtest {
        /// Concurrent calls.
        #[arg(long, default_value_t = 2)]
        calls: usize,
        /// Caller turns per call.
        #[arg(long, default_value_t = 2)]
        turns: usize,
    },
}

/// Where the admin commands find the running server.
#[derive(clap::Args)]
struct ServerArg {
    /// The server's base URL (also after the action: `campaign show ID --server URL`).
    #[arg(
        long = "server",
        global = true,
        env = "TELEMARKETER_SERVER",
        default_value = "http://127.0.0.1:8080"
    )]
    url: String,
}

#[derive(Subcommand)]
enum CampaignCmd {
    /// Create a campaign from a script (default: the shipped example) and settings (JSON).
    Create {
        id: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        script: Option<PathBuf>,
        /// JSON file with settings (from_number, max_concurrent, calls_per_second, ...).
        #[arg(long)]
        settings: Option<PathBuf>,
    },
    /// Import leads from a CSV (or .json) file; bad rows are listed with their reason.
    Import {
        id: String,
        file: PathBuf,
    },
    Start {
        id: String,
    },
    Pause {
        id: String,
    },
    Resume {
        id: String,
    },
    Stop {
        id: String,
    },
    /// Campaign state and lead counts.
    Show {
        id: String,
    },
    List,
    /// Calls with status, answered_by and outcome.
    Calls {
        id: String,
    },
    Leads {
        id: String,
    },
    /// Every dial decision and why (do-not-call, consent, calling hours, retries).
    Audit {
        id: String,
    },
    /// Results as CSV, one row per lead.
    Export {
        id: String,
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum DncCmd {
    /// List a number: it is never dialed again by any campaign.
    Add {
        phone: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Take a number off the list (an operator's correction).
    Remove { phone: String },
    /// Every listed number with reason, source and time.
    List,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // Commands that print a report keep the log to warnings unless RUST_LOG asks for more.
    let default_filter = match cli.command {
        Command::Rehearse { .. } | Command::Chat { .. } => "warn,llama_cpp_2=error",
        _ => "info,llama_cpp_2=warn,whisper_rs=warn,ort=warn",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| default_filter.into()),
        )
        .init();
    let config = Config::load(cli.config.as_deref()).context("invalid configuration")?;
    let runtime = tokio::runtime::Runtime::new()?;
    match cli.command {
        Command::Serve => {
            let engines = Engines::load(&config).context("cannot load the models")?;
            runtime.block_on(serve(config, engines))
        }
        Command::Simulate {
            lines,
            url,
            record,
            barge_in_after_ms,
        } => runtime.block_on(simulate(config, lines, url, record, barge_in_after_ms)),
        Command::Loadtest { calls, turns } => runtime.block_on(loadtest(config, calls, turns)),
        Command::Chat { script } => runtime.block_on(chat(config, script)),
        Command::Campaign { action, server } => runtime.block_on(campaign_cmd(&server.url, action)),
        Command::Rehearse {
            leads,
            scenario,
            script,
            store,
            real_clock,
        } => runtime.block_on(rehearse(config, leads, scenario, script, store, real_clock)),
        Command::Emulator { listen, scenario } => {
            runtime.block_on(emulator(config, listen, scenario))
        }
        Command::Dnc { action, server } => runtime.block_on(dnc_cmd(&server.url, action)),
        Command::Call { sid, server } => runtime.block_on(async move {
            let v = admin_api(
                &server.url,
                reqwest::Method::GET,
                &format!("/v1/calls/{sid}/record"),
                None,
            )
            .await?;
            println!("{}", serde_json::to_string_pretty(&v)?);
            Ok(())
        }),
    }
}

async fn serve(config: Config, engines: Engines) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    tracing::info!(addr = %listener.local_addr()?, version = telemarketer::build_info::LONG_VERSION, "serving");
    if config.secrets.twilio_auth_token.is_none() && !config.allow_unsigned_webhooks {
        tracing::warn!("TWILIO_AUTH_TOKEN is not set: Twilio webhooks will be refused");
    }
    let state = app::appliance(config, &engines)
        .await
        .context("cannot start the appliance")?;
    app::serve(listener, state, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}

/// A caller line: a WAV file's audio, or text spoken by the project's TTS; 8 kHz PCM out.
async fn caller_audio(line: &str, tts: &dyn TextToSpeech) -> anyhow::Result<Vec<i16>> {
    let (samples, rate) = if line.to_ascii_lowercase().ends_with(".wav") {
        let mut reader =
            hound::WavReader::open(line).with_context(|| format!("cannot read {line}"))?;
        let spec = reader.spec();
        let raw: Vec<f32> = match spec.sample_format {
            hound::SampleFormat::Int => reader
                .samples::<i32>()
                .map(|s| s.map(|v| v as f32 / (1u64 << (spec.bits_per_sample - 1)) as f32))
                .collect::<Result<_, _>>()?,
            hound::SampleFormat::Float => reader.samples::<f32>().collect::<Result<_, _>>()?,
        };
        // Down-mix to mono: the phone line is mono.
        let ch = spec.channels.max(1) as usize;
        let mono = raw
            .chunks(ch)
            .map(|f| f.iter().sum::<f32>() / ch as f32)
            .collect();
        (mono, spec.sample_rate)
    } else {
        let audio = tts.synthesize(line.to_string(), Default::default()).await?;
        (audio.samples, audio.sample_rate)
    };
    Ok(telemarketer::audio::to_phone_pcm(&samples, rate)?)
}

async fn simulate(
    config: Config,
    mut lines: Vec<String>,
    url: Option<String>,
    record: PathBuf,
    barge_in_after_ms: Option<u64>,
) -> anyhow::Result<()> {
    // Rehearsals run the shipped example campaign unless the config names a script.
    let mut config = config;
    if config.conversation.script.is_none() {
        config.conversation.script =
            Some(Arc::new(telemarketer::script::format::Script::from_toml(
                "scripts/campaigns/solar.toml",
                telemarketer::script::EXAMPLE_SCRIPT,
            )?));
    }
    if lines.is_empty() {
        lines = [
            "Yes, go ahead.",
            "About two hundred dollars a month.",
            "Yes, we own the house.",
            "Sure, book it.",
            "Tomorrow at ten works.",
        ]
        .map(String::from)
        .to_vec();
    }
    // In-process server (all engines), or only the caller's voice and ears for a remote one.
    let (url, registry, tts, stt): (String, _, Arc<dyn TextToSpeech>, Arc<dyn SpeechToText>) =
        match url {
            Some(url) => {
                let tts = telemarketer::engine::piper::PiperEngine::load(&config.tts)?;
                let stt = telemarketer::engine::whisper::WhisperEngine::load(&config.stt)?;
                (url, None, Arc::new(tts), Arc::new(stt))
            }
            None => {
                let engines = Engines::load(&config).context("cannot load the models")?;
                let (addr, registry) = app::spawn_local(config.clone(), &engines).await?;
                (
                    format!("ws://{addr}/twilio/media"),
                    Some(registry),
                    Arc::new(engines.tts.clone()),
                    Arc::new(engines.stt.clone()),
                )
            }
        };

    let wait = CallerStep::WaitForAgent {
        quiet: Duration::from_millis(800),
        max: Duration::from_secs(30),
    };
    let mut steps = vec![wait.clone()];
    for (i, line) in lines.iter().enumerate() {
        steps.push(CallerStep::Say(caller_audio(line, tts.as_ref()).await?));
        let interrupt_next = i + 1 < lines.len() && barge_in_after_ms.is_some();
        steps.push(match barge_in_after_ms.filter(|_| interrupt_next) {
            // Wait until the agent has been talking this long, then speak over it.
            Some(ms) => CallerStep::WaitForAgent {
                quiet: Duration::from_secs(3600),
                max: Duration::from_millis(ms + 2500),
            },
            None => wait.clone(),
        });
    }
    let call = SimCall::random();
    println!("calling {url} as {} ...", call.call_sid);
    let report = sim::run_call(&url, &call, steps).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    report.write_stereo_wav(&record)?;

    println!("\n== transcript ({}) ==", call.call_sid);
    let record_json = match &registry {
        Some(r) => r
            .get(&call.call_sid)
            .map(serde_json::to_value)
            .transpose()?,
        None => fetch_remote_record(&url, &call.call_sid, &config).await,
    };
    match &record_json {
        Some(rec) => {
            print_turns(rec);
            println!(
                "outcome: {} variables: {}",
                rec["outcome"], rec["variables"]
            );
            print_latency_summary(rec);
        }
        None => println!("(no transcript: set TELEMARKETER_API_TOKEN to read it from the server)"),
    }
    println!("\n== what the caller heard (whisper on the 8 kHz line) ==");
    for heard in &report.heard {
        let pcm = telemarketer::audio::i16_to_f32(&heard.samples);
        let wide = telemarketer::audio::resample::resample_all(&pcm, 8000, 16000)?;
        let text = stt.transcribe(wide).await?.text;
        println!("[{:>6} ms] {text}", heard.start_ms);
    }
    println!(
        "\nend of caller speech -> agent audio heard on the line (ms): {:?}\nagent frames {}, late frames {}, short gaps {}, recording {}",
        report.response_latencies_ms(),
        report.frames_received,
        report.late_frames,
        report.underruns,
        record.display()
    );
    Ok(())
}

fn print_turns(record: &serde_json::Value) {
    let Some(turns) = record["turns"].as_array() else {
        return;
    };
    for t in turns {
        println!(
            "[{:>6} ms] {:<6} {}",
            t["at_ms"],
            t["speaker"].as_str().unwrap_or("?"),
            t["text"].as_str().unwrap_or("")
        );
        if let Some(l) = t.get("latency") {
            let f = |k: &str| {
                l[k].as_f64()
                    .map(|v| format!("{v:.0}"))
                    .unwrap_or_else(|| "-".into())
            };
            println!(
                "           endpointing {} | stt {} | llm first token {} | first clause {} | tts first audio {} | first frame {} | voice-to-voice {} ms",
                f("endpointing_ms"), f("stt_ms"), f("llm_first_token_ms"), f("llm_first_clause_ms"),
                f("tts_first_audio_ms"), f("first_frame_ms"), f("voice_to_voice_ms")
            );
        }
    }
}

async fn chat(config: Config, path: Option<PathBuf>) -> anyhow::Result<()> {
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

/// CPU seconds used by this process so far (user + system), from /proc.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

/// Resident memory in MiB, from /proc.
fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

async fn loadtest(config: Config, calls: usize, turns: usize) -> anyhow::Result<()> {
    let engines = Engines::load(&config).context("cannot load the models")?;
    let (addr, registry) = app::spawn_local(config.clone(), &engines).await?;
    let lines = [
        "Sure, tell me more about the solar panels.",
        "My electricity bill is about two hundred dollars a month.",
        "How long does the installation take?",
    ];
    let mut audio = Vec::new();
    for line in lines.iter().cycle().take(turns.max(1)) {
        audio.push(caller_audio(line, &engines.tts).await?);
    }
    let (cpu0, rss0, started) = (cpu_seconds(), rss_mib(), std::time::Instant::now());
    let mut handles = Vec::new();
    for i in 0..calls.max(1) {
        let audio = audio.clone();
        let url = format!("ws://{addr}/twilio/media");
        handles.push(tokio::spawn(async move {
            // Stagger starts a little, as a dialer's pacing would.
            tokio::time::sleep(Duration::from_millis(150 * i as u64)).await;
            let wait = CallerStep::WaitForAgent {
                quiet: Duration::from_millis(800),
                max: Duration::from_secs(60),
            };
            let mut steps = vec![wait.clone()];
            for a in audio {
                steps.push(CallerStep::Say(a));
                steps.push(wait.clone());
            }
            let call = SimCall::random();
            let report = sim::run_call(&url, &call, steps).await;
            (call, report)
        }));
    }
    let mut v2v = Vec::new();
    let mut line = Vec::new();
    let (mut frames, mut underruns, mut late, mut odd) = (0u64, 0u64, 0u64, 0u64);
    for h in handles {
        let (call, report) = h.await?;
        let report = report?;
        frames += report.frames_received;
        underruns += report.underruns;
        late += report.late_frames;
        odd += report.odd_frames;
        line.extend(report.response_latencies_ms().into_iter().map(|v| v as f64));
        if let Some(r) = registry.get(&call.call_sid) {
            v2v.extend(
                r.turns
                    .iter()
                    .filter_map(|t| t.latency.as_ref()?.voice_to_voice_ms),
            );
        }
    }
    let wall = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    let p = |v: &Vec<f64>, q: f64| {
        let mut v = v.clone();
        v.sort_by(f64::total_cmp);
        if v.is_empty() {
            f64::NAN
        } else {
            percentile(&v, q)
        }
    };
    println!("calls {calls}, turns per call {turns}, wall {wall:.1} s");
    println!(
        "end of speech -> first frame (server): p50 {:.0} ms, p95 {:.0} ms (n={})",
        p(&v2v, 50.0),
        p(&v2v, 95.0),
        v2v.len()
    );
    println!(
        "end of speech -> audio heard (line):   p50 {:.0} ms, p95 {:.0} ms (n={})",
        p(&line, 50.0),
        p(&line, 95.0),
        line.len()
    );
    println!(
        "agent frames {frames}; late frames (buffer ran dry mid-clause: pacing) {late}; \
         short gaps between stretches (any cause) {underruns}; malformed {odd}"
    );
    println!(
        "cpu {:.1} s total = {:.2} cores over the run, {:.1} cpu-s per call; rss {:.0} MiB ({:+.0} MiB during the run)",
        cpu,
        cpu / wall,
        cpu / calls.max(1) as f64,
        rss_mib(),
        rss_mib() - rss0
    );
    Ok(())
}

/// Nearest-rank percentile of a sorted slice.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1]
}

/// p50/p95 of every stage over the call's turns, and of barge-in reaction times.
fn print_latency_summary(record: &serde_json::Value) {
    let turns = record["turns"].as_array().cloned().unwrap_or_default();
    let stages = [
        ("endpointing", "endpointing_ms"),
        ("stt", "stt_ms"),
        ("llm first token", "llm_first_token_ms"),
        ("llm first clause", "llm_first_clause_ms"),
        ("tts first audio", "tts_first_audio_ms"),
        ("first frame out", "first_frame_ms"),
        ("voice-to-voice", "voice_to_voice_ms"),
    ];
    println!(
        "\n== latency (ms) ==\n{:<18} {:>5} {:>8} {:>8}",
        "stage", "n", "p50", "p95"
    );
    let row = |name: &str, mut v: Vec<f64>| {
        if v.is_empty() {
            return;
        }
        v.sort_by(f64::total_cmp);
        println!(
            "{name:<18} {:>5} {:>8.0} {:>8.0}",
            v.len(),
            percentile(&v, 50.0),
            percentile(&v, 95.0)
        );
    };
    for (name, key) in stages {
        let v = turns
            .iter()
            .filter_map(|t| t["latency"][key].as_f64())
            .collect();
        row(name, v);
    }
    let barge = record["barge_in_reaction_ms"]
        .as_array()
        .map(|a| a.iter().filter_map(|v| v.as_f64()).collect())
        .unwrap_or_default();
    row("barge-in reaction", barge);
}

/// The remote server's record of the call, through the API.
async fn fetch_remote_record(
    media_url: &str,
    call_sid: &str,
    config: &Config,
) -> Option<serde_json::Value> {
    let token = config.secrets.api_token.as_deref()?;
    let base = media_url
        .replacen("wss://", "https://", 1)
        .replacen("ws://", "http://", 1)
        .replace("/twilio/media", "");
    reqwest::Client::new()
        .get(format!("{base}/v1/calls/{call_sid}"))
        .bearer_auth(token)
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()
}

/// One admin API request; the body is JSON unless a content type is given. Prints errors as
/// the server worded them.
async fn admin_api(
    server: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<(Vec<u8>, &str)>,
) -> anyhow::Result<serde_json::Value> {
    let token = std::env::var("TELEMARKETER_API_TOKEN")
        .context("set TELEMARKETER_API_TOKEN to the server's API token")?;
    let mut req = reqwest::Client::new()
        .request(method, format!("{}{path}", server.trim_end_matches('/')))
        .bearer_auth(token);
    if let Some((bytes, content_type)) = body {
        req = req.header("content-type", content_type).body(bytes);
    }
    let resp = req
        .send()
        .await
        .with_context(|| format!("cannot reach {server}"))?;
    let status = resp.status();
    let text = resp.text().await?;
    if !status.is_success() {
        anyhow::bail!("{status}: {text}");
    }
    if text.is_empty() {
        return Ok(serde_json::Value::Null);
    }
    Ok(serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)))
}

async fn campaign_cmd(server: &str, action: CampaignCmd) -> anyhow::Result<()> {
    use reqwest::Method;
    let get = |path: String| async move { admin_api(server, Method::GET, &path, None).await };
    let post = |path: String| async move { admin_api(server, Method::POST, &path, None).await };
    let value = match action {
        CampaignCmd::Create {
            id,
            name,
            script,
            settings,
        } => {
            let script = script
                .map(|p| {
                    std::fs::read_to_string(&p)
                        .with_context(|| format!("cannot read {}", p.display()))
                })
                .transpose()?;
            let settings: serde_json::Value = match settings {
                Some(p) => serde_json::from_str(
                    &std::fs::read_to_string(&p)
                        .with_context(|| format!("cannot read {}", p.display()))?,
                )
                .with_context(|| format!("{} is not JSON", p.display()))?,
                None => serde_json::json!({}),
            };
            let body =
                serde_json::json!({"id": id, "name": name, "script": script, "settings": settings});
            admin_api(
                server,
                Method::POST,
                "/v1/campaigns",
                Some((body.to_string().into_bytes(), "application/json")),
            )
            .await?
        }
        CampaignCmd::Import { id, file } => {
            let bytes =
                std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let kind = if file.extension().is_some_and(|e| e == "json") {
                "application/json"
            } else {
                "text/csv"
            };
            admin_api(
                server,
                Method::POST,
                &format!("/v1/campaigns/{id}/leads"),
                Some((bytes, kind)),
            )
            .await?
        }
        CampaignCmd::Start { id } => post(format!("/v1/campaigns/{id}/start")).await?,
        CampaignCmd::Pause { id } => post(format!("/v1/campaigns/{id}/pause")).await?,
        CampaignCmd::Resume { id } => post(format!("/v1/campaigns/{id}/resume")).await?,
        CampaignCmd::Stop { id } => post(format!("/v1/campaigns/{id}/stop")).await?,
        CampaignCmd::Show { id } => get(format!("/v1/campaigns/{id}")).await?,
        CampaignCmd::List => get("/v1/campaigns".into()).await?,
        CampaignCmd::Calls { id } => get(format!("/v1/campaigns/{id}/calls")).await?,
        CampaignCmd::Leads { id } => get(format!("/v1/campaigns/{id}/leads")).await?,
        CampaignCmd::Audit { id } => get(format!("/v1/campaigns/{id}/audit")).await?,
        CampaignCmd::Export { id, output } => {
            let csv = get(format!("/v1/campaigns/{id}/export.csv")).await?;
            let text = csv.as_str().unwrap_or_default().to_string();
            match output {
                Some(p) => std::fs::write(&p, text)
                    .with_context(|| format!("cannot write {}", p.display()))?,
                None => print!("{text}"),
            }
            return Ok(());
        }
    };
    println!("{}", serde_json::to_string_pretty(&value)?);
    Ok(())
}

async fn dnc_cmd(server: &str, action: DncCmd) -> anyhow::Result<()> {
    use reqwest::Method;
    let value = match action {
        DncCmd::Add { phone, reason } => {
            let body = serde_json::json!({"phone": phone, "reason": reason});
            admin_api(
                server,
                Method::POST,
                "/v1/dnc",
                Some((body.to_string().into_bytes(), "application/json")),
            )
            .await?
        }
        DncCmd::Remove { phone } => {
            let path: String = url::form_urlencoded::byte_serialize(phone.as_bytes()).collect();
            admin_api(server, Method::DELETE, &format!("/v1/dnc/{path}"), None).await?
        }
        DncCmd::List => admin_api(server, Method::GET, "/v1/dnc", None).await?,
    };
    println!("{}", serde_json::to_string_pretty(&value)?);
    Ok(())
}

async fn emulator(
    config: Config,
    listen: std::net::SocketAddr,
    scenario: Option<PathBuf>,
) -> anyhow::Result<()> {
    use telemarketer::emulator::{scenario::Scenario, EmulatorConfig, RunningEmulator};
    let scenario = match scenario {
        Some(p) => {
            let text = std::fs::read_to_string(&p)
                .with_context(|| format!("cannot read {}", p.display()))?;
            Scenario::from_toml(&p.display().to_string(), &text)?
        }
        None => Scenario::quiet(),
    };
    let account = std::env::var("TWILIO_ACCOUNT_SID").context("set TWILIO_ACCOUNT_SID")?;
    let token = std::env::var("TWILIO_AUTH_TOKEN").context("set TWILIO_AUTH_TOKEN")?;
    let mut em = EmulatorConfig::from_scenario(account, token, &scenario);
    if scenario.needs_voice() {
        let tts = telemarketer::engine::piper::PiperEngine::load(&config.tts)
            .context("the scenario's callers speak: cannot load the TTS model")?;
        em.tts = Some(Arc::new(tts));
    }
    let running = RunningEmulator::start(em, listen).await?;
    println!("Twilio emulator at {}", running.base_url());
    tracing::info!(url = %running.base_url(), "emulator listening; Ctrl-C stops it");
    tokio::signal::ctrl_c().await?;
    running.shutdown();
    Ok(())
}

const EXAMPLE_LEADS: &str = include_str!("../scripts/campaigns/solar-leads.csv");
const EXAMPLE_SCENARIO: &str = include_str!("../scripts/campaigns/solar-rehearsal.toml");

async fn rehearse(
    mut config: Config,
    leads: Option<PathBuf>,
    scenario: Option<PathBuf>,
    script: Option<PathBuf>,
    store_url: String,
    real_clock: bool,
) -> anyhow::Result<()> {
    use telemarketer::emulator::{scenario::Scenario, EmulatorConfig, RunningEmulator};
    use telemarketer::store::CampaignSettings;
    let read = |p: &PathBuf| {
        std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))
    };
    let leads_csv = leads
        .as_ref()
        .map(read)
        .transpose()?
        .unwrap_or_else(|| EXAMPLE_LEADS.into());
    let scenario = match &scenario {
        Some(p) => Scenario::from_toml(&p.display().to_string(), &read(p)?)?,
        None => Scenario::from_toml("solar-rehearsal.toml", EXAMPLE_SCENARIO)?,
    };
    let script_toml = script
        .as_ref()
        .map(read)
        .transpose()?
        .unwrap_or_else(|| telemarketer::script::EXAMPLE_SCRIPT.to_string());

    // A private Twilio: its own account and token, nothing real is reachable or used.
    let hex = || uuid::Uuid::new_v4().simple().to_string();
    let account = format!("AC{}", hex());
    let token = hex();
    let engines = Engines::load(&config).context("cannot load the models")?;
    let mut em = EmulatorConfig::from_scenario(account.clone(), token.clone(), &scenario);
    em.tts = Some(Arc::new(engines.tts.clone()));
    let emulator = RunningEmulator::start(em, "127.0.0.1:0".parse()?).await?;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    config.public_url = Some(format!("http://{addr}"));
    config.twilio.base_url = emulator.base_url();
    config.store_url = store_url.clone();
    config.secrets.twilio_account_sid = Some(account);
    config.secrets.twilio_auth_token = Some(token);
    config.secrets.twilio_api_key = None;
    config.allow_unsigned_webhooks = false;

    let offset = if real_clock {
        chrono::Duration::zero()
    } else {
        use chrono::TimeZone;
        let la = chrono_tz::America::Los_Angeles;
        let now = chrono::Utc::now();
        let ten = now
            .with_timezone(&la)
            .date_naive()
            .and_hms_opt(10, 0, 0)
            .context("clock")?;
        la.from_local_datetime(&ten)
            .earliest()
            .context("clock")?
            .with_timezone(&chrono::Utc)
            - now
    };
    let state = app::appliance_with(config, &engines, offset).await?;
    let store = state.store.clone().context("no store")?;
    let dialer = state.dialer.clone().context("no dialer")?;
    tokio::spawn(app::serve(listener, state, std::future::pending()));

    let id = format!("rehearsal-{}", chrono::Utc::now().format("%Y%m%d-%H%M%S"));
    let settings = CampaignSettings {
        from_number: "+15005550006".into(),
        max_concurrent: 2,
        retry_delays_s: vec![5],
        max_attempts: 2,
        ..Default::default()
    };
    store
        .create_campaign(&id, "Rehearsal", &script_toml, &settings)
        .await?;
    let parsed = telemarketer::leads::parse_csv(leads_csv.as_bytes())?;
    for e in &parsed.errors {
        println!("leads row {}: {}", e.row, e.reason);
    }
    let inserted = store.insert_leads(&id, &parsed.leads).await?;
    println!(
        "campaign {id}: {} leads imported ({} rows refused); dialing through the emulator at {}",
        inserted.inserted,
        parsed.errors.len(),
        emulator.base_url()
    );
    dialer.start(&id).await?;
    let started = std::time::Instant::now();
    while !dialer.is_settled(&id, Duration::from_secs(3600)).await? {
        tokio::time::sleep(Duration::from_secs(1)).await;
        if started.elapsed() > Duration::from_secs(1800) {
            anyhow::bail!("the rehearsal did not finish in 30 minutes");
        }
    }
    emulator.wait_idle(Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    println!("\n== leads ({:.0} s)", started.elapsed().as_secs_f64());
    for lead in store.leads(&id).await? {
        println!(
            "{:<14} {:<12} {:<8} {:<14} attempts {}",
            lead.phone,
            lead.name.as_deref().unwrap_or(""),
            lead.state.as_str(),
            lead.outcome.as_deref().unwrap_or("-"),
            lead.attempts
        );
    }
    println!("\n== audit log");
    for e in store.audit_log(&id).await? {
        println!(
            "{:<15} {:<20} {}",
            e.phone.as_deref().unwrap_or(""),
            e.decision,
            e.reason
        );
    }
    for call in store.calls(&id).await? {
        let detail = store.call_detail(&call.sid).await?;
        if detail.turns.is_empty() {
            continue;
        }
        println!(
            "\n== call {} to {} ({}, answered by {}, outcome {})",
            call.sid,
            call.to.as_deref().unwrap_or(""),
            call.status,
            call.answered_by.as_deref().unwrap_or("-"),
            call.outcome.as_deref().unwrap_or("-")
        );
        for t in &detail.turns {
            let latency = t
                .latency
                .as_ref()
                .and_then(|l| l.voice_to_voice_ms)
                .map(|ms| format!("  [{ms:.0} ms]"))
                .unwrap_or_default();
            println!("  {:>6} ms {:<6} {}{latency}", t.at_ms, t.speaker, t.text);
        }
        if !call.variables.is_empty() {
            println!("  captured: {:?}", call.variables);
        }
    }
    println!(
        "\nstored in {store_url}; the do-not-call list now holds {} number(s)",
        store.dnc_list().await?.len()
    );
    emulator.shutdown();
    Ok(())
}
