//! One call's life, as one tokio task: status callbacks, ringing, answer (or busy, no-answer,
//! failed), answering machine detection, the voice webhook, TwiML execution and the media leg.
//!
//! The task never holds the state lock across an await. A REST hang-up ends the record directly
//! (so the REST answer is immediate and our server may hang up from inside a webhook the task is
//! awaiting) and cancels the call's `hangup` token; the task notices at its next wait, and
//! finishes with the `completed` callback, which is always last and sent exactly once.

mod dial;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::callee::{caller_steps, keep_heard_from, pcm_duration, prepare, Prepared};
use super::twiml::{self, Stream, Verb};
use super::{
    first, new_sid, Persona, SentCallback, Shared, VoiceSource, WebhookKind, AMD_DETECT, BEEP,
};
use crate::testbed::sim::{self, CallerStep, SimCall, SimEnd, SimError, SimReport};
use crate::twilio::signature;

/// Twilio takes a moment to dial after answering the create request; keeping it means the
/// `201` reaches the client before the `initiated` callback, as it does in practice.
const QUEUE_DELAY: Duration = Duration::from_millis(50);
/// Redirect hops allowed before Twilio-style "too many redirects" ends the call.
const MAX_REDIRECTS: usize = 10;
/// A `<Pause>` longer than this is cut short (tests must not hang on a typo).
const MAX_PAUSE_S: u64 = 60;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AmdMode {
    Enable,
    DetectMessageEnd,
}

/// What the create request asked for, read once.
struct Options {
    /// URL and method.
    status_callback: Option<(String, String)>,
    events: Vec<String>,
    amd: Option<AmdMode>,
    async_amd: bool,
    amd_callback: Option<(String, String)>,
    time_limit: Option<Duration>,
}

impl Options {
    fn from_params(p: &[(String, String)]) -> Self {
        let method = |key: &str| match first(p, key).map(str::to_uppercase).as_deref() {
            Some("GET") => "GET".to_string(),
            _ => "POST".to_string(),
        };
        let url = |key: &str| first(p, key).filter(|s| !s.is_empty()).map(str::to_string);
        // One repeated key per value, as documented; space- or comma-separated values in one
        // key are accepted too (older helper libraries send them that way).
        let events = p
            .iter()
            .filter(|(k, _)| k == "StatusCallbackEvent")
            .flat_map(|(_, v)| v.split([' ', ',']).map(|e| e.trim().to_ascii_lowercase()))
            .filter(|e| !e.is_empty())
            .collect();
        let amd = first(p, "MachineDetection")
            .filter(|s| !s.is_empty())
            .map(|m| {
                if m.eq_ignore_ascii_case("DetectMessageEnd") {
                    AmdMode::DetectMessageEnd
                } else {
                    AmdMode::Enable
                }
            });
        Self {
            status_callback: url("StatusCallback").map(|u| (u, method("StatusCallbackMethod"))),
            events,
            amd,
            async_amd: first(p, "AsyncAmd").is_some_and(|v| v.eq_ignore_ascii_case("true")),
            amd_callback: url("AsyncAmdStatusCallback")
                .map(|u| (u, method("AsyncAmdStatusCallbackMethod"))),
            time_limit: first(p, "TimeLimit")
                .and_then(|t| t.trim().parse::<u64>().ok())
                .filter(|&t| t > 0)
                .map(Duration::from_secs),
        }
    }

    fn sync_amd(&self) -> bool {
        self.amd.is_some() && !self.async_amd
    }
}

/// How a media leg ended.
enum Leg {
    ServerClosed,
    CallerHungUp,
    Stopped,
    Redirected(VoiceSource),
    Failed(String),
}

