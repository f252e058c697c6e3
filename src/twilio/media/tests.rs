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
fn a_payload_of_more_than_a_few_frames_is_refused_undecoded() {
    let media = |bytes: usize| MediaPayload {
        track: "inbound".into(),
        chunk: 1,
        timestamp: 0,
        payload: base64::engine::general_purpose::STANDARD.encode(vec![0xFFu8; bytes]),
    };
    assert_eq!(
        media(MAX_INBOUND_AUDIO).decode_audio().unwrap().len(),
        MAX_INBOUND_AUDIO
    );
    // One byte over: same base64 length bucket as the limit, refused after decoding.
    for over in [1, 3] {
        let err = media(MAX_INBOUND_AUDIO + over).decode_audio().unwrap_err();
        assert!(matches!(err, MediaError::TooLarge { .. }), "{err}");
    }
    let err = media(MAX_INBOUND_AUDIO + 3).decode_audio().unwrap_err();
    assert_eq!(err.twilio_code(), Some(31951));
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
