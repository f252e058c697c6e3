//! Call recordings, end to end without models: a campaign that records gets a stereo WAV of
//! each call with the caller on the left (sample for sample what they sent, where they sent it)
//! and the agent on the right (what the caller heard, when they heard it); one that does not
//! records nothing; a recording campaign whose disclosure does not say so is refused; the
//! retention sweep deletes what is past its campaign's retention (audited) and keeps the rest;
//! the WAV is served whole or by byte range. Real store (SQLite file), real emulator, real
//! WebSockets over loopback; fake engines, with an agent voice of noise so that a piece of it
//! is found in the recording at exactly one place.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use futures::future::BoxFuture;
use telemarketer::app::{AppBuilder, LocalApp};
use telemarketer::audio::mulaw;
use telemarketer::client::AdminClient;
use telemarketer::config::Secrets;
use telemarketer::engine::{EngineError, SpeechAudio, TextToSpeech};
use telemarketer::leads::NewLead;
use telemarketer::model::api::NewCampaign;
use telemarketer::model::{CallMetadata, CampaignSettings, CampaignState};
use telemarketer::store::{now_ms, Store};
use telemarketer::testbed::emulator::{
    CallerLine, EmulatedCall, EmulatorConfig, Persona, RunningEmulator,
};
use telemarketer::testbed::sim::SimReport;
use tokio_util::sync::CancellationToken;

const ACCOUNT: &str = "AC00000000000000000000000000000007";
const TOKEN: &str = "recordings-test-token";
const API: &str = "api";

/// The agent's voice: noise, 20 ms per character, at the line's own rate (no resampling), a
/// different stretch for every clause.
struct NoiseTts;

impl TextToSpeech for NoiseTts {
    fn synthesize(
        &self,
        clause: String,
        _cancel: CancellationToken,
    ) -> BoxFuture<'static, Result<SpeechAudio, EngineError>> {
        let mut x = clause
            .bytes()
            .fold(0x9e37_79b9_u32, |h, b| h.rotate_left(5) ^ b as u32)
            | 1;
        let samples = (0..clause.len() * 160)
            .map(|_| {
                // xorshift: deterministic, never periodic within a call.
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                (x as f32 / u32::MAX as f32 - 0.5) * 0.5
            })
            .collect();
        Box::pin(async move {
            Ok(SpeechAudio {
                samples,
                sample_rate: 8000,
                elapsed: Duration::ZERO,
            })
        })
    }

    fn sample_rate(&self) -> u32 {
        8000
    }
}

/// Our appliance on a fresh SQLite file in `dir`, recordings in `dir/recordings`, dialing
/// `twilio_base` when given; its recogniser hears `transcripts` in order.
async fn server(twilio_base: Option<&str>, dir: &Path, transcripts: &[&str]) -> LocalApp {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let db = format!("sqlite://{}", dir.join("calls.db").display());
    let recordings = dir.join("recordings");
    let mut toml = format!(
        "[server]\npublic_url = \"http://{addr}\"\n[store]\nurl = {db:?}\n\
         [recordings]\ndir = {recordings:?}\n\
         [dialer]\nlease_s = 6\nsettle_unknown_s = 2\nreconcile_s = 1\n\
         [turn]\nmin_endpoint_ms = 300\nendpoint_silence_ms = 400\n"
    );
    let mut secrets = Secrets {
        api_token: Some(API.into()),
        twilio_auth_token: Some(TOKEN.into()),
        ..Default::default()
    };
    if let Some(base) = twilio_base {
        toml.push_str(&format!(
            "[twilio]\nbase_url = {base:?}\nworker_id = \"test-worker\"\n"
        ));
        secrets.twilio_account_sid = Some(ACCOUNT.into());
    }
    AppBuilder::with_engines(
        test_config(&toml, secrets),
        Arc::new(FakeStt(Mutex::new(
            transcripts.iter().map(|s| s.to_string()).collect(),
        ))),
        Arc::new(FakeLlm {
            replies: vec![String::new()],
            prompts: Default::default(),
        }),
        Arc::new(NoiseTts),
    )
    .dialer_poll(Duration::from_millis(100))
    .spawn(listener)
    .await
    .unwrap()
}