/// Runs one call to its end; marks it done (unless the emulator shut down first, in which case
/// nothing more is sent).
pub(super) async fn run(
    shared: Arc<Shared>,
    sid: String,
    redirects: UnboundedReceiver<VoiceSource>,
) {
    let Some((params, persona, hangup)) = shared.with_call(&sid, |r| {
        (
            r.call.create_params.clone(),
            r.persona.clone(),
            r.hangup.clone(),
        )
    }) else {
        return;
    };
    let mut task = CallTask {
        shared: shared.clone(),
        opts: Options::from_params(&params),
        sid: sid.clone(),
        persona,
        hangup,
        redirects,
        seq: 0,
        stream_closed: false,
        amd_task: None,
    };
    let root = shared.root.clone();
    tokio::select! {
        _ = root.cancelled() => {}
        _ = task.live() => {}
    }
    shared.with_call(&sid, |r| r.done = true);
    tracing::debug!(%sid, "emulator: call task done");
}

struct CallTask {
    shared: Arc<Shared>,
    opts: Options,
    sid: String,
    persona: Persona,
    hangup: CancellationToken,
    redirects: UnboundedReceiver<VoiceSource>,
    /// Status callback `SequenceNumber`.
    seq: u32,
    /// Our server closed a media stream: what ends the call next is "stream-closed".
    stream_closed: bool,
    amd_task: Option<JoinHandle<()>>,
}

impl CallTask {
    async fn live(&mut self) {
        self.progress().await;
        // Whatever path ended the call, it is over now (a no-op when already ended).
        self.end("completed", Some("caller"));
        // The AMD result (or `unknown`) goes out before `completed`, which is always last.
        if let Some(amd) = self.amd_task.take() {
            let _ = amd.await;
        }
        self.status_event("completed").await;
        tracing::info!(sid = %self.sid, "emulator: call ended");
    }

    /// From queued to the end of the call; returns once the call's record is terminal (or the
    /// task was told to stop).
    async fn progress(&mut self) {
        if !self.pause(QUEUE_DELAY).await {
            return;
        }
        let persona = self.persona.clone();
        if self.shared.with_call(&self.sid, |r| r.call.inbound) == Some(true) {
            return self.answer_inbound(persona).await;
        }
        let answers = matches!(
            persona,
            Persona::Human { .. } | Persona::Machine { .. } | Persona::Fax
        );
        // Synthesis (Piper) runs while the phone rings.
        let prep = answers.then(|| tokio::spawn(prepare(self.shared.clone(), persona.clone())));
        self.shared
            .with_call(&self.sid, |r| r.start_time = Some(Utc::now()));
        self.status_event("initiated").await;
        if !self.pause(self.shared.config.ring).await {
            return;
        }
        if matches!(persona, Persona::Failed) {
            // A bad number fails before it ever rings.
            self.end("failed", None);
            return;
        }
        self.set_status("ringing");
        self.status_event("ringing").await;
        if !self.pause(self.shared.config.ring).await {
            return;
        }
        match persona {
            Persona::Busy => return self.end("busy", None),
            Persona::NoAnswer => return self.end("no-answer", None),
            _ => {}
        }
        self.shared.with_call(&self.sid, |r| {
            r.answered_at = Some(Instant::now());
            r.set_status("in-progress");
        });
        self.arm_time_limit();
        self.status_event("answered").await;
        let prepared = match prep {
            Some(handle) => match handle.await {
                Ok(Ok(p)) => p,
                Ok(Err(e)) => return self.fail(e),
                Err(e) => return self.fail(format!("persona preparation panicked: {e}")),
            },
            None => Prepared::Nothing,
        };

        let mut skip_greeting = false;
        if let Some(mode) = self.opts.amd {
            let greeting = match &prepared {
                Prepared::Machine { greeting } => pcm_duration(greeting),
                _ => Duration::ZERO,
            };
            let (answered_by, delay) = match (&persona, mode) {
                (Persona::Machine { .. }, AmdMode::DetectMessageEnd) => {
                    ("machine_end_beep", greeting + BEEP)
                }
                (Persona::Machine { .. }, AmdMode::Enable) => ("machine_start", AMD_DETECT),
                (Persona::Fax, _) => ("fax", AMD_DETECT),
                _ => ("human", AMD_DETECT),
            };
            if self.opts.async_amd {
                self.amd_task = Some(self.spawn_async_amd(answered_by, delay));
            } else {
                // Sync AMD holds the TwiML fetch until detection; for DetectMessageEnd the
                // greeting plays out meanwhile (not over our stream).
                if !self.pause(delay).await {
                    return;
                }
                self.shared
                    .with_call(&self.sid, |r| r.call.answered_by = Some(answered_by.into()));
                skip_greeting = mode == AmdMode::DetectMessageEnd;
            }
        }
        self.execute(&prepared, skip_greeting).await;
    }

