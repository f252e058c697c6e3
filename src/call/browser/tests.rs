use super::*;
use crate::twilio::media::{check_stream_sid, parse_inbound};

const CALL: &str = "CA0123456789abcdef0123456789abcdef";
const STREAM: &str = "MZ0123456789abcdef0123456789abcdef";
const ACCOUNT: &str = "AC00000000000000000000000000000000";

fn uplink() -> Uplink {
    Uplink::new(CALL, STREAM, ACCOUNT)
}

fn le(samples: &[i16]) -> Vec<u8> {
    samples.iter().flat_map(|s| s.to_le_bytes()).collect()
}

/// A ramp that crosses zero, so sign and magnitude both matter.
fn ramp(n: usize, from: i16) -> Vec<i16> {
    (0..n)
        .map(|i| from.wrapping_add((i as i16).wrapping_mul(97)))
        .collect()
}

/// The session's view of a forwarded message (and it is for our stream).
fn parsed(json: &str) -> InboundMessage {
    let m = parse_inbound(json).unwrap();
    check_stream_sid(STREAM, &m).unwrap();
    m
}

fn media(json: &str) -> (u64, u64, u64, Vec<u8>) {
    match parsed(json) {
        InboundMessage::Media {
            sequence_number,
            media,
            ..
        } => (
            sequence_number,
            media.chunk,
            media.timestamp,
            media.decode_audio().unwrap(),
        ),
        other => panic!("not media: {other:?}"),
    }
}

#[test]
fn the_stream_opens_with_connected_then_start_for_the_registered_call() {
    let mut up = uplink();
    let params = BTreeMap::from([("campaign_id".to_string(), "solar".to_string())]);
    let [connected, start] = up.opening(params.clone());
    assert!(matches!(
        parse_inbound(&connected).unwrap(),
        InboundMessage::Connected { .. }
    ));
    match parsed(&start) {
        InboundMessage::Start {
            sequence_number,
            start,
            stream_sid,
        } => {
            assert_eq!(sequence_number, 1);
            assert_eq!(stream_sid, STREAM);
            assert_eq!(start.call_sid, CALL);
            assert_eq!(start.account_sid, ACCOUNT);
            assert_eq!(start.media_format.sample_rate, 8000);
            assert_eq!(start.media_format.encoding, "audio/x-mulaw");
            assert_eq!(start.custom_parameters, params);
        }
        other => panic!("not start: {other:?}"),
    }
}

#[test]
fn each_20_ms_of_pcm_becomes_one_media_frame_with_counters_that_count_on() {
    let mut up = uplink();
    let _ = up.opening(BTreeMap::new());
    let a = ramp(160, -8000);
    let b = ramp(160, 3000);
    let mut frames = up.audio(&le(&a)).unwrap();
    frames.extend(up.audio(&le(&b)).unwrap());
    assert_eq!(frames.len(), 2);
    assert_eq!(media(&frames[0]), (2, 1, 0, mulaw::encode(&a)));
    assert_eq!(media(&frames[1]), (3, 2, 20, mulaw::encode(&b)));
}

#[test]
fn any_even_length_is_rechunked_into_whole_frames_and_nothing_is_lost() {
    let mut up = uplink();
    let pcm = ramp(160 * 5 + 37, -20000);
    let bytes = le(&pcm);
    // Odd-sized pieces of samples (even bytes): 50, 135, 1, 300, ... samples.
    let mut frames = Vec::new();
    let mut at = 0;
    for n in [50usize, 135, 1, 300, 160, 151].iter().cycle() {
        if at >= bytes.len() {
            break;
        }
        let end = (at + n * 2).min(bytes.len());
        frames.extend(up.audio(&bytes[at..end]).unwrap());
        at = end;
    }
    assert_eq!(frames.len(), 5, "whole frames only; 37 samples wait");
    let mut heard = Vec::new();
    for (i, f) in frames.iter().enumerate() {
        let (_, chunk, timestamp, audio) = media(f);
        assert_eq!((chunk, timestamp), (i as u64 + 1, i as u64 * 20));
        assert_eq!(audio.len(), 160);
        heard.extend(audio);
    }
    assert_eq!(heard, mulaw::encode(&pcm[..800]));
}

#[test]
fn odd_and_oversized_audio_is_refused_without_losing_the_carry() {
    let mut up = uplink();
    assert!(up.audio(&le(&ramp(100, 0))).unwrap().is_empty());
    assert_eq!(up.audio(&[1, 2, 3]), Err(BrowserError::OddLength(3)));
    let big = vec![0u8; MAX_AUDIO_BYTES + 2];
    assert!(matches!(
        up.audio(&big),
        Err(BrowserError::TooLarge { kind: "audio", .. })
    ));
    // The 100 samples before are still there: 60 more complete a frame.
    assert_eq!(up.audio(&le(&ramp(60, 0))).unwrap().len(), 1);
    assert!(up.audio(&[]).unwrap().is_empty());
}

