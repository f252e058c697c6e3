//! Media Streams messages (bidirectional `<Connect><Stream>`), typed.
//!
//! Twilio sends counters (`sequenceNumber`, `chunk`, `timestamp`) as JSON strings; we parse them
//! to numbers and write them back as strings, so the same types can produce byte-exact Twilio
//! JSON in tests. Errors map to Twilio's codes: 31950 (binary frame), 31951 (bad message).

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// Why a message was rejected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MediaError {
    #[error("malformed message: {reason}")]
    Json { reason: String },
    #[error("media payload is not valid base64: {reason}")]
    Base64 { reason: String },
    #[error("message for stream {got}, expected {expected}")]
    WrongStreamSid { expected: String, got: String },
    #[error("binary WebSocket frames are not part of the protocol")]
    BinaryFrame,
}

impl MediaError {
    /// Twilio's error code for the same fault.
    pub fn twilio_code(&self) -> Option<u32> {
        match self {
            MediaError::BinaryFrame => Some(31950),
            _ => Some(31951),
        }
    }
}

/// Counters are strings on the wire; accept numbers too.
mod counter {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&v.to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            S(String),
            N(u64),
        }
        match Either::deserialize(d)? {
            Either::N(n) => Ok(n),
            Either::S(s) => s
                .parse()
                .map_err(|_| serde::de::Error::custom(format!("counter {s:?} is not a number"))),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MediaFormat {
    pub encoding: String,
    pub sample_rate: u32,
    pub channels: u16,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StartMeta {
    pub account_sid: String,
    pub stream_sid: String,
    pub call_sid: String,
    #[serde(default)]
    pub tracks: Vec<String>,
    pub media_format: MediaFormat,
    #[serde(default)]
    pub custom_parameters: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MediaPayload {
    pub track: String,
    #[serde(with = "counter")]
    pub chunk: u64,
    /// Milliseconds since the stream started.
    #[serde(with = "counter")]
    pub timestamp: u64,
    /// Base64 of raw mu-law bytes.
    pub payload: String,
}

impl MediaPayload {
    pub fn decode_audio(&self) -> Result<Vec<u8>, MediaError> {
        base64::engine::general_purpose::STANDARD
            .decode(&self.payload)
            .map_err(|e| MediaError::Base64 {
                reason: e.to_string(),
            })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dtmf {
    pub track: String,
    pub digit: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MarkName {
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StopMeta {
    pub account_sid: String,
    pub call_sid: String,
}

/// What Twilio sends us.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "lowercase")]
pub enum InboundMessage {
    Connected {
        protocol: String,
        version: String,
    },
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
        #[serde(with = "counter")]
        sequence_number: u64,
        dtmf: Dtmf,
        stream_sid: String,
    },
    #[serde(rename_all = "camelCase")]
    Mark {
        #[serde(with = "counter")]
        sequence_number: u64,
        mark: MarkName,
        stream_sid: String,
    },
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
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboundMedia {
    pub payload: String,
}

/// What we send Twilio.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "lowercase")]
pub enum OutboundMessage {
    #[serde(rename_all = "camelCase")]
    Media {
        stream_sid: String,
        media: OutboundMedia,
    },
    #[serde(rename_all = "camelCase")]
    Mark { stream_sid: String, mark: MarkName },
    #[serde(rename_all = "camelCase")]
    Clear { stream_sid: String },
}

impl OutboundMessage {
    /// Raw mu-law 8 kHz bytes (no WAV header), base64-encoded.
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
            mark: MarkName {
                name: name.to_string(),
            },
        }
    }

    pub fn clear(stream_sid: &str) -> Self {
        OutboundMessage::Clear {
            stream_sid: stream_sid.to_string(),
        }
    }

    pub fn to_json(&self) -> String {
        // Serialising these plain structs cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

pub fn parse_inbound(text: &str) -> Result<InboundMessage, MediaError> {
    serde_json::from_str(text).map_err(|e| MediaError::Json {
        reason: e.to_string(),
    })
}

pub fn parse_outbound(text: &str) -> Result<OutboundMessage, MediaError> {
    serde_json::from_str(text).map_err(|e| MediaError::Json {
        reason: e.to_string(),
    })
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    // The examples from Twilio's documentation (shared/docs/twilio.md).
    const CONNECTED: &str = r#"{"event":"connected","protocol":"Call","version":"1.0.0"}"#;
    const START: &str = r#"{"event":"start","sequenceNumber":"1","start":{"accountSid":"AC1","streamSid":"MZ1","callSid":"CA1","tracks":["inbound"],"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1},"customParameters":{"lead_id":"42"}},"streamSid":"MZ1"}"#;
    const MEDIA: &str = r#"{"event":"media","sequenceNumber":"4","media":{"track":"inbound","chunk":"2","timestamp":"5","payload":"//8A"},"streamSid":"MZ1"}"#;
    const DTMF: &str = r#"{"event":"dtmf","streamSid":"MZ1","sequenceNumber":"5","dtmf":{"track":"inbound_track","digit":"1"}}"#;
    const MARK: &str =
        r#"{"event":"mark","sequenceNumber":"6","streamSid":"MZ1","mark":{"name":"utt-1"}}"#;
    const STOP: &str = r#"{"event":"stop","sequenceNumber":"7","stop":{"accountSid":"AC1","callSid":"CA1"},"streamSid":"MZ1"}"#;

    #[test]
    fn documented_messages_parse() {
        assert!(
            matches!(parse_inbound(CONNECTED).unwrap(), InboundMessage::Connected { version, .. } if version == "1.0.0")
        );
        match parse_inbound(START).unwrap() {
            InboundMessage::Start {
                sequence_number,
                start,
                stream_sid,
            } => {
                assert_eq!(sequence_number, 1);
                assert_eq!(stream_sid, "MZ1");
                assert_eq!(start.call_sid, "CA1");
                assert_eq!(start.media_format.sample_rate, 8000);
                assert_eq!(start.custom_parameters["lead_id"], "42");
            }
            other => panic!("{other:?}"),
        }
        match parse_inbound(MEDIA).unwrap() {
            InboundMessage::Media {
                media,
                sequence_number,
                ..
            } => {
                assert_eq!((sequence_number, media.chunk, media.timestamp), (4, 2, 5));
                assert_eq!(media.decode_audio().unwrap(), vec![0xFF, 0xFF, 0x00]);
            }
            other => panic!("{other:?}"),
        }
        assert!(
            matches!(parse_inbound(DTMF).unwrap(), InboundMessage::Dtmf { dtmf, .. } if dtmf.digit == "1")
        );
        assert!(
            matches!(parse_inbound(MARK).unwrap(), InboundMessage::Mark { mark, .. } if mark.name == "utt-1")
        );
        assert!(
            matches!(parse_inbound(STOP).unwrap(), InboundMessage::Stop { stop, .. } if stop.call_sid == "CA1")
        );
    }

    #[test]
    fn inbound_round_trips_to_the_same_json() {
        for text in [CONNECTED, START, MEDIA, DTMF, MARK, STOP] {
            let msg = parse_inbound(text).unwrap();
            let back: Value = serde_json::from_str(&serde_json::to_string(&msg).unwrap()).unwrap();
            let orig: Value = serde_json::from_str(text).unwrap();
            assert_eq!(back, orig, "{text}");
        }
    }

    #[test]
    fn outbound_shapes_match_twilio() {
        let media: Value =
            serde_json::from_str(&OutboundMessage::media("MZ1", &[0xFF, 0xFF, 0x00]).to_json())
                .unwrap();
        assert_eq!(
            media,
            json!({"event":"media","streamSid":"MZ1","media":{"payload":"//8A"}})
        );
        let mark: Value =
            serde_json::from_str(&OutboundMessage::mark("MZ1", "s1c0").to_json()).unwrap();
        assert_eq!(
            mark,
            json!({"event":"mark","streamSid":"MZ1","mark":{"name":"s1c0"}})
        );
        let clear: Value = serde_json::from_str(&OutboundMessage::clear("MZ1").to_json()).unwrap();
        assert_eq!(clear, json!({"event":"clear","streamSid":"MZ1"}));
        let m = OutboundMessage::mark("MZ1", "x");
        assert_eq!(parse_outbound(&m.to_json()).unwrap(), m);
    }

    #[test]
    fn bad_input_gives_clear_errors() {
        let e = parse_inbound("{not json").unwrap_err();
        assert!(matches!(e, MediaError::Json { .. }));
        assert_eq!(e.twilio_code(), Some(31951));
        let e = parse_inbound(r#"{"event":"bogus"}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("bogus"), "{e}");
        let e = parse_inbound(r#"{"event":"media","sequenceNumber":"4","streamSid":"MZ1"}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("media"), "missing field named: {e}");
        let e = parse_inbound(&MEDIA.replace("\"4\"", "\"four\""))
            .unwrap_err()
            .to_string();
        assert!(e.contains("four"), "{e}");
        match parse_inbound(&MEDIA.replace("//8A", "%%%")).unwrap() {
            InboundMessage::Media { media, .. } => assert!(matches!(
                media.decode_audio(),
                Err(MediaError::Base64 { .. })
            )),
            other => panic!("{other:?}"),
        }
        let msg = parse_inbound(MARK).unwrap();
        assert!(check_stream_sid("MZ1", &msg).is_ok());
        assert!(matches!(
            check_stream_sid("MZ2", &msg),
            Err(MediaError::WrongStreamSid { .. })
        ));
        assert!(check_stream_sid("MZ2", &parse_inbound(CONNECTED).unwrap()).is_ok());
        assert_eq!(MediaError::BinaryFrame.twilio_code(), Some(31950));
    }

    #[test]
    fn truncated_messages_never_panic() {
        for text in [START, MEDIA, DTMF, MARK, STOP] {
            for cut in 0..text.len() {
                let _ = parse_inbound(&text[..cut]);
            }
        }
    }
}