    /// A person rang us: no ringing or AMD on our side, our TwiML answers at once.
    async fn answer_inbound(&mut self, persona: Persona) {
        self.shared.with_call(&self.sid, |r| {
            r.start_time = Some(Utc::now());
            r.answered_at = Some(Instant::now());
            r.set_status("in-progress");
        });
        self.arm_time_limit();
        let prepared = match prepare(self.shared.clone(), persona).await {
            Ok(p) => p,
            Err(e) => return self.fail(e),
        };
        self.execute(&prepared, false).await;
    }

    /// Fetches and runs TwiML, following redirects, until the call ends.
    async fn execute(&mut self, prepared: &Prepared, skip_greeting: bool) {
        let Some(mut source) = self.shared.with_call(&self.sid, |r| r.voice.clone()) else {
            return;
        };
        let mut hops = 0;
        loop {
            let doc = match source {
                VoiceSource::Twiml(t) => t,
                VoiceSource::Url { url, method } => match self.fetch_twiml(&url, &method).await {
                    Ok(doc) => doc,
                    Err(e) => return self.fail(e),
                },
            };
            if self.hangup.is_cancelled() {
                return;
            }
            self.shared
                .with_call(&self.sid, |r| r.call.twiml = Some(doc.clone()));
            let verbs = match twiml::parse(&doc) {
                Ok(v) => v,
                Err(e) => {
                    return self.fail(format!("TwiML parse failure (Twilio error 12100): {e}"))
                }
            };
            let mut next = None;
            for verb in verbs {
                if self.hangup.is_cancelled() {
                    return;
                }
                if let Ok(src) = self.redirects.try_recv() {
                    next = Some(src);
                    break;
                }
                match verb {
                    Verb::Hangup | Verb::Reject => return self.end_by_twiml(),
                    Verb::Say(text) => self.said(text),
                    Verb::Play(url) => {
                        self.said(url.clone());
                        let played = self.fetch_play(&url).await;
                        self.shared
                            .with_call(&self.sid, |r| r.call.played.push(played));
                    }
                    Verb::Dial(d) => match self.dial(&d).await {
                        Some(Some(doc)) => {
                            next = Some(VoiceSource::Twiml(doc));
                            break;
                        }
                        Some(None) => {}
                        None => return,
                    },
                    Verb::Pause(s) => {
                        if !self.pause(Duration::from_secs(s.min(MAX_PAUSE_S))).await {
                            return;
                        }
                    }
                    Verb::Redirect { url, method } => {
                        next = Some(VoiceSource::Url { url, method });
                        break;
                    }
                    Verb::Connect(Some(stream)) => {
                        match self.media_leg(&stream, prepared, skip_greeting).await {
                            Leg::ServerClosed => self.stream_closed = true,
                            Leg::CallerHungUp => return self.end("completed", Some("caller")),
                            Leg::Stopped => return,
                            Leg::Redirected(src) => {
                                next = Some(src);
                                break;
                            }
                            Leg::Failed(e) => return self.fail(e),
                        }
                    }
                    Verb::Connect(None) => {
                        tracing::warn!(sid = %self.sid, "emulator: <Connect> without <Stream> skipped")
                    }
                    Verb::Other(name) => {
                        tracing::warn!(sid = %self.sid, verb = %name, "emulator: TwiML verb not emulated, skipped")
                    }
                }
            }
            match next {
                None => return self.end_by_twiml(),
                Some(_) if hops >= MAX_REDIRECTS => {
                    return self.fail("too many redirects".to_string())
                }
                Some(src) => {
                    hops += 1;
                    source = src;
                }
            }
        }
    }

