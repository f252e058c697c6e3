//! Rehearsals: the whole appliance (store, dialer, conversation engine) dialing a private
//! Twilio emulator whose callers follow a scenario, offline. The glue that needs the appliance
//! lives here, outside the test bed, so the test bed stays a black box that only speaks Twilio.
//!
//! - [`Rig`]: the appliance and the emulator wired together, one campaign at a time
//!   (`telemarketer rehearse` with a scenario);
//! - [`run_suite`]: the acceptance corpus ([`crate::testbed::corpus`]) as the leads of one
//!   campaign, each call judged by what its caller heard ([`crate::testbed::judge`]), printed
//!   as a table ([`table`]) by `rehearse --suite` and asserted by `tests/corpus.rs`.
//!
//! The rehearsal clock: calling hours (and so the callers' "tomorrow at three") are read on a
//! clock shifted to 10:00 in Los Angeles ([`ten_in_los_angeles`]), so a rehearsal runs at any
//! hour; callback-time expectations are judged on that same clock in the lead's zone.

pub mod table;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use chrono::TimeZone;

use crate::app::{AppBuilder, Engines, LocalApp, StartError};
use crate::config::{ConfigError, RawConfig, Secrets};
use crate::dialer::{Dialer, DialerError};
use crate::engine::EngineError;
use crate::model::CampaignSettings;
use crate::store::{Store, StoreError};
use crate::testbed::corpus::{Caller, Corpus};
use crate::testbed::emulator::scenario::Scenario;
use crate::testbed::emulator::{EmulatedCall, EmulatorConfig, EmulatorError, RunningEmulator};
use crate::testbed::judge::{self, Verdict};
use crate::testbed::measure::{self, Agreement, ServerFigure, TurnTiming};

