//! The browser softphone's wire format, translated to and from Twilio's Media Streams, so a
//! call from a browser's microphone runs through the very session a phone call uses (same VAD,
//! turn-taking, marks and barge-in) and a script writer hears what a caller would.
//!
//! Browser -> session: binary messages of 16-bit little-endian PCM at 8 kHz (any even length;
//! the worklet sends 320 bytes = 20 ms) become `media` messages of exactly one 20 ms frame each,
//! after `connected` and `start`; text `mark` / `dtmf` / `hangup` become Twilio's `mark` echo,
//! `dtmf` and `stop`. Session -> browser: `media` becomes binary PCM, `mark` and `clear` become
//! small JSON texts. The browser echoes a mark once the audio before it has *played*, and on
//! `clear` drops its queue and echoes the pending marks, exactly as Twilio does, so the session
//! knows what was heard.
//!
//! Pure: no sockets, no clocks; sizes are bounded here so the handler cannot forget to.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::audio::{mulaw, FRAME_MS, FRAME_SAMPLES, TWILIO_RATE};
use crate::twilio::media::{
    parse_outbound, DtmfPayload, InboundMessage, MarkPayload, MediaError, MediaFormat,
    MediaPayload, OutboundMessage, StartMeta, StopMeta,
};

/// Largest binary message from the browser: one second of audio (a throttled tab may batch);
/// the worklet sends 20 ms.
pub const MAX_AUDIO_BYTES: usize = TWILIO_RATE as usize * 2;
/// Largest text message from the browser (`{"event":"mark","name":"s12c3"}` and the like).
pub const MAX_TEXT_BYTES: usize = 1024;
/// Longest mark name echoed: ours are a few characters (`s12c3`, `s12end`).
const MAX_MARK_NAME: usize = 64;

/// Why a browser message was refused (the call goes on; the message is dropped).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BrowserError {
    #[error("audio message of {0} bytes: 16-bit samples come in pairs of bytes")]
    OddLength(usize),
    #[error("{kind} message of {len} bytes is larger than {max}")]
    TooLarge {
        kind: &'static str,
        len: usize,
        max: usize,
    },
    #[error("malformed softphone message: {0}")]
    Json(String),
    #[error("{0:?} is not a keypad digit")]
    Digit(String),
}

/// What the browser may say in text.
#[derive(Debug, Deserialize)]
#[serde(tag = "event", rename_all = "lowercase")]
enum BrowserEvent {
    /// The audio before this mark has played.
    Mark { name: String },
    /// A key of the on-screen keypad.
    Dtmf { digit: String },
    /// The user hung up.
    Hangup,
}

/// What to do with a browser text message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upstream {
    /// Forward this Twilio message to the session.
    Forward(String),
    /// The user hung up: forward this `stop`, nothing follows.
    Stop(String),
}

/// One message to the browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Downstream {
    /// 16-bit little-endian PCM at 8 kHz, to play.
    Audio(Vec<u8>),
    /// JSON text: `{"event":"mark","name":..}` or `{"event":"clear"}`.
    Text(String),
}

/// Turns one browser connection into the Twilio messages the session reads: counters, the
/// carry of a partial frame, and the ids of the stream.
#[derive(Debug)]
pub struct Uplink {
    call_sid: String,
    stream_sid: String,
    account_sid: String,
    /// Twilio's `sequenceNumber`: 1 is `start`, every later message counts on.
    sequence: u64,
    /// Whole frames sent, Twilio's `chunk` (from 1) and the media clock.
    frames: u64,
    /// Samples of a partial frame, kept until the next message completes it (< 160).
    carry: Vec<i16>,
    stopped: bool,
}

impl Uplink {
    pub fn new(call_sid: &str, stream_sid: &str, account_sid: &str) -> Self {
        Self {
            call_sid: call_sid.to_string(),
            stream_sid: stream_sid.to_string(),
            account_sid: account_sid.to_string(),
            sequence: 0,
            frames: 0,
            carry: Vec::with_capacity(FRAME_SAMPLES),
            stopped: false,
        }
    }

    fn next_sequence(&mut self) -> u64 {
        self.sequence += 1;
        self.sequence
    }

    /// `connected` and `start`, before anything else.
    pub fn opening(&mut self, parameters: BTreeMap<String, String>) -> [String; 2] {
        let connected = InboundMessage::Connected {
            protocol: "Call".into(),
            version: "1.0.0".into(),
        };
        let start = InboundMessage::Start {
            sequence_number: self.next_sequence(),
            start: StartMeta {
                account_sid: self.account_sid.clone(),
                stream_sid: self.stream_sid.clone(),
                call_sid: self.call_sid.clone(),
                tracks: vec!["inbound".into()],
                media_format: MediaFormat {
                    encoding: "audio/x-mulaw".into(),
                    sample_rate: TWILIO_RATE,
                    channels: 1,
                },
                custom_parameters: parameters,
            },
            stream_sid: self.stream_sid.clone(),
        };
        [connected.to_json(), start.to_json()]
    }

