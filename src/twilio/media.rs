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
}

impl MediaError {
    /// Twilio's error code for the same fault (31950 binary frame, 31951 anything else), so our
    /// logs and the fake Twilio speak the codes an operator would look up.
    pub fn twilio_code(&self) -> Option<u32> {
        match self {
            MediaError::BinaryFrame => Some(31950),
            MediaError::Json { .. }
            | MediaError::Base64 { .. }
            | MediaError::WrongStreamSid { .. } => Some(31951),
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
    /// The raw mu-law bytes.
    pub fn decode_audio(&self) -> Result<Vec<u8>, MediaError> {
        decode_base64(&self.payload)
    }
}

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
mod tests {
    use super::*;
    use serde_json::{json, Value};

    // Verbatim from shared/docs/twilio.md (placeholders included: they are just strings).
    const DOC_CONNECTED: &str = r#"{"event":"connected","protocol":"Call","version":"1.0.0"}"#;
    const DOC_START: &str = r#"{"event":"start","sequenceNumber":"1","start":{"accountSid":"AC..","streamSid":"MZ..","callSid":"CA..","tracks":["inbound"],"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1},"customParameters":{"lead_id":"42"}},"streamSid":"MZ.."}"#;
    const DOC_MEDIA: &str = r#"{"event":"media","sequenceNumber":"4","media":{"track":"inbound","chunk":"2","timestamp":"5","payload":"<base64 mu-law>"},"streamSid":"MZ.."}"#;
    const DOC_DTMF: &str = r#"{"event":"dtmf","streamSid":"MZ..","sequenceNumber":"5","dtmf":{"track":"inbound_track","digit":"1"}}"#;
    const DOC_MARK: &str =
        r#"{"event":"mark","sequenceNumber":"6","streamSid":"MZ..","mark":{"name":"utt-1"}}"#;
    const DOC_STOP: &str = r#"{"event":"stop","sequenceNumber":"7","stop":{"accountSid":"AC..","callSid":"CA.."},"streamSid":"MZ.."}"#;
    const DOC_INBOUND: [&str; 6] = [
        DOC_CONNECTED,
        DOC_START,
        DOC_MEDIA,
        DOC_DTMF,
        DOC_MARK,
        DOC_STOP,
    ];

    // The doc's outbound shapes.
    const DOC_OUT_MEDIA: &str = r#"{"event":"media","streamSid":"MZ..","media":{"payload":"<base64 raw mu-law 8000 Hz, no WAV header>"}}"#;
    const DOC_OUT_MARK: &str = r#"{"event":"mark","streamSid":"MZ..","mark":{"name":"utt-1"}}"#;
    const DOC_OUT_CLEAR: &str = r#"{"event":"clear","streamSid":"MZ.."}"#;

    /// A realistic media frame: 160 bytes of mu-law silence (0xFF).
    fn real_media() -> String {
        let payload = base64::engine::general_purpose::STANDARD.encode([0xFFu8; 160]);
        DOC_MEDIA
            .replace("<base64 mu-law>", &payload)
            .replace("MZ..", "MZ0123456789abcdef0123456789abcdef")
    }

    #[test]
    fn documented_inbound_messages_parse_to_the_right_values() {
        assert_eq!(
            parse_inbound(DOC_CONNECTED).unwrap(),
            InboundMessage::Connected {
                protocol: "Call".into(),
                version: "1.0.0".into()
            }
        );
        assert_eq!(
            parse_inbound(DOC_START).unwrap(),
            InboundMessage::Start {
                sequence_number: 1,
                stream_sid: "MZ..".into(),
                start: StartMeta {
                    account_sid: "AC..".into(),
                    stream_sid: "MZ..".into(),
                    call_sid: "CA..".into(),
                    tracks: vec!["inbound".into()],
                    media_format: MediaFormat {
                        encoding: "audio/x-mulaw".into(),
                        sample_rate: 8000,
                        channels: 1
                    },
                    custom_parameters: [("lead_id".to_string(), "42".to_string())].into(),
                },
            }
        );
        assert_eq!(
            parse_inbound(DOC_MEDIA).unwrap(),
            InboundMessage::Media {
                sequence_number: 4,
                stream_sid: "MZ..".into(),
                media: MediaPayload {
                    track: "inbound".into(),
                    chunk: 2,
                    timestamp: 5,
                    payload: "<base64 mu-law>".into()
                },
            }
        );
        assert_eq!(
            parse_inbound(DOC_DTMF).unwrap(),
            InboundMessage::Dtmf {
                sequence_number: 5,
                stream_sid: "MZ..".into(),
                dtmf: DtmfPayload {
                    track: "inbound_track".into(),
                    digit: "1".into()
                },
            }
        );
        assert_eq!(
            parse_inbound(DOC_MARK).unwrap(),
            InboundMessage::Mark {
                sequence_number: 6,
                stream_sid: "MZ..".into(),
                mark: MarkPayload {
                    name: "utt-1".into()
                },
            }
        );
        assert_eq!(
            parse_inbound(DOC_STOP).unwrap(),
            InboundMessage::Stop {
                sequence_number: 7,
                stream_sid: "MZ..".into(),
                stop: StopMeta {
                    account_sid: "AC..".into(),
                    call_sid: "CA..".into()
                },
            }
        );
        for text in DOC_INBOUND {
            let msg = parse_inbound(text).unwrap();
            let want = (text != DOC_CONNECTED).then_some("MZ..");
            assert_eq!(msg.stream_sid(), want, "{text}");
        }
    }

    #[test]
    fn media_payload_decodes_to_mulaw_bytes() {
        match parse_inbound(&real_media()).unwrap() {
            InboundMessage::Media { media, .. } => {
                assert_eq!(media.decode_audio().unwrap(), vec![0xFF; 160]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn inbound_serializes_byte_exact_and_round_trips() {
        for text in DOC_INBOUND.iter().copied().chain([real_media().as_str()]) {
            let msg = parse_inbound(text).unwrap();
            assert_eq!(msg.to_json(), text, "byte-exact Twilio JSON");
            assert_eq!(parse_inbound(&msg.to_json()).unwrap(), msg);
        }
        // Start without the optional fields still round-trips (defaults are written out).
        let bare = r#"{"event":"start","sequenceNumber":"1","start":{"accountSid":"AC1","streamSid":"MZ1","callSid":"CA1","mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1}},"streamSid":"MZ1"}"#;
        let msg = parse_inbound(bare).unwrap();
        assert_eq!(parse_inbound(&msg.to_json()).unwrap(), msg);
    }

    #[test]
    fn counters_accept_numbers_and_are_written_as_strings() {
        let text = r#"{"event":"media","sequenceNumber":4,"media":{"track":"inbound","chunk":2,"timestamp":18446744073709551615,"payload":""},"streamSid":"MZ1"}"#;
        let msg = parse_inbound(text).unwrap();
        match &msg {
            InboundMessage::Media {
                sequence_number,
                media,
                ..
            } => assert_eq!(
                (*sequence_number, media.chunk, media.timestamp),
                (4, 2, u64::MAX)
            ),
            other => panic!("{other:?}"),
        }
        let v: Value = serde_json::from_str(&msg.to_json()).unwrap();
        assert_eq!(v["sequenceNumber"], json!("4"));
        assert_eq!(v["media"]["timestamp"], json!("18446744073709551615"));
        for bad in [
            r#""-1""#, "-1", r#""+4""#, r#""""#, r#""1.5""#, "1.5", "true", "null",
        ] {
            let text = DOC_MARK.replace(r#""6""#, bad);
            let e = parse_inbound(&text).unwrap_err();
            assert!(matches!(e, MediaError::Json { .. }), "{bad}: {e:?}");
        }
        let e = parse_inbound(&DOC_MARK.replace(r#""6""#, r#""99999999999999999999""#))
            .unwrap_err()
            .to_string();
        assert!(e.contains("out of range"), "{e}");
    }

    #[test]
    fn outbound_matches_the_documented_shapes() {
        let doc_payload = "<base64 raw mu-law 8000 Hz, no WAV header>";
        let as_value = |m: &OutboundMessage| serde_json::from_str::<Value>(&m.to_json()).unwrap();
        let doc = |s: &str| serde_json::from_str::<Value>(s).unwrap();

        let media = OutboundMessage::Media {
            stream_sid: "MZ..".into(),
            media: OutboundMedia {
                payload: doc_payload.into(),
            },
        };
        assert_eq!(as_value(&media), doc(DOC_OUT_MEDIA));
        assert_eq!(
            as_value(&OutboundMessage::mark("MZ..", "utt-1")),
            doc(DOC_OUT_MARK)
        );
        assert_eq!(
            as_value(&OutboundMessage::clear("MZ..")),
            doc(DOC_OUT_CLEAR)
        );
        // Byte-exact too.
        assert_eq!(media.to_json(), DOC_OUT_MEDIA);
        assert_eq!(
            OutboundMessage::mark("MZ..", "utt-1").to_json(),
            DOC_OUT_MARK
        );
        assert_eq!(OutboundMessage::clear("MZ..").to_json(), DOC_OUT_CLEAR);

        let m = OutboundMessage::media("MZ1", &[0xFF, 0x7F, 0x00]);
        assert_eq!(
            as_value(&m),
            json!({"event":"media","streamSid":"MZ1","media":{"payload":"/38A"}})
        );
        assert_eq!(m.stream_sid(), "MZ1");
        match parse_outbound(&m.to_json()).unwrap() {
            OutboundMessage::Media { media, .. } => {
                assert_eq!(media.decode_audio().unwrap(), vec![0xFF, 0x7F, 0x00])
            }
            other => panic!("{other:?}"),
        }
        for m in [
            m.clone(),
            OutboundMessage::mark("MZ1", "s1c0"),
            OutboundMessage::clear("MZ1"),
        ] {
            assert_eq!(parse_outbound(&m.to_json()).unwrap(), m);
        }
        for text in [DOC_OUT_MEDIA, DOC_OUT_MARK, DOC_OUT_CLEAR] {
            assert_eq!(parse_outbound(text).unwrap().to_json(), text);
        }
    }

    fn json_reason(r: Result<impl fmt::Debug, MediaError>) -> String {
        match r {
            Err(e @ MediaError::Json { .. }) => {
                assert_eq!(e.twilio_code(), Some(31951));
                e.to_string()
            }
            other => panic!("expected MediaError::Json, got {other:?}"),
        }
    }

    #[test]
    fn bad_input_gives_the_right_error() {
        let e = json_reason(parse_inbound("{not json"));
        assert!(e.contains("key must be a string"), "{e}");
        let e = json_reason(parse_inbound(""));
        assert!(e.contains("EOF"), "{e}");
        let e = json_reason(parse_inbound("[]"));
        assert!(e.contains("missing field `event`"), "{e}");
        let e = json_reason(parse_inbound("42"));
        assert!(e.contains("invalid type: integer `42`"), "{e}");
        let e = json_reason(parse_inbound(r#"{"protocol":"Call","version":"1.0.0"}"#));
        assert!(e.contains("missing field `event`"), "{e}");
        let e = json_reason(parse_inbound(r#"{"event":"bogus","streamSid":"MZ1"}"#));
        assert!(e.contains("unknown variant `bogus`"), "{e}");
        let e = json_reason(parse_inbound(
            r#"{"event":"media","sequenceNumber":"4","streamSid":"MZ1"}"#,
        ));
        assert!(e.contains(r#""media" event: missing field `media`"#), "{e}");
        let e = json_reason(parse_inbound(&DOC_STOP.replace(r#","callSid":"CA..""#, "")));
        assert!(
            e.contains(r#""stop" event: missing field `callSid`"#),
            "{e}"
        );
        let e = json_reason(parse_inbound(
            &DOC_MARK.replace(r#""streamSid":"MZ..","#, ""),
        ));
        assert!(e.contains("missing field `streamSid`"), "{e}");
        let e = json_reason(parse_inbound(&DOC_MEDIA.replace(r#""4""#, r#""four""#)));
        assert!(e.contains(r#"counter "four""#), "{e}");
        let e = json_reason(parse_inbound(
            &DOC_START.replace(r#""sampleRate":8000"#, r#""sampleRate":"8000""#),
        ));
        assert!(e.contains("invalid type"), "{e}");
        // Our own outbound types do not parse as inbound, and vice versa.
        json_reason(parse_inbound(DOC_OUT_CLEAR));
        json_reason(parse_outbound(DOC_CONNECTED));
        let e = json_reason(parse_outbound(r#"{"event":"mark","streamSid":"MZ1"}"#));
        assert!(e.contains("missing field `mark`"), "{e}");
    }

    #[test]
    fn bad_base64_is_a_base64_error() {
        for bad in ["%%%", "//8", "//8A=", r"//8A\n"] {
            let text = DOC_MEDIA.replace("<base64 mu-law>", bad);
            match parse_inbound(&text).unwrap() {
                InboundMessage::Media { media, .. } => {
                    let e = media.decode_audio().unwrap_err();
                    assert!(matches!(e, MediaError::Base64 { .. }), "{bad}: {e:?}");
                    assert_eq!(e.twilio_code(), Some(31951));
                }
                other => panic!("{other:?}"),
            }
        }
        let out = OutboundMedia {
            payload: "!".into(),
        };
        assert!(matches!(out.decode_audio(), Err(MediaError::Base64 { .. })));
    }

    #[test]
    fn stream_sid_is_checked() {
        let msg = parse_inbound(DOC_MARK).unwrap();
        assert_eq!(check_stream_sid("MZ..", &msg), Ok(()));
        let e = check_stream_sid("MZ2", &msg).unwrap_err();
        assert_eq!(
            e,
            MediaError::WrongStreamSid {
                expected: "MZ2".into(),
                got: "MZ..".into()
            }
        );
        assert_eq!(e.twilio_code(), Some(31951));
        assert_eq!(
            check_stream_sid("MZ2", &parse_inbound(DOC_CONNECTED).unwrap()),
            Ok(())
        );
        assert_eq!(MediaError::BinaryFrame.twilio_code(), Some(31950));
    }

    #[test]
    fn truncated_and_mutated_messages_never_panic() {
        let unicode = DOC_START.replace("\"42\"", "\"Jürgen 🚀\"");
        let media = real_media();
        let texts = DOC_INBOUND
            .iter()
            .copied()
            .chain([unicode.as_str(), media.as_str()])
            .chain([DOC_OUT_MEDIA, DOC_OUT_MARK, DOC_OUT_CLEAR]);
        let mut rng: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            // xorshift64: deterministic, dependency-free.
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        for text in texts {
            for (cut, _) in text.char_indices() {
                let prefix = &text[..cut];
                assert!(parse_inbound(prefix).is_err(), "prefix parsed: {prefix}");
                assert!(parse_outbound(prefix).is_err(), "prefix parsed: {prefix}");
            }
            // Random single-byte mutations (kept valid UTF-8 by using ASCII replacements).
            let bytes = text.as_bytes();
            for _ in 0..500 {
                let mut b = bytes.to_vec();
                let i = (next() as usize) % b.len();
                if !b[i].is_ascii() {
                    continue;
                }
                b[i] = b" \"{}[]:,0123456789aez\\-"[(next() as usize) % 23];
                let s = String::from_utf8(b).unwrap();
                if let Ok(InboundMessage::Media { media, .. }) = parse_inbound(&s) {
                    let _ = media.decode_audio();
                }
                let _ = parse_outbound(&s);
            }
        }
    }
}