fn settings(recording: bool) -> CampaignSettings {
    CampaignSettings {
        from_number: "+15005550006".into(),
        max_concurrent: 1,
        calls_per_second: 10.0,
        max_attempts: 1,
        machine_detection: false,
        recording,
        ..Default::default()
    }
}

fn lead(phone: &str) -> NewLead {
    NewLead {
        phone: phone.into(),
        name: None,
        fields: BTreeMap::new(),
        timezone: zone_where_window_is(true).into(),
        consent: true,
        source: None,
    }
}

/// The call of `campaign` with the person at `phone`, once the campaign's leads are settled
/// and the emulator has the call's media report.
async fn finished_call(
    store: &Store,
    emulator: &RunningEmulator,
    campaign: &str,
    phone: &str,
) -> (String, SimReport) {
    let t0 = Instant::now();
    loop {
        let settled = store.lead_counts(campaign).await.unwrap().open() == 0;
        let calls = store.calls(campaign).await.unwrap();
        let emulated: Option<EmulatedCall> = calls
            .iter()
            .find(|c| [&c.to, &c.from].contains(&&Some(phone.to_string())))
            .and_then(|c| emulator.calls().into_iter().find(|e| e.sid == c.sid));
        if let (
            true,
            Some(EmulatedCall {
                sid,
                media: Some(report),
                ..
            }),
        ) = (settled, emulated)
        {
            return (sid, report);
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "campaign {campaign} did not finish: {:#?}",
            store.leads(campaign).await.unwrap()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Samples whose magnitude is speech, not silence.
fn loud(pcm: &[i16]) -> usize {
    pcm.iter().filter(|s| s.unsigned_abs() > 500).count()
}

/// Where `needle` lies in `hay` sample for sample, searching `around` +- `radius`. The agent's
/// voice is noise, so it lies in one place only.
fn find(hay: &[i16], needle: &[i16], around: usize, radius: usize) -> Option<usize> {
    let from = around.saturating_sub(radius);
    let to = (around + radius).min(hay.len().saturating_sub(needle.len()));
    (from..=to).find(|&p| hay[p..p + needle.len()] == *needle)
}

fn stereo(path: &Path) -> (Vec<i16>, Vec<i16>) {
    let mut r = hound::WavReader::open(path).unwrap();
    let spec = r.spec();
    assert_eq!(
        (spec.channels, spec.sample_rate, spec.bits_per_sample),
        (2, 8000, 16),
        "stereo 8 kHz 16-bit"
    );
    let all: Vec<i16> = r.samples::<i16>().map(Result::unwrap).collect();
    (
        all.iter().step_by(2).copied().collect(),
        all.iter().skip(1).step_by(2).copied().collect(),
    )
}

/// Two campaigns dial at once, one recording, one not, while a person rings the recording
/// one; each callee says who they are not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_call_has_each_side_on_its_channel_at_its_time() {
    let mut config = EmulatorConfig::new(ACCOUNT, TOKEN);
    config.ring = Duration::from_millis(200);
    config.tts = Some(Arc::new(VoicedTts));
    config.default_persona = Persona::Human {
        lines: vec![CallerLine::Say("Sorry, wrong number.".into())],
    };
    let emulator = RunningEmulator::start(config, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let dir = tempdir();
    let app = server(Some(&emulator.base_url()), &dir, &["sorry wrong number"; 3]).await;
    let store = app.state.store.clone().unwrap();
    let admin = AdminClient::new(&app.base_url(), API);
    let (ours, plain_number) = ("+15005550006", "+15005550007");
    for (id, recording, from, phone) in [
        ("rec", true, ours, "+14155550701"),
        ("plain", false, plain_number, "+14155550702"),
    ] {
        admin
            .create_campaign(&NewCampaign {
                id: id.into(),
                name: id.into(),
                script: None,
                settings: CampaignSettings {
                    from_number: from.into(),
                    ..settings(recording)
                },
            })
            .await
            .unwrap();
        store.insert_leads(id, &[lead(phone)]).await.unwrap();
    }
    let dialer = app.state.dialer.clone().unwrap();
    dialer.start("rec").await.unwrap();
    dialer.start("plain").await.unwrap();
    let caller = "+14155550703";
    let base = app.base_url();
    emulator.ring_in(
        caller,
        ours,
        Persona::Human {
            lines: vec![CallerLine::Say("Sorry, wrong number.".into())],
        },
        &format!("{base}/twilio/voice"),
        Some(&format!("{base}/twilio/status")),
    );
    let (sid, report) = finished_call(&store, &emulator, "rec", "+14155550701").await;
    let (plain_sid, _) = finished_call(&store, &emulator, "plain", "+14155550702").await;
    let (inbound_sid, _) = finished_call(&store, &emulator, "rec", caller).await;

    // The recording is where the store says, once the session has written it.
    let file = dir.join("recordings").join(format!("{sid}.wav"));
    let t0 = Instant::now();
    while !file.exists() {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "no recording written"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let rec = store
        .recording(&sid)
        .await
        .unwrap()
        .expect("the store knows it");
    assert_eq!(Path::new(&rec.path), file);
    assert_eq!(rec.campaign_id.as_deref(), Some("rec"));
    assert!((now_ms() - rec.recorded_at_ms).abs() < 120_000, "{rec:?}");
    let (left, right) = stereo(&file);

    // Left: exactly what the caller sent (mu-law, as the line carries it), each frame at its
    // `timestamp` (the emulator's first frame is stamped 20 ms: sample 160).
    let sent = mulaw::decode(&mulaw::encode(&report.caller_track));
    let n = sent.len().min(left.len() - 160);
    assert!(n > 3 * 8000, "{n} samples of the caller");
    assert!(left[..160].iter().all(|s| *s == 0));
    assert!(
        left[160..160 + n] == sent[..n],
        "the caller's channel differs"
    );
    let (start, end) = (
        report.caller_speech_starts[0] as usize * 8,
        report.caller_speech_ends[0] as usize * 8,
    );
    assert!(
        loud(&left[start..end]) > (end - start) / 4,
        "the caller spoke then"
    );
    assert_eq!(loud(&left[..start]), 0, "and not before");

    // Right: every stretch of agent audio the caller heard, sample for sample, within a few
    // frames of when they heard it (the pacer's play clock runs a little ahead of the line's,
    // by the way to the phone: ~80 ms here).
    let mut found = 0;
    for heard in report.heard.iter().filter(|h| h.samples.len() >= 2400) {
        let Some(at) = heard.samples.chunks(800).position(|c| loud(c) > 400) else {
            continue;
        };
        let needle = &heard.samples[at * 800..(at * 800 + 800).min(heard.samples.len())];
        let expected = heard.start_ms as usize * 8 + at * 800;
        assert!(
            find(&right, needle, expected, 1600).is_some(),
            "agent audio heard at {} ms is not on the right channel near then",
            heard.start_ms
        );
        found += 1;
    }
    assert!(found >= 2, "the greeting and the goodbye: {found}");
    // Nothing more on the right than the caller heard (nothing cut or unplayed), nothing less.
    let (ours, theirs) = (loud(&right), loud(&report.agent_track));
    assert!(
        ours.abs_diff(theirs) * 20 <= theirs,
        "right channel {ours} loud samples, the caller heard {theirs}"
    );
    // The agent was quiet while the caller spoke (no barge-in here).
    assert!(loud(&right[start + 1600..end]) < (end - start) / 50);

    // The person who rang the campaign is recorded too, both sides.
    let inbound = dir.join("recordings").join(format!("{inbound_sid}.wav"));
    let t0 = Instant::now();
    while !inbound.exists() {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "inbound call not recorded"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (caller_side, agent_side) = stereo(&inbound);
    assert!(loud(&caller_side) > 4000 && loud(&agent_side) > 8000);
    assert!(store.recording(&inbound_sid).await.unwrap().is_some());

    // The campaign without recording: no file, nothing in the store.
    assert!(store.recording(&plain_sid).await.unwrap().is_none());
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join("recordings"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let mut want = vec![file.clone(), inbound];
    want.sort();
    assert_eq!(files, want);

    serve_checks(&app, &sid, &plain_sid, &std::fs::read(&file).unwrap()).await;
    for id in ["rec", "plain"] {
        dialer.set_state(id, CampaignState::Stopped).await.ok();
    }
    emulator.shutdown();
}

/// The console's handler in a router of our own: whole file, byte ranges, 416, 404.
async fn serve_checks(app: &LocalApp, sid: &str, plain_sid: &str, wav: &[u8]) {
    use axum::extract::Path as UrlPath;
    use axum::http::HeaderMap;
    let state = app.state.clone();
    let router =
        axum::Router::new().route(
            "/recordings/{sid}",
            axum::routing::get(move |UrlPath(sid): UrlPath<String>, headers: HeaderMap| {
                let state = state.clone();
                async move {
                    telemarketer::http::recordings::serve_recording(&state, &sid, &headers).await
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/recordings", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    let http = reqwest::Client::new();
    let get = |sid: &str, range: Option<&str>| {
        let mut req = http.get(format!("{base}/{sid}"));
        if let Some(r) = range {
            req = req.header("range", r);
        }
        req.send()
    };
    let len = wav.len();

    let whole = get(sid, None).await.unwrap();
    assert_eq!(whole.status(), 200);
    assert_eq!(whole.headers()["content-type"], "audio/wav");
    assert_eq!(whole.headers()["accept-ranges"], "bytes");
    assert_eq!(whole.bytes().await.unwrap(), wav);

    let part = get(sid, Some("bytes=44-1043")).await.unwrap();
    assert_eq!(part.status(), 206);
    assert_eq!(
        part.headers()["content-range"],
        format!("bytes 44-1043/{len}").as_str()
    );
    assert_eq!(part.bytes().await.unwrap(), &wav[44..1044]);

    let tail = get(sid, Some("bytes=-10")).await.unwrap();
    assert_eq!(tail.status(), 206);
    assert_eq!(tail.bytes().await.unwrap(), &wav[len - 10..]);

    let past = get(sid, Some(&format!("bytes={len}-"))).await.unwrap();
    assert_eq!(past.status(), 416);
    assert_eq!(
        past.headers()["content-range"],
        format!("bytes */{len}").as_str()
    );

    assert_eq!(get(plain_sid, None).await.unwrap().status(), 404);
    assert_eq!(get("not-a-call", None).await.unwrap().status(), 404);
}

/// Recording on, and the script's disclosure says nothing of it: refused at creation.
#[tokio::test]
async fn a_recording_campaign_must_say_so_in_its_disclosure() {
    let dir = tempdir();
    let app = server(None, &dir, &[]).await;
    let admin = AdminClient::new(&app.base_url(), API);
    let script = telemarketer::script::EXAMPLE_SCRIPT;
    let silent = script.replace(", and this call may be recorded.", ".");
    assert_ne!(silent, script);
    let new = |id: &str, script: &str, recording: bool| NewCampaign {
        id: id.into(),
        name: id.into(),
        script: Some(script.into()),
        settings: settings(recording),
    };
    let err = admin
        .create_campaign(&new("silent", &silent, true))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(400), "{err}");
    assert!(
        err.to_string().contains("disclosure") && err.to_string().contains("recorded"),
        "{err}"
    );
    let store = app.state.store.clone().unwrap();
    assert!(store.campaign("silent").await.is_err(), "nothing stored");
    // Without recording nothing is required; with a disclosure that says it, recording is on.
    admin
        .create_campaign(&new("silent", &silent, false))
        .await
        .unwrap();
    let view = admin
        .create_campaign(&new("told", script, true))
        .await
        .unwrap();
    assert!(view.campaign.settings.recording);
    assert_eq!(view.campaign.settings.recording_retention_days, 30);
    let mut bad = new("bad", script, true);
    bad.settings.recording_retention_days = 0;
    let err = admin.create_campaign(&bad).await.unwrap_err();
    assert_eq!(err.status(), Some(400));
    assert!(
        err.to_string().contains("recording_retention_days"),
        "{err}"
    );
}

/// Each recording is kept for its campaign's retention, counted from when it was recorded.
#[tokio::test]
async fn the_retention_sweep_deletes_expired_recordings_and_keeps_fresh_ones() {
    const DAY: i64 = 24 * 3600 * 1000;
    let dir = tempdir();
    let store = Store::connect(&format!("sqlite://{}", dir.join("sweep.db").display()))
        .await
        .unwrap();
    for (id, days) in [("week", 7), ("month", 30)] {
        let settings = CampaignSettings {
            recording: true,
            recording_retention_days: days,
            ..settings(true)
        };
        store
            .create_campaign(id, id, telemarketer::script::EXAMPLE_SCRIPT, &settings)
            .await
            .unwrap();
    }
    let now = now_ms();
    let sid = |n: u32| format!("CA{n:032x}");
    let file = |n: u32| dir.join("recordings").join(format!("{}.wav", sid(n)));
    std::fs::create_dir_all(dir.join("recordings")).unwrap();
    // (call, campaign, recorded this many days before `now`, its file exists)
    let calls = [
        (1, "week", 8, true),
        (2, "week", 6, true),
        (3, "month", 8, true),
        (4, "month", 31, true),
        (5, "week", 9, false),
    ];
    for (n, campaign, days, exists) in calls {
        store
            .record_call(&CallMetadata {
                call_sid: sid(n),
                campaign_id: Some(campaign.into()),
                ..Default::default()
            })
            .await
            .unwrap();
        if exists {
            std::fs::write(file(n), b"RIFF").unwrap();
        }
        store
            .set_recording(&sid(n), &file(n).to_string_lossy(), now - days * DAY)
            .await
            .unwrap();
    }

    let report = store.sweep_recordings(now).await.unwrap();
    let mut deleted = report.deleted.clone();
    deleted.sort();
    assert_eq!(deleted, vec![sid(1), sid(4), sid(5)], "{report:?}");
    assert_eq!((report.failed, report.elsewhere), (0, 0));
    for (n, kept) in [(1, false), (2, true), (3, true), (4, false)] {
        assert_eq!(file(n).exists(), kept, "file of call {n}");
        assert_eq!(
            store.recording(&sid(n)).await.unwrap().is_some(),
            kept,
            "row of call {n}"
        );
    }
    let audited = |campaign: &'static str| {
        let store = store.clone();
        async move {
            store
                .audit_log(campaign)
                .await
                .unwrap()
                .into_iter()
                .filter(|e| e.decision == "recording_deleted")
                .map(|e| e.reason)
                .collect::<Vec<_>>()
        }
    };
    let week = audited("week").await;
    assert_eq!(week.len(), 2, "{week:?}");
    assert!(week.iter().any(|r| r.contains(&sid(1))), "{week:?}");
    assert!(week.iter().any(|r| r.contains(&sid(5))), "{week:?}");
    let month = audited("month").await;
    assert!(month.len() == 1 && month[0].contains(&sid(4)), "{month:?}");

    // Again at once: nothing more to do, nothing audited twice.
    assert!(store
        .sweep_recordings(now)
        .await
        .unwrap()
        .deleted
        .is_empty());
    assert_eq!(audited("week").await.len(), 2);
    // A month on, the rest have had their time.
    let later = store.sweep_recordings(now + 40 * DAY).await.unwrap();
    let mut deleted = later.deleted;
    deleted.sort();
    assert_eq!(deleted, vec![sid(2), sid(3)]);
    assert!(!file(2).exists() && !file(3).exists());
    store.close().await;
}
