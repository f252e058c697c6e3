//! The handoff to a person (the script's `Transfer` action): after the handoff line has been
//! heard, the call's TwiML is replaced through Twilio's REST update with a `<Dial>` of the
//! campaign's transfer number. Twilio then stops our stream; the advisor hears the summary first
//! (a warm transfer: `<Number url>` whispers our TTS's rendering of it), and if nobody answers
//! within the timeout Twilio asks `/twilio/transfer`, which plays the caller our no-answer line
//! and ends the call as a callback (the stream cannot be resumed: the call registry streams a
//! call once). A transfer that cannot be placed keeps the caller with us at the fallback node.

use std::time::Duration;

use chrono::NaiveTime;

use super::{Agent, Flow};
use crate::audio::{to_phone_pcm, wav, TWILIO_RATE};
use crate::model::{CallMetadata, Outcome, TransferSettings, Turn};
use crate::script::machine::{Action, DeskHours, Event};
use crate::twilio::twiml;

/// Stream parameters the voice webhook adds for a campaign that takes transfers.
pub const TRANSFER_PARAM: &str = "transfer";
pub const PUBLIC_URL_PARAM: &str = "public_url";

/// How long the agent waits for Twilio to stop the stream after the update.
const STOP_WAIT: Duration = Duration::from_secs(10);

/// Where and how this call may be transferred.
#[derive(Debug, Clone)]
pub(super) struct Route {
    settings: TransferSettings,
    /// Our public base URL, for the whisper and action webhooks.
    base: String,
}

impl Route {
    /// From the call's stream parameters; `None` when the campaign takes no transfers.
    pub(super) fn from_call(metadata: &CallMetadata) -> Option<Self> {
        let settings: TransferSettings =
            serde_json::from_str(metadata.lead.get(TRANSFER_PARAM)?).ok()?;
        let base = metadata.lead.get(PUBLIC_URL_PARAM)?.trim_end_matches('/');
        (settings.problems().is_empty() && !base.is_empty()).then(|| Self {
            settings,
            base: base.to_string(),
        })
    }

    /// The business hours, for the script.
    pub(super) fn desk(&self) -> Option<DeskHours> {
        let t = &self.settings;
        let hm = |s: &str| NaiveTime::parse_from_str(s.trim(), "%H:%M").ok();
        Some(DeskHours {
            start: hm(&t.hours_start)?,
            end: hm(&t.hours_end)?,
            tz: t.timezone.parse().ok()?,
            weekends: t.weekends,
        })
    }
}

impl Agent {
    /// Carries out `Transfer`: `Ok` when the call is the advisor's now, else the script's
    /// actions for a transfer that failed (the caller is told, and goes to the fallback).
    pub(super) async fn transfer(
        &mut self,
        summary: &str,
        no_answer: &str,
    ) -> Result<Flow, Vec<Action>> {
        self.commit();
        // The caller hears the handoff line in full before the line changes.
        if let Some(id) = self.last_speech {
            self.wait_until_played(id, Duration::from_secs(30)).await;
        }
        if self.cancel.is_cancelled() {
            return Ok(Flow::Go);
        }
        let (number, dial) = match self.dial_twiml(summary, no_answer).await {
            Ok(prepared) => prepared,
            Err(why) => return Err(self.not_placed(&why).await),
        };
        // Twilio stops our stream as soon as it takes the update, which can end this job before
        // its answer arrives: the call is recorded as transferred first (undone if refused).
        let before = self.runner.snapshot();
        self.runner.event(Event::Transferred).await;
        self.deps
            .registry
            .set_outcome(&self.call_sid, Outcome::Transferred);
        let note = format!("[transferred to {number}; the advisor hears: {summary}]");
        self.deps.registry.add_turn(
            &self.call_sid,
            Turn {
                speech_id: None,
                ..Turn::agent(note, self.at_ms(), 0)
            },
        );
        let updated = match &self.deps.twilio {
            Some(twilio) => twilio.update_twiml(&self.call_sid, &dial).await.map(drop),
            None => Ok(()),
        };
        if let Err(e) = updated {
            // The script goes on: a later end or hang-up replaces the outcome.
            self.runner.restore(before);
            return Err(self.not_placed(&format!("Twilio update: {e}")).await);
        }
        tracing::info!(%number, "call transferred to a person");
        // Twilio stops our stream to run the <Dial>: the call ends here for us.
        if tokio::time::timeout(STOP_WAIT, self.cancel.cancelled())
            .await
            .is_err()
        {
            tracing::warn!("the stream is still open after the transfer");
        }
        Ok(Flow::Go)
    }

    /// The script's actions for a transfer that could not be placed.
    async fn not_placed(&mut self, why: &str) -> Vec<Action> {
        tracing::warn!(%why, "transfer not placed: the caller stays, at the fallback");
        self.runner.event(Event::TransferFailed).await.actions
    }

    /// Renders the audio, opens the handoff and builds the `<Dial>`; the number and the TwiML.
    async fn dial_twiml(&self, summary: &str, no_answer: &str) -> Result<(String, String), String> {
        let route = self
            .route
            .as_ref()
            .ok_or("the campaign takes no transfers")?;
        if self.deps.twilio.is_none() {
            return Err("no Twilio REST client".into());
        }
        let t = &route.settings;
        let whisper = if t.warm {
            Some(self.wav(summary).await?)
        } else {
            None
        };
        let token = self.deps.handoffs.open(
            &self.call_sid,
            whisper,
            no_answer,
            self.wav(no_answer).await?,
        );
        let action = format!("{}/twilio/transfer?handoff={token}", route.base);
        let whisper_url = t
            .warm
            .then(|| format!("{}/twilio/whisper?handoff={token}", route.base));
        let xml = twiml::dial(&t.number, t.timeout_s, &action, whisper_url.as_deref());
        Ok((t.number.clone(), xml))
    }

    /// A line as a phone-rate WAV, in the call's voice.
    async fn wav(&self, text: &str) -> Result<Vec<u8>, String> {
        let audio = self
            .deps
            .tts
            .synthesize(text.to_string(), self.cancel.child_token())
            .await
            .map_err(|e| format!("TTS: {e}"))?;
        let pcm = to_phone_pcm(&audio.samples, audio.sample_rate).map_err(|e| e.to_string())?;
        Ok(wav::pcm16(&pcm, TWILIO_RATE))
    }
}
