//! `rehearse`: a whole campaign offline (the store, the dialer, the conversation engine and a
//! local Twilio emulator whose callers follow a scenario), and `emulator`: that Twilio alone.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use telemarketer::app::{AppBuilder, Engines};
use telemarketer::config::Secrets;
use telemarketer::testbed::emulator::{scenario::Scenario, EmulatorConfig, RunningEmulator};

#[derive(clap::Args)]
pub struct RehearseArgs {
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
    use telemarketer::model::CampaignSettings;
    let RehearseArgs {
        leads,
        scenario,
        script,
        store: store_url,
        real_clock,
    } = args;
    let read = |p: &PathBuf| read(p);
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
    let raw = super::raw_config(config_path)?;
    let engines = Engines::load(&raw.clone().validate(Secrets::default())?)
        .context("cannot load the models")?;
    let mut em = EmulatorConfig::from_scenario(account.clone(), token.clone(), &scenario);
    em.tts = Some(Arc::new(engines.tts.clone()));
    let emulator = RunningEmulator::start(em, "127.0.0.1:0".parse()?).await?;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    // The same config pointed at this private Twilio and the rehearsal's database.
    let mut raw = raw;
    raw.server.public_url = Some(format!("http://{addr}"));
    raw.server.allow_unsigned_webhooks = Some(false);
    raw.twilio.base_url = Some(emulator.base_url());
    raw.store.url = Some(store_url.clone());
    let config = raw.validate(Secrets {
        twilio_account_sid: Some(account),
        twilio_auth_token: Some(token),
        ..Default::default()
    })?;

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
    let app = AppBuilder::new(config, &engines)
        .calling_hours_offset(offset)
        .spawn(listener)
        .await?;
    let store = app.state.store.clone().context("no store")?;
    let dialer = app.state.dialer.clone().context("no dialer")?;

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
