//! Media Streams messages (bidirectional `<Connect><Stream>`), typed.
//!
//! Twilio sends counters (`sequenceNumber`, `chunk`, `timestamp`) as JSON strings; we parse them
//! to numbers (a bare number is accepted too) and write them back as strings. Fields are declared
//! in Twilio's wire order, so serializing an [`InboundMessage`] yields byte-exact Twilio JSON and a
//! fake Twilio in tests can use these same types. Nested structs mirror the JSON objects, which
//! keeps serde derive-only and the wire shape obvious from the type.
//!
//! Errors map to Twilio's own codes: 31950 (binary frame / raw audio), 31951 (any other bad
//! message: malformed JSON, unknown event, missing field, wrong streamSid).

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// Why a Media Streams message was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MediaError {
    /// Malformed JSON, unknown `event`, missing field or bad field value; `reason` says which.
    #[error("malformed Media Streams message: {reason}")]
    Json { reason: String },
    #[error("media payload is not valid base64: {reason}")]
    Base64 { reason: String },
    #[error("message for stream {got}, expected {expected}")]
    WrongStreamSid { expected: String, got: String },
    #[error("binary WebSocket frames are not part of the Media Streams protocol")]
    BinaryFrame,
    #[error("media payload of {len} base64 characters is larger than a few frames")]
    TooLarge { len: usize },
}

impl MediaError {
    /// Twilio's error code for the same fault (31950 binary frame, 31951 anything else), so our
    /// logs and the fake Twilio speak the codes an operator would look up.
    pub fn twilio_code(&self) -> Option<u32> {
        match self {
            MediaError::BinaryFrame => Some(31950),
            MediaError::Json { .. }
            | MediaError::Base64 { .. }
            | MediaError::WrongStreamSid { .. }
            | MediaError::TooLarge { .. } => Some(31951),
        }
    }
}

/// Counters: decimal strings on the wire, u64 in Rust. Bare JSON numbers are accepted too.
mod counter {
    use super::fmt;
    use serde::de::{self, Visitor};
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        d.deserialize_any(CounterVisitor)
    }

    struct CounterVisitor;

    impl Visitor<'_> for CounterVisitor {
        type Value = u64;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a counter as a decimal string or a non-negative integer")
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
            Ok(v)
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
            u64::try_from(v).map_err(|_| E::custom(format!("counter {v} is negative")))
        }

        fn visit_str<E: de::Error>(self, s: &str) -> Result<u64, E> {
            // Stricter than `str::parse` (which takes "+5"): Twilio sends plain digits.
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                return Err(E::custom(format!("counter {s:?} is not a decimal number")));
            }
            s.parse()
                .map_err(|_| E::custom(format!("counter {s:?} is out of range")))
        }
    }
}

/// `start.mediaFormat`: always `audio/x-mulaw`, 8000 Hz, 1 channel for Media Streams today.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MediaFormat {
    pub encoding: String,
    pub sample_rate: u32,
    pub channels: u16,
}

/// The `start` object: who the call is, what audio comes, and our `<Parameter>`s.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StartMeta {
    pub account_sid: String,
    pub stream_sid: String,
    pub call_sid: String,
    #[serde(default)]
    pub tracks: Vec<String>,
    pub media_format: MediaFormat,
    /// The `<Parameter name value>`s from our TwiML (the stream URL takes no query string).
    #[serde(default)]
    pub custom_parameters: BTreeMap<String, String>,
}

/// The `media` object of an inbound `media` event: one chunk (20 ms, 160 bytes) of mu-law.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaPayload {
    pub track: String,
    #[serde(with = "counter")]
    pub chunk: u64,
    /// Milliseconds since the stream started.
    #[serde(with = "counter")]
    pub timestamp: u64,
    /// Base64 of raw mu-law 8 kHz bytes.
    pub payload: String,
}

impl MediaPayload {
    /// The raw mu-law bytes; a payload longer than [`MAX_INBOUND_AUDIO`] is refused before it is
    /// decoded.
    pub fn decode_audio(&self) -> Result<Vec<u8>, MediaError> {
        let len = self.payload.len();
        if len > MAX_INBOUND_AUDIO.div_ceil(3) * 4 {
            return Err(MediaError::TooLarge { len });
        }
        // Base64 comes in 3-byte groups, so the cheap check above lets up to 2 bytes more through.
        let audio = decode_base64(&self.payload)?;
        if audio.len() > MAX_INBOUND_AUDIO {
            return Err(MediaError::TooLarge { len });
        }
        Ok(audio)
    }
}

/// The most mu-law bytes one inbound `media` message may carry: Twilio sends 160 (20 ms); a few
/// frames' worth allows for a gateway that batches, anything more is not a phone line.
pub const MAX_INBOUND_AUDIO: usize = 8 * 160;

/// The `dtmf` object: one key press (`0`-`9`, `*`, `#`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DtmfPayload {
    /// `inbound_track` in Twilio's messages.
    pub track: String,
    pub digit: String,
}

/// The `mark` object, both directions: the name we gave the point in our outbound audio.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarkPayload {
    pub name: String,
}

/// The `stop` object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StopMeta {
    pub account_sid: String,
    pub call_sid: String,
}

