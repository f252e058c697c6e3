//! The simulated caller against a tiny agent that pads with silent frames like a pacer: it
//! talks for a second, then answers each caller utterance 500 ms after it ends.

use std::time::Duration;

use base64::Engine as _;
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use super::*;
use crate::audio::vad::frame_dbfs;

const ANSWER_DELAY_FRAMES: usize = 25;

fn tone(ms: usize) -> Vec<i16> {
    (0..ms * 8)
        .map(|i| (6000.0 * (2.0 * std::f32::consts::PI * 300.0 * i as f32 / 8000.0).sin()) as i16)
        .collect()
}

/// Serves one call; returns the `ws://` URL.
async fn agent() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
        let (mut tx, mut rx) = ws.split();
        let mut sid = String::new();
        while let Some(Ok(Message::Text(t))) = rx.next().await {
            let v: Value = serde_json::from_str(&t).unwrap();
            if v["event"] == "start" {
                sid = v["streamSid"].as_str().unwrap().to_string();
                break;
            }
        }
        let b64 = base64::engine::general_purpose::STANDARD;
        // Frames to send, in order; silence padding when empty.
        let mut queue: std::collections::VecDeque<Vec<i16>> =
            tone(1000).chunks(160).map(|c| c.to_vec()).collect();
        let (mut caller_loud, mut quiet_run) = (false, 0usize);
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        loop {
            tokio::select! {
                msg = rx.next() => {
                    let Some(Ok(Message::Text(t))) = msg else { break };
                    let v: Value = serde_json::from_str(&t).unwrap_or_default();
                    if v["event"] == "media" {
                        let pcm = crate::audio::mulaw::decode(&b64.decode(v["media"]["payload"].as_str().unwrap()).unwrap());
                        // Louder than any line noise the tests use.
                        if frame_dbfs(&pcm) > -30.0 {
                            caller_loud = true;
                            quiet_run = 0;
                        } else if caller_loud {
                            quiet_run += 1;
                            if quiet_run == 1 {
                                caller_loud = false;
                                queue.extend(std::iter::repeat_n(vec![0i16; 160], ANSWER_DELAY_FRAMES));
                                queue.extend(tone(600).chunks(160).map(|c| c.to_vec()));
                            }
                        }
                    }
                }
                _ = tick.tick() => {
                    let frame = queue.pop_front().unwrap_or_else(|| vec![0i16; 160]);
                    let payload = b64.encode(crate::audio::mulaw::encode(&frame));
                    let m = json!({"event": "media", "streamSid": sid, "media": {"payload": payload}});
                    if tx.send(Message::Text(m.to_string().into())).await.is_err() {
                        break;
                    }
                }
            }
        }
    });
    url
}

fn voice(ms: usize) -> Vec<i16> {
    (0..ms * 8)
        .map(|i| (9000.0 * (2.0 * std::f32::consts::PI * 180.0 * i as f32 / 8000.0).sin()) as i16)
        .collect()
}

#[tokio::test]
async fn over_turns_noise_and_waits_that_see_through_padding() {
    let url = agent().await;
    let steps = vec![
        CallerStep::Noise(Some(-40.0)),
        // 300 ms into the agent's first line.
        CallerStep::Over {
            after: Duration::from_millis(300),
            max: Duration::from_secs(5),
        },
        CallerStep::Turn("hello".into()),
        CallerStep::Say(voice(400)),
        // The agent's padding is not talk: this ends 700 ms after its answer (longer than the
        // 500 ms the agent waits before answering, or it would end in that gap).
        CallerStep::WaitForAgent {
            quiet: Duration::from_millis(700),
            max: Duration::from_secs(10),
        },
        CallerStep::Turn("two parts".into()),
        CallerStep::Say(voice(300)),
        CallerStep::Say(voice(300)),
        CallerStep::WaitForAgent {
            quiet: Duration::from_millis(400),
            max: Duration::from_secs(10),
        },
        CallerStep::Noise(None),
        CallerStep::Silence(Duration::from_millis(200)),
    ];
    let report = run_call(&url, &SimCall::random(), steps).await.unwrap();

    // The first line started 300 ms after the agent's speech did (ticks are 20 ms).
    let loud = measure::loud_times(&report.agent_track);
    let onset = loud[0];
    let start = report.caller_speech_starts[0];
    assert!(
        (onset + 300..=onset + 340).contains(&start),
        "onset {onset}, start {start}"
    );
    // Two turns, the second made of two lines.
    assert_eq!(report.turns.len(), 2, "{:?}", report.turns);
    assert_eq!(report.turns[0].label, "hello");
    assert_eq!(report.turns[1].start_ms, report.caller_speech_starts[1]);
    assert_eq!(report.turns[1].end_ms, report.caller_speech_ends[2]);
    // The second turn started only once the agent's answer had been quiet 700 ms, although
    // padding frames kept arriving.
    let answer_end = *loud
        .iter()
        .rfind(|&&t| t < report.turns[1].start_ms)
        .unwrap();
    assert!(
        report.turns[1].start_ms >= answer_end + 700,
        "{answer_end} {:?}",
        report.turns
    );
    // Latency at the ear: none over the agent's own line; then the answer 500 ms after the
    // turn, whatever the padding.
    let timings = report.turn_timings();
    assert_eq!(timings.len(), 2);
    assert!(timings[0].over_line, "{timings:?}");
    assert_eq!(timings[0].latency_ms, None);
    let t = &timings[1];
    let l = t.latency_ms.unwrap();
    assert!((440..=620).contains(&l), "{t:?}");
    assert_eq!(t.dead_air_ms, l);
    assert_eq!(report.response_latencies_ms().len(), 3);
    // Line noise sat under the silence until it was switched off.
    let frame = |ms: u64| {
        let i = (ms / 20 - 1) as usize * 160;
        frame_dbfs(&report.caller_track[i..i + 160])
    };
    assert!((frame(100) + 40.0).abs() < 3.0, "{}", frame(100));
    let last = report.caller_track.len() / 160 * 20;
    assert!(frame(last as u64) < -90.0, "{}", frame(last as u64));
}