#[derive(Debug, thiserror::Error)]
pub enum RehearsalError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Emulator(#[from] EmulatorError),
    #[error(transparent)]
    Start(#[from] StartError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Dialer(#[from] DialerError),
    #[error("transcribing what a caller heard: {0}")]
    Ear(#[from] EngineError),
    #[error("{0}")]
    Setup(String),
    #[error("the rehearsal did not finish in {0} s")]
    Timeout(u64),
}

/// The offset that makes the calling-hours clock read 10:00 in Los Angeles today.
pub fn ten_in_los_angeles() -> chrono::Duration {
    let la = chrono_tz::America::Los_Angeles;
    let now = chrono::Utc::now();
    let ten = now
        .with_timezone(&la)
        .date_naive()
        .and_hms_opt(10, 0, 0)
        .and_then(|t| la.from_local_datetime(&t).earliest());
    ten.map(|t| t.with_timezone(&chrono::Utc) - now)
        .unwrap_or_else(chrono::Duration::zero)
}

/// The appliance dialing a private emulator.
pub struct Rig {
    pub emulator: RunningEmulator,
    pub app: LocalApp,
    pub store: Store,
    pub dialer: Dialer,
    /// The calling-hours clock's shift.
    pub offset: chrono::Duration,
    /// How far (ms) the dialer's clock has jumped ahead to a callback's time.
    skip: std::sync::Arc<std::sync::atomic::AtomicI64>,
}

/// At most this many jumps of the rehearsal clock (a caller who keeps asking to be called back
/// is called back that often).
const MAX_JUMPS: usize = 3;

impl Rig {
    /// Starts the emulator (its own account and token: nothing real is reachable) and the
    /// appliance from `raw`, pointed at it and at `store_url`.
    pub async fn start(
        raw: RawConfig,
        engines: &Engines,
        scenario: &Scenario,
        store_url: &str,
        offset: chrono::Duration,
    ) -> Result<Self, RehearsalError> {
        let hex = || uuid::Uuid::new_v4().simple().to_string();
        let (account, token) = (format!("AC{}", hex()), hex());
        let mut em = EmulatorConfig::from_scenario(account.clone(), token.clone(), scenario);
        em.tts = Some(std::sync::Arc::new(engines.tts.clone()));
        let emulator = RunningEmulator::start(em, ([127, 0, 0, 1], 0).into()).await?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(StartError::Listen)?;
        let addr = listener.local_addr().map_err(StartError::Listen)?;
        let mut raw = raw;
        raw.server.public_url = Some(format!("http://{addr}"));
        raw.server.allow_unsigned_webhooks = Some(false);
        raw.twilio.base_url = Some(emulator.base_url());
        raw.store.url = Some(store_url.to_string());
        let config = raw.validate(Secrets {
            twilio_account_sid: Some(account),
            twilio_auth_token: Some(token),
            ..Default::default()
        })?;
        let skip = std::sync::Arc::new(std::sync::atomic::AtomicI64::new(0));
        let jumped = skip.clone();
        let clock = crate::dialer::Clock::new(move || {
            let ms = jumped.load(std::sync::atomic::Ordering::SeqCst);
            chrono::Utc::now() + chrono::Duration::milliseconds(ms)
        });
        let app = AppBuilder::new(config, engines)
            .calling_hours_offset(offset)
            .dialer_clock(clock)
            .spawn(listener)
            .await?;
        let store = app
            .state
            .store
            .clone()
            .ok_or(RehearsalError::Setup("no store".into()))?;
        let dialer = app
            .state
            .dialer
            .clone()
            .ok_or(RehearsalError::Setup("no dialer".into()))?;
        Ok(Self {
            emulator,
            app,
            store,
            dialer,
            offset,
            skip,
        })
    }

    /// Dials a campaign's leads and waits until every lead is settled and every call ended.
    /// With `follow_callbacks`, once nothing is due within the hour the dialer's clock jumps to
    /// the next lead due within a week (a callback "tomorrow at ten"), up to [`MAX_JUMPS`]
    /// times; returns the instants it jumped to (on the rehearsal's shifted clock). Without,
    /// it is done once nothing is due now: a callback booked for later this hour (a caller's
    /// "Friday morning" said on a Friday) is not waited for in real time.
    pub async fn dial(
        &self,
        campaign: &str,
        limit: Duration,
        follow_callbacks: bool,
    ) -> Result<Vec<chrono::DateTime<chrono::Utc>>, RehearsalError> {
        self.dialer.start(campaign).await?;
        let started = Instant::now();
        let mut jumps = Vec::new();
        let horizon = Duration::from_secs(if follow_callbacks { 3600 } else { 0 });
        loop {
            while !self.dialer.is_settled(campaign, horizon).await? {
                tokio::time::sleep(Duration::from_secs(1)).await;
                if started.elapsed() > limit {
                    return Err(RehearsalError::Timeout(limit.as_secs()));
                }
            }
            let Some(due) = self.store.next_due_ms(campaign).await? else {
                break;
            };
            let skip = self.skip.load(std::sync::atomic::Ordering::SeqCst);
            let now = chrono::Utc::now() + self.offset + chrono::Duration::milliseconds(skip);
            let ahead = due - now.timestamp_millis();
            if !follow_callbacks || jumps.len() >= MAX_JUMPS || ahead > 7 * 86_400_000 {
                break;
            }
            // The calls still running end first: the jump is for what is due next.
            self.emulator.wait_idle(Duration::from_secs(30)).await;
            self.skip
                .fetch_add(ahead.max(0), std::sync::atomic::Ordering::SeqCst);
            jumps.push(chrono::DateTime::from_timestamp_millis(due).unwrap_or(now));
            tracing::info!(due_ms = due, "rehearsal clock jumps to the next lead due");
        }
        self.emulator.wait_idle(Duration::from_secs(30)).await;
        // Every session has ended (its caller's last words transcribed and judged), then its
        // last status callbacks and transcript lines reach the store.
        let _ = tokio::time::timeout(Duration::from_secs(60), self.app.state.live.idle()).await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        Ok(jumps)
    }
}

/// How to run a suite.
pub struct SuiteOptions {
    /// The rehearsal's database.
    pub store_url: String,
    /// Calls at once: 1 keeps latency fair on a small machine.
    pub max_concurrent: u32,
    /// The calling-hours clock's shift (see [`ten_in_los_angeles`]).
    pub offset: chrono::Duration,
    /// Where to write each call as a stereo WAV (caller left, agent right).
    pub wav_dir: Option<PathBuf>,
}

/// One caller's call, observed and judged.
#[derive(Debug, Clone)]
pub struct CallResult {
    pub caller: Caller,
    pub call_sid: Option<String>,
    pub outcome: Option<String>,
    pub vars: BTreeMap<String, String>,
    /// Whisper's transcript of what the caller heard.
    pub transcript: String,
    /// What the appliance understood of each caller turn (its stored transcript), to tell a
    /// misheard caller from a wrong decision.
    pub understood: Vec<String>,
    pub timings: Vec<TurnTiming>,
    /// Turns the agent began answering in a pause inside them (false turn ends), by index.
    pub early: Vec<usize>,
    /// Caller turns next to the server's own voice-to-voice for the same reply.
    pub agreement: Vec<Agreement>,
    pub verdict: Verdict,
}

/// A suite's results, in corpus order.
#[derive(Debug, Clone)]
pub struct SuiteReport {
    pub results: Vec<CallResult>,
    pub elapsed: Duration,
}

impl SuiteReport {
    pub fn passed(&self) -> usize {
        self.results.iter().filter(|r| r.verdict.passed()).count()
    }

    /// Every paired turn's server figure next to the caller's.
    pub fn agreements(&self) -> Vec<Agreement> {
        self.results
            .iter()
            .flat_map(|r| r.agreement.iter().copied())
            .collect()
    }

    /// Caller-side latency of every turn that got an answer, in ms.
    pub fn latencies(&self) -> Vec<u64> {
        self.results
            .iter()
            .flat_map(|r| r.timings.iter().filter_map(|t| t.latency_ms))
            .collect()
    }
}

/// A lead number per caller: +1 415 555 2000 onwards (unique, never a real subscriber).
fn number(i: usize) -> String {
    format!("+1415555{:04}", 2000 + i)
}

/// Rehearses every caller of `corpus` as a lead of one campaign, then judges each call.
pub async fn run_suite(
    raw: RawConfig,
    engines: &Engines,
    corpus: &Corpus,
    opts: &SuiteOptions,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<SuiteReport, RehearsalError> {
    let started = Instant::now();
    let script = match &corpus.script {
        Some(p) => std::fs::read_to_string(p)
            .map_err(|e| RehearsalError::Setup(format!("cannot read {}: {e}", p.display())))?,
        None => crate::script::EXAMPLE_SCRIPT.to_string(),
    };
    let personas: HashMap<String, _> = corpus
        .callers
        .iter()
        .enumerate()
        .map(|(i, c)| (number(i), c.persona.clone()))
        .collect();
    let scenario = Scenario {
        ring: Duration::from_millis(300),
        default_persona: Scenario::quiet().default_persona,
        personas,
        later: HashMap::new(),
    };
    let rig = Rig::start(raw, engines, &scenario, &opts.store_url, opts.offset).await?;
    let id = format!("suite-{}", chrono::Utc::now().format("%Y%m%d-%H%M%S"));
    let settings = CampaignSettings {
        from_number: "+15005550006".into(),
        max_concurrent: opts.max_concurrent.max(1),
        calls_per_second: 5.0,
        max_attempts: 1,
        retry_delays_s: vec![60],
        ..Default::default()
    };
    rig.store
        .create_campaign(&id, "Acceptance corpus", &script, &settings)
        .await?;
    let mut csv = String::from("phone,name,timezone,consent\n");
    for (i, c) in corpus.callers.iter().enumerate() {
        csv.push_str(&format!("{},{},{},yes\n", number(i), c.name, c.timezone));
    }
    let leads = crate::leads::parse_csv(csv.as_bytes())
        .map_err(|e| RehearsalError::Setup(format!("corpus leads: {e}")))?;
    if let Some(e) = leads.errors.first() {
        return Err(RehearsalError::Setup(format!(
            "corpus lead row {}: {}",
            e.row, e.reason
        )));
    }
    rig.store.insert_leads(&id, &leads.leads).await?;
    progress(&format!(
        "campaign {id}: {} callers, {} at a time",
        corpus.callers.len(),
        settings.max_concurrent
    ));
    // Five minutes a caller is far beyond any script's length.
    let limit = Duration::from_secs(300 * corpus.callers.len() as u64 + 120);
    rig.dial(&id, limit, false).await?;
    progress(&format!(
        "all calls ended after {:.0} s; judging",
        started.elapsed().as_secs_f64()
    ));

    let stored = rig.store.calls(&id).await?;
    let calls = rig.emulator.calls();
    let mut results = Vec::new();
    for (i, caller) in corpus.callers.iter().enumerate() {
        let to = number(i);
        let call = calls.iter().rev().find(|c| c.to == to);
        let row = call.and_then(|c| stored.iter().find(|s| s.sid == c.sid));
        let mut result = judge_call(engines, caller, call, row, rig.offset, opts).await?;
        if let Some(row) = row {
            let turns = rig.store.call_detail(&row.sid).await?.turns;
            let server: Vec<ServerFigure> = turns
                .iter()
                .filter_map(|t| {
                    let l = t.latency.as_ref()?;
                    Some(ServerFigure {
                        speech_end_ms: l.speech_end_ms?,
                        voice_to_voice_ms: l.voice_to_voice_ms?,
                        path: l.path,
                    })
                })
                .collect();
            result.agreement = measure::agreement(&result.timings, &server);
            result.understood = turns
                .into_iter()
                .filter(|t| t.speaker == "caller")
                .map(|t| t.text)
                .collect();
        }
        progress(&table::progress_line(&result));
        results.push(result);
    }
    rig.emulator.shutdown();
    Ok(SuiteReport {
        results,
        elapsed: started.elapsed(),
    })
}

async fn judge_call(
    engines: &Engines,
    caller: &Caller,
    call: Option<&EmulatedCall>,
    row: Option<&crate::model::StoredCall>,
    offset: chrono::Duration,
    opts: &SuiteOptions,
) -> Result<CallResult, RehearsalError> {
    let media = call.and_then(|c| c.media.as_ref());
    let transcript = match media {
        Some(m) => crate::testbed::ear::transcribe(&engines.stt, &m.agent_track).await?,
        None => String::new(),
    };
    let timings = media.map(|m| m.turn_timings()).unwrap_or_default();
    let early = media.map(|m| m.early_answers()).unwrap_or_default();
    if let (Some(dir), Some(m)) = (&opts.wav_dir, media) {
        let path = dir.join(format!("{}.wav", caller.name));
        if let Err(e) = m.write_stereo_wav(&path) {
            tracing::warn!(path = %path.display(), error = %e, "cannot write the call's WAV");
        }
    }
    let outcome = row.and_then(|r| r.outcome.clone());
    let vars = row.map(|r| r.variables.clone()).unwrap_or_default();
    let tz: chrono_tz::Tz = caller.timezone.parse().unwrap_or(chrono_tz::UTC);
    let started_ms = row
        .map(|r| r.created_at_ms)
        .unwrap_or_else(|| chrono::Utc::now().timestamp_millis());
    let now = (chrono::DateTime::from_timestamp_millis(started_ms).unwrap_or_default() + offset)
        .with_timezone(&tz);
    let mut verdict = judge::judge(
        &caller.expect,
        &judge::Observed {
            outcome: outcome.as_deref(),
            vars: &vars,
            transcript: &transcript,
            timings: &timings,
            now,
        },
    );
    if call.is_none() {
        verdict.failures.insert(0, "never dialed".into());
    } else if let Some(e) = call.and_then(|c| c.error.as_ref()) {
        verdict.failures.insert(0, format!("call error: {e}"));
    }
    Ok(CallResult {
        caller: caller.clone(),
        call_sid: call.map(|c| c.sid.clone()),
        outcome,
        vars,
        transcript,
        understood: Vec::new(),
        timings,
        early,
        agreement: Vec::new(),
        verdict,
    })
}