/// What Twilio sends us. Field order is Twilio's wire order (see the module doc).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "lowercase")]
pub enum InboundMessage {
    /// First message; the only one without a streamSid.
    Connected { protocol: String, version: String },
    #[serde(rename_all = "camelCase")]
    Start {
        #[serde(with = "counter")]
        sequence_number: u64,
        start: StartMeta,
        stream_sid: String,
    },
    #[serde(rename_all = "camelCase")]
    Media {
        #[serde(with = "counter")]
        sequence_number: u64,
        media: MediaPayload,
        stream_sid: String,
    },
    #[serde(rename_all = "camelCase")]
    Dtmf {
        stream_sid: String,
        #[serde(with = "counter")]
        sequence_number: u64,
        dtmf: DtmfPayload,
    },
    /// Audio before our mark has played, or was dropped by our `clear`.
    #[serde(rename_all = "camelCase")]
    Mark {
        #[serde(with = "counter")]
        sequence_number: u64,
        stream_sid: String,
        mark: MarkPayload,
    },
    /// The call ended; no more messages follow.
    #[serde(rename_all = "camelCase")]
    Stop {
        #[serde(with = "counter")]
        sequence_number: u64,
        stop: StopMeta,
        stream_sid: String,
    },
}

impl InboundMessage {
    /// The stream the message belongs to (`connected` has none).
    pub fn stream_sid(&self) -> Option<&str> {
        match self {
            InboundMessage::Connected { .. } => None,
            InboundMessage::Start { stream_sid, .. }
            | InboundMessage::Media { stream_sid, .. }
            | InboundMessage::Dtmf { stream_sid, .. }
            | InboundMessage::Mark { stream_sid, .. }
            | InboundMessage::Stop { stream_sid, .. } => Some(stream_sid),
        }
    }

    /// Twilio's exact JSON for this message (for a fake Twilio in tests).
    pub fn to_json(&self) -> String {
        // Only strings, integers, sequences and string-keyed maps: serializing cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// The `media` object of an outbound `media` message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboundMedia {
    /// Base64 of raw mu-law 8 kHz bytes (no WAV header).
    pub payload: String,
}

impl OutboundMedia {
    /// The raw mu-law bytes (what a fake Twilio would play).
    pub fn decode_audio(&self) -> Result<Vec<u8>, MediaError> {
        decode_base64(&self.payload)
    }
}

/// What we send Twilio.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "lowercase")]
pub enum OutboundMessage {
    /// Audio to append to Twilio's playback buffer.
    #[serde(rename_all = "camelCase")]
    Media {
        stream_sid: String,
        media: OutboundMedia,
    },
    /// Ask Twilio to echo `name` back once the audio queued before it has played.
    #[serde(rename_all = "camelCase")]
    Mark {
        stream_sid: String,
        mark: MarkPayload,
    },
    /// Drop all buffered audio (barge-in); Twilio then echoes every pending mark.
    #[serde(rename_all = "camelCase")]
    Clear { stream_sid: String },
}

impl OutboundMessage {
    /// A `media` message carrying raw mu-law 8 kHz bytes (no WAV header), base64-encoded.
    pub fn media(stream_sid: &str, mulaw: &[u8]) -> Self {
        OutboundMessage::Media {
            stream_sid: stream_sid.to_string(),
            media: OutboundMedia {
                payload: base64::engine::general_purpose::STANDARD.encode(mulaw),
            },
        }
    }

    pub fn mark(stream_sid: &str, name: &str) -> Self {
        OutboundMessage::Mark {
            stream_sid: stream_sid.to_string(),
            mark: MarkPayload {
                name: name.to_string(),
            },
        }
    }

    pub fn clear(stream_sid: &str) -> Self {
        OutboundMessage::Clear {
            stream_sid: stream_sid.to_string(),
        }
    }

    pub fn stream_sid(&self) -> &str {
        match self {
            OutboundMessage::Media { stream_sid, .. }
            | OutboundMessage::Mark { stream_sid, .. }
            | OutboundMessage::Clear { stream_sid } => stream_sid,
        }
    }

    /// The text frame to send.
    pub fn to_json(&self) -> String {
        // Only strings: serializing cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Parses one text frame from Twilio.
pub fn parse_inbound(text: &str) -> Result<InboundMessage, MediaError> {
    serde_json::from_str(text).map_err(|e| json_error(text, e))
}

/// Parses one text frame we sent (what a fake Twilio does with our messages).
pub fn parse_outbound(text: &str) -> Result<OutboundMessage, MediaError> {
    serde_json::from_str(text).map_err(|e| json_error(text, e))
}

/// Rejects messages for another stream (`connected` carries no streamSid and always passes).
pub fn check_stream_sid(expected: &str, msg: &InboundMessage) -> Result<(), MediaError> {
    match msg.stream_sid() {
        Some(got) if got != expected => Err(MediaError::WrongStreamSid {
            expected: expected.to_string(),
            got: got.to_string(),
        }),
        _ => Ok(()),
    }
}

fn decode_base64(payload: &str) -> Result<Vec<u8>, MediaError> {
    base64::engine::general_purpose::STANDARD
        .decode(payload)
        .map_err(|e| MediaError::Base64 {
            reason: e.to_string(),
        })
}

/// serde names the missing field or unknown variant but not which event it was parsing; add it
/// when the text is JSON with a string `event` (a second parse, only on the error path).
fn json_error(text: &str, e: serde_json::Error) -> MediaError {
    let event = serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|v| v.get("event")?.as_str().map(str::to_string));
    let reason = match event {
        Some(event) if e.is_data() => format!("{event:?} event: {e}"),
        _ => e.to_string(),
    };
    MediaError::Json { reason }
}

#[cfg(test)]
mod tests;