    /// A binary message: its whole 20 ms frames as `media` messages (the rest waits).
    pub fn audio(&mut self, bytes: &[u8]) -> Result<Vec<String>, BrowserError> {
        if bytes.len() > MAX_AUDIO_BYTES {
            return Err(BrowserError::TooLarge {
                kind: "audio",
                len: bytes.len(),
                max: MAX_AUDIO_BYTES,
            });
        }
        if !bytes.len().is_multiple_of(2) {
            return Err(BrowserError::OddLength(bytes.len()));
        }
        if self.stopped {
            return Ok(Vec::new());
        }
        let mut out = Vec::with_capacity((self.carry.len() + bytes.len() / 2) / FRAME_SAMPLES);
        for pair in bytes.chunks_exact(2) {
            self.carry.push(i16::from_le_bytes([pair[0], pair[1]]));
            if self.carry.len() == FRAME_SAMPLES {
                let payload = mulaw::encode(&self.carry);
                self.carry.clear();
                out.push(self.media(&payload));
            }
        }
        Ok(out)
    }

    fn media(&mut self, mulaw: &[u8]) -> String {
        use base64::Engine as _;
        let timestamp = self.frames * FRAME_MS as u64;
        self.frames += 1;
        InboundMessage::Media {
            sequence_number: self.next_sequence(),
            media: MediaPayload {
                track: "inbound".into(),
                chunk: self.frames,
                timestamp,
                payload: base64::engine::general_purpose::STANDARD.encode(mulaw),
            },
            stream_sid: self.stream_sid.clone(),
        }
        .to_json()
    }

    /// A text message: a played mark, a key, or the hang-up. `Ok(None)` once stopped.
    pub fn text(&mut self, text: &str) -> Result<Option<Upstream>, BrowserError> {
        if text.len() > MAX_TEXT_BYTES {
            return Err(BrowserError::TooLarge {
                kind: "text",
                len: text.len(),
                max: MAX_TEXT_BYTES,
            });
        }
        let event: BrowserEvent =
            serde_json::from_str(text).map_err(|e| BrowserError::Json(e.to_string()))?;
        if self.stopped {
            return Ok(None);
        }
        let message = match event {
            BrowserEvent::Mark { name } => {
                if name.len() > MAX_MARK_NAME {
                    return Err(BrowserError::TooLarge {
                        kind: "mark name",
                        len: name.len(),
                        max: MAX_MARK_NAME,
                    });
                }
                InboundMessage::Mark {
                    sequence_number: self.next_sequence(),
                    stream_sid: self.stream_sid.clone(),
                    mark: MarkPayload { name },
                }
            }
            BrowserEvent::Dtmf { digit } => {
                if !is_key(&digit) {
                    return Err(BrowserError::Digit(digit));
                }
                InboundMessage::Dtmf {
                    stream_sid: self.stream_sid.clone(),
                    sequence_number: self.next_sequence(),
                    dtmf: DtmfPayload {
                        track: "inbound_track".into(),
                        digit,
                    },
                }
            }
            BrowserEvent::Hangup => return Ok(self.stop().map(Upstream::Stop)),
        };
        Ok(Some(Upstream::Forward(message.to_json())))
    }

    /// `stop`, once (the hang-up, or the socket closing); `None` after the first.
    pub fn stop(&mut self) -> Option<String> {
        if std::mem::replace(&mut self.stopped, true) {
            return None;
        }
        Some(
            InboundMessage::Stop {
                sequence_number: self.next_sequence(),
                stop: StopMeta {
                    account_sid: self.account_sid.clone(),
                    call_sid: self.call_sid.clone(),
                },
                stream_sid: self.stream_sid.clone(),
            }
            .to_json(),
        )
    }
}

/// A keypad key: `0`-`9`, `*` or `#`.
fn is_key(digit: &str) -> bool {
    matches!(digit.as_bytes(), [b'0'..=b'9' | b'*' | b'#'])
}

/// The first message to the browser: which call it is (the page shows its live transcript).
pub fn call_message(call_sid: &str) -> String {
    serde_json::json!({ "event": "call", "call_sid": call_sid }).to_string()
}

/// One of the session's Twilio messages, as the browser takes it.
pub fn downstream(twilio_json: &str) -> Result<Downstream, MediaError> {
    Ok(match parse_outbound(twilio_json)? {
        OutboundMessage::Media { media, .. } => {
            let pcm = mulaw::decode(&media.decode_audio()?);
            Downstream::Audio(pcm.iter().flat_map(|s| s.to_le_bytes()).collect())
        }
        OutboundMessage::Mark { mark, .. } => {
            Downstream::Text(serde_json::json!({ "event": "mark", "name": mark.name }).to_string())
        }
        OutboundMessage::Clear { .. } => Downstream::Text(r#"{"event":"clear"}"#.into()),
    })
}

#[cfg(test)]
mod tests;
