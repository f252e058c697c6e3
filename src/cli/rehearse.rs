//! `rehearse`: a whole campaign offline (the store, the dialer, the conversation engine and a
//! local Twilio emulator whose callers follow a scenario), or with `--suite` the acceptance
//! corpus judged call by call; and `emulator`: that Twilio alone.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use telemarketer::app::Engines;
use telemarketer::config::Secrets;
use telemarketer::rehearsal::{self, Rig, SuiteOptions};
use telemarketer::testbed::corpus::Corpus;
use telemarketer::testbed::emulator::{scenario::Scenario, EmulatorConfig, RunningEmulator};

#[derive(clap::Args)]
pub struct RehearseArgs {
    /// Leads (CSV); default scripts/campaigns/solar-leads.csv.
    #[arg(long)]
    leads: Option<PathBuf>,
    /// Who answers which number; default scripts/campaigns/solar-rehearsal.toml.
    #[arg(long)]
    scenario: Option<PathBuf>,
    /// Campaign script; default the shipped example (with --suite: the corpus's own).
    #[arg(long)]
    script: Option<PathBuf>,
    /// Run an acceptance corpus (a file, or a folder of them such as scripts/corpus): every
    /// caller dialed as a lead, each call judged by what the caller heard, a table printed.
    #[arg(long, conflicts_with_all = ["leads", "scenario"])]
    suite: Option<PathBuf>,
    /// With --suite: only these callers (comma-separated names).
    #[arg(long, value_delimiter = ',', requires = "suite")]
    only: Vec<String>,
    /// With --suite: calls at once (1 keeps latency fair on a small machine).
    #[arg(long, default_value_t = 1, requires = "suite")]
    concurrent: u32,
    /// With --suite: write each call as a stereo WAV (caller left, agent right) here.
    #[arg(long, requires = "suite")]
    wav_dir: Option<PathBuf>,
    /// With --suite: after the table, what each failed call's caller heard, turn by turn
    /// (`all` for every call).
    #[arg(long, requires = "suite", num_args = 0..=1, default_missing_value = "failed")]
    details: Option<String>,
    /// Database to write the campaign into (default `sqlite://rehearsal.db`; with --suite a
    /// fresh one per run, so an opt-out from an earlier run does not skip a caller).
    #[arg(long)]
    store: Option<String>,
    /// Use the real clock for calling hours (default: pretend it is 10:00 in Los Angeles,
    /// so the rehearsal shows calls at any hour).
    #[arg(long)]
    real_clock: bool,
}

#[derive(clap::Args)]
pub struct EmulatorArgs {
    #[arg(long, default_value = "127.0.0.1:3999")]
    listen: std::net::SocketAddr,
    /// Who answers which number (TOML, see src/testbed/emulator/scenario.rs); default: everyone
    /// answers, listens and hangs up.
    #[arg(long)]
    scenario: Option<PathBuf>,
}

fn read(p: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))
}