    /// Opens the Media Streams WebSocket to our server and plays the persona on it.
    async fn media_leg(
        &mut self,
        stream: &Stream,
        prepared: &Prepared,
        skip_greeting: bool,
    ) -> Leg {
        let (steps, trim) = caller_steps(prepared, skip_greeting);
        let call = SimCall {
            call_sid: self.sid.clone(),
            stream_sid: new_sid("MZ"),
            account_sid: self.shared.config.account_sid.clone(),
            parameters: stream
                .parameters
                .iter()
                .cloned()
                .collect::<BTreeMap<_, _>>(),
            // Twilio signs the upgrade over the stream URL from TwiML, with the account's token.
            auth_token: Some(self.shared.config.auth_token.clone()),
            api_token: None,
            signed_url: Some(stream.url.clone()),
        };
        tracing::info!(sid = %self.sid, url = %stream.url, "emulator: media stream opening");
        let stop = self.hangup.child_token();
        let mut redirected = None;
        let result = {
            let leg = run_leg(&stream.url, &call, steps, stop.clone());
            tokio::pin!(leg);
            loop {
                tokio::select! {
                    r = &mut leg => break r,
                    Some(src) = self.redirects.recv(), if redirected.is_none() => {
                        // Twilio stops the running TwiML (and so the stream) to run the new one.
                        redirected = Some(src);
                        stop.cancel();
                    }
                }
            }
        };
        match result {
            Err(e) => Leg::Failed(format!("media stream: {e}")),
            Ok((mut report, end)) => {
                if trim {
                    // The voicemail records only after its beep, which ends the caller's speech.
                    let from = report
                        .caller_speech_ends
                        .first()
                        .copied()
                        .unwrap_or(u64::MAX);
                    keep_heard_from(&mut report, from);
                }
                self.shared
                    .with_call(&self.sid, |r| r.call.media = Some(report));
                match (end, redirected) {
                    (_, Some(src)) => Leg::Redirected(src),
                    (SimEnd::ServerClosed, None) => Leg::ServerClosed,
                    (SimEnd::StepsDone, None) => Leg::CallerHungUp,
                    (SimEnd::Stopped, None) => Leg::Stopped,
                }
            }
        }
    }

    /// POSTs (or GETs) the voice URL; the body is the TwiML.
    async fn fetch_twiml(&self, url: &str, method: &str) -> Result<String, String> {
        let sync_amd = self.opts.sync_amd();
        let Some(params) = self.shared.with_call(&self.sid, |r| {
            let mut p = base_params(&self.shared, r);
            p.push(("CallStatus".into(), "in-progress".into()));
            if sync_amd {
                if let Some(a) = &r.call.answered_by {
                    p.push(("AnsweredBy".into(), a.clone()));
                }
            }
            p
        }) else {
            return Err("call vanished".into());
        };
        match send_webhook(
            &self.shared,
            &self.sid,
            WebhookKind::Voice,
            url,
            method,
            params,
        )
        .await
        {
            Some((s, body)) if (200..300).contains(&s) => Ok(body),
            Some((s, _)) => Err(format!(
                "voice webhook {url} answered HTTP {s} (Twilio error 11200)"
            )),
            None => Err(format!(
                "voice webhook {url} did not answer (Twilio error 11200)"
            )),
        }
    }

