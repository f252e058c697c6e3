//! `<Dial><Number>` and `<Play>`, as Twilio runs them for a transfer to a person.
//!
//! The dialed number answers as its persona: a human after the ring (unless that is longer than
//! the dial's `timeout`), `no-answer` never (the dial times out), `busy` and `failed` at once.
//! A person who answers first hears the `<Number url>` TwiML alone (the whisper: its `<Play>`
//! audio is fetched and kept), then talks with the caller for [`BRIDGED`] and hangs up. The
//! `action` URL then gets `DialCallStatus` (signed, like every webhook) and the TwiML it returns
//! continues the caller's call. `<Play>` is fetched, not timed: the call moves on at once.

use std::time::Duration;

use super::super::twiml::{self, Dial, Verb};
use super::super::{new_sid, DialReport, Persona, Played, WebhookKind, BRIDGED};
use super::{base_params, send_webhook, CallTask};

impl CallTask {
    /// Runs a `<Dial>`: `Some(Some(doc))` is the `action`'s TwiML to continue with,
    /// `Some(None)` continues after the `<Dial>` (no `action`), `None` when the call ended.
    pub(super) async fn dial(&mut self, d: &Dial) -> Option<Option<String>> {
        let persona = self.shared.config.persona_for(&d.number, 0);
        let timeout = Duration::from_secs(d.timeout.max(1));
        let ring = self.shared.config.ring;
        let child = new_sid("CA");
        let mut report = DialReport {
            number: d.number.clone(),
            ..DialReport::default()
        };
        tracing::info!(sid = %self.sid, number = %d.number, "emulator: dialing");
        let answers = !matches!(persona, Persona::Busy | Persona::NoAnswer | Persona::Failed);
        report.status = match persona {
            Persona::Failed => "failed".into(),
            Persona::Busy => {
                if !self.pause(ring.min(timeout)).await {
                    return None;
                }
                "busy".into()
            }
            _ if !answers || ring >= timeout => {
                if !self.pause(timeout).await {
                    return None;
                }
                "no-answer".into()
            }
            _ => {
                if !self.pause(ring).await {
                    return None;
                }
                if let Some(url) = &d.whisper_url {
                    self.whisper(url, &child, &d.number, &mut report).await;
                }
                if !self.pause(BRIDGED).await {
                    return None;
                }
                report.duration_s = BRIDGED.as_secs();
                "completed".into()
            }
        };
        let status = report.status.clone();
        let duration = report.duration_s;
        self.shared
            .with_call(&self.sid, |r| r.call.dial = Some(report));
        let Some(action) = &d.action else {
            return Some(None);
        };
        let mut params = self.shared.with_call(&self.sid, |r| {
            let mut p = base_params(&self.shared, r);
            p.push(("CallStatus".into(), "in-progress".into()));
            p
        })?;
        params.push(("DialCallStatus".into(), status.clone()));
        params.push(("DialCallSid".into(), child));
        if status == "completed" {
            params.push(("DialCallDuration".into(), duration.to_string()));
        }
        let answer = send_webhook(
            &self.shared,
            &self.sid,
            WebhookKind::DialAction,
            action,
            &d.method,
            params,
        )
        .await;
        match answer {
            Some((s, body)) if (200..300).contains(&s) => Some(Some(body)),
            other => {
                self.fail(format!(
                    "dial action {action} answered {:?} (Twilio error 11200)",
                    other.map(|(s, _)| s)
                ));
                None
            }
        }
    }

    /// The person who answered fetches the `<Number url>` TwiML and hears it (the child leg's
    /// webhook: its own CallSid, `ParentCallSid` ours).
    async fn whisper(&self, url: &str, child: &str, number: &str, report: &mut DialReport) {
        let Some(mut params) = self.shared.with_call(&self.sid, |r| {
            let mut p = base_params(&self.shared, r);
            p.retain(|(k, _)| !matches!(k.as_str(), "CallSid" | "To" | "Called" | "Direction"));
            p
        }) else {
            return;
        };
        params.extend([
            ("CallSid".to_string(), child.to_string()),
            ("ParentCallSid".to_string(), self.sid.clone()),
            ("To".to_string(), number.to_string()),
            ("Called".to_string(), number.to_string()),
            ("Direction".to_string(), "outbound-dial".to_string()),
            ("CallStatus".to_string(), "in-progress".to_string()),
        ]);
        let answer = send_webhook(
            &self.shared,
            &self.sid,
            WebhookKind::Whisper,
            url,
            "POST",
            params,
        )
        .await;
        let Some((200..=299, doc)) = answer else {
            tracing::warn!(sid = %self.sid, %url, "emulator: whisper URL failed; bridging anyway");
            return;
        };
        for verb in twiml::parse(&doc).unwrap_or_default() {
            match verb {
                Verb::Play(url) => report.whisper.push(self.fetch_play(&url).await),
                Verb::Say(text) => report.whisper_said.push(text),
                Verb::Hangup | Verb::Reject => break,
                _ => {}
            }
        }
    }

    /// GETs a `<Play>` URL (Twilio fetches media unsigned).
    pub(super) async fn fetch_play(&self, url: &str) -> Played {
        let mut played = Played {
            url: url.to_string(),
            status: None,
            content_type: None,
            audio: Vec::new(),
        };
        match self.shared.http.get(url).send().await {
            Ok(resp) => {
                played.status = Some(resp.status().as_u16());
                played.content_type = resp
                    .headers()
                    .get(reqwest::header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                played.audio = resp.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
            }
            Err(e) => {
                tracing::warn!(sid = %self.sid, %url, error = %e, "emulator: <Play> fetch failed")
            }
        }
        played
    }
}