pub async fn emulator(config_path: Option<&Path>, args: EmulatorArgs) -> anyhow::Result<()> {
    let EmulatorArgs { listen, scenario } = args;
    let scenario = match scenario {
        Some(p) => Scenario::from_toml(&p.display().to_string(), &read(&p)?)?,
        None => Scenario::quiet(),
    };
    let account = std::env::var("TWILIO_ACCOUNT_SID").context("set TWILIO_ACCOUNT_SID")?;
    let token = std::env::var("TWILIO_AUTH_TOKEN").context("set TWILIO_AUTH_TOKEN")?;
    let mut em = EmulatorConfig::from_scenario(account, token, &scenario);
    if scenario.needs_voice() {
        let config = super::config(config_path)?;
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

const EXAMPLE_LEADS: &str = include_str!("../../scripts/campaigns/solar-leads.csv");
const EXAMPLE_SCENARIO: &str = include_str!("../../scripts/campaigns/solar-rehearsal.toml");

pub async fn rehearse(config_path: Option<&Path>, args: RehearseArgs) -> anyhow::Result<()> {
    let raw = super::raw_config(config_path)?;
    let engines = Engines::load(&raw.clone().validate(Secrets::default())?)
        .context("cannot load the models")?;
    let offset = if args.real_clock {
        chrono::Duration::zero()
    } else {
        rehearsal::ten_in_los_angeles()
    };
    if let Some(suite) = &args.suite {
        return run_suite(raw, &engines, suite, &args, offset).await;
    }
    use telemarketer::model::{CampaignSettings, TransferSettings};
    let read = |p: &PathBuf| read(p);
    let leads_csv = args
        .leads
        .as_ref()
        .map(read)
        .transpose()?
        .unwrap_or_else(|| EXAMPLE_LEADS.into());
    let scenario = match &args.scenario {
        Some(p) => Scenario::from_toml(&p.display().to_string(), &read(p)?)?,
        None => Scenario::from_toml("solar-rehearsal.toml", EXAMPLE_SCENARIO)?,
    };
    let script_toml = args
        .script
        .as_ref()
        .map(read)
        .transpose()?
        .unwrap_or_else(|| telemarketer::script::EXAMPLE_SCRIPT.to_string());
    let store_url = args
        .store
        .clone()
        .unwrap_or_else(|| "sqlite://rehearsal.db".into());
    let rig = Rig::start(raw, &engines, &scenario, &store_url, offset).await?;
    let (store, emulator) = (&rig.store, &rig.emulator);

    let id = format!("rehearsal-{}", chrono::Utc::now().format("%Y%m%d-%H%M%S"));
    let settings = CampaignSettings {
        from_number: "+15005550006".into(),
        max_concurrent: 2,
        retry_delays_s: vec![5],
        max_attempts: 2,
        // The advisors' line in the example scenario, staffed on the rehearsal clock.
        transfer: Some(TransferSettings {
            number: "+14155550199".into(),
            timezone: "America/Los_Angeles".into(),
            weekends: true,
            ..Default::default()
        }),
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
    let started = std::time::Instant::now();
    let jumps = rig.dial(&id, Duration::from_secs(1800), true).await?;
    println!("\n== leads ({:.0} s)", started.elapsed().as_secs_f64());
    for at in &jumps {
        // The rehearsal's leads are in California; the clock moves to the next lead due.
        let local = at.with_timezone(&chrono_tz::America::Los_Angeles);
        println!(
            "(the rehearsal clock jumped to {}: a lead was due then)",
            local.format("%a %Y-%m-%d %H:%M %Z")
        );
    }
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
    Ok(())
}

/// `rehearse --suite`: the corpus as one campaign, then the table.
async fn run_suite(
    raw: telemarketer::config::RawConfig,
    engines: &Engines,
    suite: &Path,
    args: &RehearseArgs,
    offset: chrono::Duration,
) -> anyhow::Result<()> {
    let mut corpus = Corpus::load(suite)?;
    if !args.only.is_empty() {
        corpus = corpus.only(&args.only).map_err(anyhow::Error::msg)?;
    }
    if let Some(script) = &args.script {
        corpus.script = Some(script.clone());
    }
    if let Some(dir) = &args.wav_dir {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    // A fresh database per run unless one is named: every caller is judged from scratch.
    let fresh = std::env::temp_dir().join(format!("telemarketer-suite-{}.db", std::process::id()));
    let _ = std::fs::remove_file(&fresh);
    let store_url = args
        .store
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", fresh.display()));
    let opts = SuiteOptions {
        store_url,
        max_concurrent: args.concurrent,
        offset,
        wav_dir: args.wav_dir.clone(),
    };
    let report =
        rehearsal::run_suite(raw, engines, &corpus, &opts, &|line| eprintln!("{line}")).await?;
    if args.store.is_none() {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", fresh.display()));
        }
    }
    println!("\n{}", rehearsal::table::render(&report));
    if let Some(which) = &args.details {
        print!("{}", rehearsal::table::details(&report, which != "all"));
    }
    if report.passed() < report.results.len() {
        std::process::exit(1);
    }
    Ok(())
}