    /// Sends a status callback if one is set and the event was asked for (`completed` always).
    async fn status_event(&mut self, event: &str) {
        let Some((url, method)) = self.opts.status_callback.clone() else {
            return;
        };
        if event != "completed" && !self.opts.events.iter().any(|e| e == event) {
            return;
        }
        let seq = self.seq;
        self.seq += 1;
        let amd = self.opts.amd.is_some();
        let Some(params) = self.shared.with_call(&self.sid, |r| {
            let status = match event {
                "initiated" => "initiated",
                "ringing" => "ringing",
                "answered" => "in-progress",
                _ => r.call.status.as_str(),
            };
            let mut p = base_params(&self.shared, r);
            p.push(("CallStatus".into(), status.into()));
            p.push(("Timestamp".into(), Utc::now().to_rfc2822()));
            p.push(("SequenceNumber".into(), seq.to_string()));
            p.push(("CallbackSource".into(), "call-progress-events".into()));
            if event == "completed" {
                p.push(("CallDuration".into(), r.duration.unwrap_or(0).to_string()));
                let sip = match status {
                    "completed" => "200",
                    "busy" => "486",
                    "no-answer" | "canceled" => "487",
                    _ => "404",
                };
                p.push(("SipResponseCode".into(), sip.into()));
            }
            if amd {
                if let Some(a) = &r.call.answered_by {
                    p.push(("AnsweredBy".into(), a.clone()));
                }
            }
            p
        }) else {
            return;
        };
        send_webhook(
            &self.shared,
            &self.sid,
            WebhookKind::Status,
            &url,
            &method,
            params,
        )
        .await;
    }

    /// Async AMD: decides after `delay` (or `unknown` if the call ends first), records the
    /// result and posts `AsyncAmdStatusCallback`.
    fn spawn_async_amd(&self, answered_by: &'static str, delay: Duration) -> JoinHandle<()> {
        let shared = self.shared.clone();
        let sid = self.sid.clone();
        let over = self.hangup.clone();
        let callback = self.opts.amd_callback.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let result = tokio::select! {
                _ = tokio::time::sleep(delay) => answered_by,
                _ = over.cancelled() => "unknown",
            };
            shared.with_call(&sid, |r| r.call.answered_by = Some(result.into()));
            let Some((url, method)) = callback else {
                return;
            };
            if shared.root.is_cancelled() {
                return;
            }
            let params = vec![
                ("CallSid".to_string(), sid.clone()),
                ("AccountSid".to_string(), shared.config.account_sid.clone()),
                ("AnsweredBy".to_string(), result.to_string()),
                (
                    "MachineDetectionDuration".to_string(),
                    started.elapsed().as_millis().to_string(),
                ),
            ];
            send_webhook(&shared, &sid, WebhookKind::AsyncAmd, &url, &method, params).await;
        })
    }

    /// `TimeLimit` (seconds from answer): Twilio ends the call when it runs out.
    fn arm_time_limit(&self) {
        let Some(limit) = self.opts.time_limit else {
            return;
        };
        let (shared, sid, over) = (self.shared.clone(), self.sid.clone(), self.hangup.clone());
        tokio::spawn(async move {
            tokio::select! {
                _ = tokio::time::sleep(limit) => {
                    shared.with_call(&sid, |r| r.end("completed", Some("time-limit")));
                }
                _ = over.cancelled() => {}
            }
        });
    }

    /// Sleeps unless the call is ended meanwhile; `false` when it was.
    async fn pause(&self, d: Duration) -> bool {
        tokio::select! {
            _ = tokio::time::sleep(d) => !self.hangup.is_cancelled(),
            _ = self.hangup.cancelled() => false,
        }
    }

    fn set_status(&self, status: &str) {
        self.shared.with_call(&self.sid, |r| r.set_status(status));
    }

    fn end(&self, status: &str, hung_up_by: Option<&str>) {
        self.shared
            .with_call(&self.sid, |r| r.end(status, hung_up_by));
    }

    fn end_by_twiml(&self) {
        let by = if self.stream_closed {
            "stream-closed"
        } else {
            "twiml"
        };
        self.end("completed", Some(by));
    }

    /// Ends an answered call on an application error (Twilio would say "an application error
    /// has occurred" and hang up).
    fn fail(&self, error: String) {
        tracing::warn!(sid = %self.sid, %error, "emulator: call failed");
        self.shared.with_call(&self.sid, |r| {
            r.call.error.get_or_insert(error);
            r.end("completed", Some("error"));
        });
    }

    fn said(&self, text: String) {
        self.shared.with_call(&self.sid, |r| r.call.said.push(text));
    }
}