#[test]
fn marks_keys_and_the_hang_up_become_twilio_messages() {
    let mut up = uplink();
    let _ = up.opening(BTreeMap::new());
    let Some(Upstream::Forward(mark)) = up.text(r#"{"event":"mark","name":"s1c0"}"#).unwrap()
    else {
        panic!("a mark is forwarded")
    };
    match parsed(&mark) {
        InboundMessage::Mark {
            sequence_number,
            mark,
            ..
        } => assert_eq!((sequence_number, mark.name.as_str()), (2, "s1c0")),
        other => panic!("not a mark: {other:?}"),
    }
    let Some(Upstream::Forward(key)) = up.text(r#"{"event":"dtmf","digit":"9"}"#).unwrap() else {
        panic!("a key is forwarded")
    };
    match parsed(&key) {
        InboundMessage::Dtmf { dtmf, .. } => assert_eq!(dtmf.digit, "9"),
        other => panic!("not dtmf: {other:?}"),
    }
    for bad in ["99", "a", "", "١"] {
        let text = serde_json::json!({"event": "dtmf", "digit": bad}).to_string();
        assert_eq!(up.text(&text), Err(BrowserError::Digit(bad.into())));
    }
    let Some(Upstream::Stop(stop)) = up.text(r#"{"event":"hangup"}"#).unwrap() else {
        panic!("the hang-up stops the stream")
    };
    match parsed(&stop) {
        InboundMessage::Stop { stop, .. } => assert_eq!(stop.call_sid, CALL),
        other => panic!("not stop: {other:?}"),
    }
    // Nothing follows a stop, not even a second one.
    assert_eq!(up.text(r#"{"event":"hangup"}"#), Ok(None));
    assert_eq!(up.text(r#"{"event":"mark","name":"s1c1"}"#), Ok(None));
    assert!(up.audio(&le(&ramp(320, 0))).unwrap().is_empty());
    assert_eq!(up.stop(), None);
}

#[test]
fn the_socket_closing_stops_the_stream_once() {
    let mut up = uplink();
    assert!(up
        .stop()
        .is_some_and(|s| matches!(parsed(&s), InboundMessage::Stop { .. })));
    assert_eq!(up.stop(), None);
}

#[test]
fn malformed_unknown_and_oversized_texts_are_refused() {
    let mut up = uplink();
    for bad in [
        "not json",
        r#"{"event":"media"}"#,
        r#"{"event":"mark"}"#,
        r#"{"name":"x"}"#,
    ] {
        assert!(matches!(up.text(bad), Err(BrowserError::Json(_))), "{bad}");
    }
    let long = format!(
        r#"{{"event":"mark","name":"{}"}}"#,
        "x".repeat(MAX_TEXT_BYTES)
    );
    assert!(matches!(
        up.text(&long),
        Err(BrowserError::TooLarge { kind: "text", .. })
    ));
    let name = format!(r#"{{"event":"mark","name":"{}"}}"#, "x".repeat(100));
    assert!(matches!(
        up.text(&name),
        Err(BrowserError::TooLarge {
            kind: "mark name",
            ..
        })
    ));
}

#[test]
fn the_sessions_media_marks_and_clear_reach_the_browser_as_pcm_and_small_texts() {
    let pcm = ramp(160, -12000);
    let code = mulaw::encode(&pcm);
    let Downstream::Audio(bytes) =
        downstream(&OutboundMessage::media(STREAM, &code).to_json()).unwrap()
    else {
        panic!("media is audio")
    };
    assert_eq!(bytes, le(&mulaw::decode(&code)));
    assert_eq!(bytes.len(), 320);
    assert_eq!(
        downstream(&OutboundMessage::mark(STREAM, "s2end").to_json()).unwrap(),
        Downstream::Text(r#"{"event":"mark","name":"s2end"}"#.into())
    );
    assert_eq!(
        downstream(&OutboundMessage::clear(STREAM).to_json()).unwrap(),
        Downstream::Text(r#"{"event":"clear"}"#.into())
    );
    assert!(downstream("{").is_err());
    let call: serde_json::Value = serde_json::from_str(&call_message(CALL)).unwrap();
    assert_eq!(call, serde_json::json!({"event": "call", "call_sid": CALL}));
}