/// Twilio's `Direction` of a call.
pub(super) fn direction(inbound: bool) -> &'static str {
    if inbound {
        "inbound"
    } else {
        "outbound-api"
    }
}

/// Parameters every voice and status webhook carries.
fn base_params(shared: &Shared, r: &super::CallRecord) -> Vec<(String, String)> {
    let c = &r.call;
    vec![
        ("CallSid".into(), c.sid.clone()),
        ("AccountSid".into(), shared.config.account_sid.clone()),
        ("From".into(), c.from.clone()),
        ("To".into(), c.to.clone()),
        ("Caller".into(), c.from.clone()),
        ("Called".into(), c.to.clone()),
        ("Direction".into(), direction(c.inbound).into()),
        ("ApiVersion".into(), "2010-04-01".into()),
    ]
}

/// Sends one signed webhook, records it on the call, and returns our server's status and body.
async fn send_webhook(
    shared: &Shared,
    sid: &str,
    kind: WebhookKind,
    url: &str,
    method: &str,
    params: Vec<(String, String)>,
) -> Option<(u16, String)> {
    let get = method == "GET";
    // A GET carries the parameters in its query string, which is then what is signed.
    let target = if get {
        match url::Url::parse(url) {
            Ok(mut u) => {
                u.query_pairs_mut().extend_pairs(params.iter());
                u.to_string()
            }
            Err(_) => url.to_string(),
        }
    } else {
        url.to_string()
    };
    let signed: &[(String, String)] = if get { &[] } else { &params };
    let signature = signature::compute(&shared.config.auth_token, &target, signed);
    let req = if get {
        shared.http.get(&target)
    } else {
        shared.http.post(&target).form(&params)
    };
    let answer = req
        .header("X-Twilio-Signature", &signature)
        .header(
            "I-Twilio-Idempotency-Token",
            uuid::Uuid::new_v4().to_string(),
        )
        .send()
        .await;
    let (status, body) = match answer {
        Ok(resp) => {
            let status = resp.status().as_u16();
            (Some(status), resp.text().await.unwrap_or_default())
        }
        Err(e) => {
            tracing::warn!(%sid, %url, error = %e, "emulator: webhook not answered");
            (None, String::new())
        }
    };
    tracing::debug!(%sid, ?kind, %url, ?status, "emulator: webhook sent");
    shared.with_call(sid, |r| {
        r.call.callbacks.push(SentCallback {
            kind,
            url: target,
            method: method.to_string(),
            params,
            signature,
            status,
        })
    });
    status.map(|s| (s, body))
}

/// Connects the media leg; an offline rehearsal has no TLS terminator, so a `wss://` URL that
/// cannot be reached is retried as plain `ws://`.
async fn run_leg(
    url: &str,
    call: &SimCall,
    steps: Vec<CallerStep>,
    stop: CancellationToken,
) -> Result<(SimReport, SimEnd), SimError> {
    match sim::run_call_until(url, call, steps.clone(), stop.clone()).await {
        Err(SimError::Connect { .. }) if url.starts_with("wss://") => {
            let plain = format!("ws://{}", &url["wss://".len()..]);
            tracing::warn!(%url, %plain, "emulator: wss unreachable, trying ws");
            sim::run_call_until(&plain, call, steps, stop).await
        }
        r => r,
    }
}
