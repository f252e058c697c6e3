use super::*;

const F: u64 = FRAME_SAMPLES as u64;

/// Pushes frames whose samples all equal the frame's index, so audio can be traced back.
/// Returns (samples seen after the push, event).
fn run(ep: &mut Endpointer, pattern: &[(bool, u32)]) -> Vec<(u64, VadEvent)> {
    let mut out = Vec::new();
    for &(speech, frames) in pattern {
        for _ in 0..frames {
            let index = (ep.samples_seen() / F) as i16;
            for e in ep.push(&[index; FRAME_SAMPLES], speech) {
                out.push((ep.samples_seen(), e));
            }
        }
    }
    out
}

fn kinds(events: &[(u64, VadEvent)]) -> Vec<&'static str> {
    events
        .iter()
        .map(|(_, e)| match e {
            VadEvent::SpeechStarted { .. } => "start",
            VadEvent::SilenceStarted { .. } => "silence",
            VadEvent::SpeechResumed { .. } => "resume",
            VadEvent::UtteranceEnded { .. } => "end",
        })
        .collect()
}

fn ended(event: &VadEvent) -> (u64, u64, &[i16]) {
    match event {
        VadEvent::UtteranceEnded {
            start_sample,
            end_sample,
            audio,
        } => (*start_sample, *end_sample, audio),
        other => panic!("expected UtteranceEnded, got {other:?}"),
    }
}

#[test]
fn a_blip_shorter_than_min_speech_is_ignored() {
    let mut ep = Endpointer::new(EndpointConfig::default());
    let events = run(&mut ep, &[(false, 10), (true, 2), (false, 40)]);
    assert!(events.is_empty(), "{events:?}");
    assert!(!ep.is_in_speech());
    // Blips further apart than the start window never add up either.
    let events = run(&mut ep, &[(true, 2), (false, 5), (true, 2), (false, 5)]);
    assert!(events.is_empty(), "{events:?}");
}

#[test]
fn flickering_speech_starts_at_its_first_speech_frame() {
    let mut ep = Endpointer::new(EndpointConfig::default());
    // 60 ms of speech within 120 ms: frames 10, 12, 14.
    let events = run(
        &mut ep,
        &[(false, 10), (true, 1), (false, 1), (true, 1), (false, 1)],
    );
    assert!(events.is_empty());
    let events = run(&mut ep, &[(true, 1)]);
    assert_eq!(
        events,
        vec![(15 * F, VadEvent::SpeechStarted { at_sample: 10 * F })]
    );
    assert_eq!(ep.speech_ms(), 60);
}

#[test]
fn speech_then_silence_ends_exactly_at_the_endpoint_with_pre_roll() {
    let mut ep = Endpointer::new(EndpointConfig::default());
    let events = run(&mut ep, &[(false, 20), (true, 50), (false, 30)]);
    assert_eq!(kinds(&events), ["start", "silence", "end"]);
    // Speech begins at frame 20 (sample 3200) and is confirmed after 3 frames (60 ms).
    assert_eq!(
        events[0],
        (23 * F, VadEvent::SpeechStarted { at_sample: 20 * F })
    );
    match &events[1] {
        (
            at,
            VadEvent::SilenceStarted {
                at_sample,
                audio_so_far,
            },
        ) => {
            assert_eq!((*at, *at_sample), (71 * F, 70 * F));
            assert_eq!(audio_so_far.len() as u64, 10 * F + 50 * F);
        }
        other => panic!("{other:?}"),
    }
    // The 25th silent frame (500 ms) ends it: pushed as frame 94, ending at sample 95 * 160.
    let (at, end) = (&events[2].0, &events[2].1);
    assert_eq!(*at, (70 + 25) * F);
    let (start, stop, audio) = ended(end);
    assert_eq!((start, stop), (20 * F, 70 * F));
    // 200 ms pre-roll (frames 10-19) + 1 s of speech + 500 ms of silence, in order.
    assert_eq!(audio.len() as u64, (10 + 50 + 25) * F);
    assert_eq!(audio[0], 10, "pre-roll begins 10 frames before the speech");
    assert_eq!(
        audio[10 * F as usize],
        20,
        "speech begins after the pre-roll"
    );
    assert_eq!(*audio.last().unwrap(), 94);
    assert!(!ep.is_in_speech());
    assert_eq!(ep.speech_ms(), 0);
}

#[test]
fn pre_roll_is_limited_to_what_was_heard() {
    let mut ep = Endpointer::new(EndpointConfig::default());
    let events = run(&mut ep, &[(false, 2), (true, 10), (false, 25)]);
    let (start, _, audio) = ended(&events.last().unwrap().1);
    assert_eq!(start, 2 * F);
    assert_eq!(audio.len() as u64, (2 + 10 + 25) * F);
    assert_eq!(audio[0], 0);
}

#[test]
fn a_short_pause_keeps_one_utterance() {
    let mut ep = Endpointer::new(EndpointConfig::default());
    let events = run(&mut ep, &[(true, 20), (false, 10), (true, 20), (false, 30)]);
    assert_eq!(
        kinds(&events),
        ["start", "silence", "resume", "silence", "end"]
    );
    assert!(matches!(
        events[1].1,
        VadEvent::SilenceStarted { at_sample, .. } if at_sample == 20 * F
    ));
    assert_eq!(events[2].1, VadEvent::SpeechResumed { at_sample: 30 * F });
    let (start, stop, audio) = ended(&events[4].1);
    assert_eq!((start, stop), (0, 50 * F));
    assert_eq!(audio.len() as u64, 75 * F);
}

#[test]
fn max_utterance_forces_an_end() {
    let mut ep = Endpointer::new(EndpointConfig {
        max_utterance_ms: 1000,
        ..Default::default()
    });
    let events = run(&mut ep, &[(true, 60)]);
    assert_eq!(kinds(&events), ["start", "end", "start"]);
    let (at, end) = (&events[1].0, &events[1].1);
    assert_eq!(*at, 50 * F);
    let (start, stop, _) = ended(end);
    assert_eq!((start, stop), (0, 50 * F));
    // Speech goes on: a new turn starts 60 ms later, its onset in the pre-roll.
    assert_eq!(
        events[2],
        (53 * F, VadEvent::SpeechStarted { at_sample: 50 * F })
    );
}

#[test]
fn endpoint_is_adjustable_and_reset_keeps_the_timeline() {
    let mut ep = Endpointer::new(EndpointConfig::default());
    ep.set_end_silence_ms(200);
    let events = run(&mut ep, &[(true, 10), (false, 10)]);
    assert_eq!(events.last().unwrap().0, 20 * F);
    let events = run(&mut ep, &[(true, 5)]);
    assert_eq!(kinds(&events), ["start"]);
    assert!(ep.is_in_speech());
    assert_eq!(ep.speech_ms(), 100);
    ep.reset();
    assert!(!ep.is_in_speech());
    assert_eq!(ep.samples_seen(), 25 * F);
    let events = run(&mut ep, &[(true, 3), (false, 10)]);
    assert_eq!(kinds(&events), ["start", "silence", "end"]);
    assert_eq!(ended(&events[2].1).0, 25 * F);
    assert_eq!(events[2].0, 38 * F, "the 200 ms endpoint survived reset");
}

#[test]
fn degenerate_settings_and_frames_do_not_panic() {
    let mut ep = Endpointer::new(EndpointConfig {
        sample_rate: 0,
        min_speech_ms: 0,
        end_silence_ms: 0,
        pre_roll_ms: 0,
        max_utterance_ms: 0,
        ..Default::default()
    });
    assert!(ep.push(&[], true).is_empty());
    let events = run(&mut ep, &[(true, 2), (false, 1)]);
    assert_eq!(kinds(&events), ["start", "silence", "end"]);
    assert_eq!(ep.speech_ms(), 0);
    let mut ep = Endpointer::new(EndpointConfig::default());
    assert!(ep.push(&[1; 7], true).is_empty());
    let events = ep.push(&[1; 5000], true);
    assert_eq!(events, vec![VadEvent::SpeechStarted { at_sample: 7 }]);
}

fn voiced_frame(index: usize) -> Vec<i16> {
    use std::f32::consts::PI;
    (0..FRAME_SAMPLES)
        .map(|i| {
            let t = (index * FRAME_SAMPLES + i) as f32 / 8000.0;
            let envelope = 0.6 + 0.4 * (2.0 * PI * 4.0 * t).sin();
            let harmonics: f32 = (1..8)
                .map(|h| (2.0 * PI * 150.0 * h as f32 * t).sin() / h as f32)
                .sum();
            (harmonics * envelope * 6000.0) as i16
        })
        .collect()
}

#[test]
fn webrtc_vad_hears_a_voice_but_not_silence() {
    let mut vad = WebRtcVad::new(2).unwrap();
    for _ in 0..10 {
        assert!(!vad.is_speech(&[0; FRAME_SAMPLES]).unwrap());
    }
    let voiced = (0..50)
        .filter(|&f| vad.is_speech(&voiced_frame(f)).unwrap())
        .count();
    assert!(voiced >= 40, "{voiced}/50 voiced frames detected");
}

#[test]
fn webrtc_vad_rejects_bad_input_and_moves_between_threads() {
    let mut vad = WebRtcVad::new(3).unwrap();
    for len in [0, 1, 100, 159, 161, 320] {
        assert!(
            matches!(vad.is_speech(&vec![0; len]), Err(AudioError::FrameLength(l)) if l == len)
        );
    }
    for len in [80, 160, 240] {
        assert!(vad.is_speech(&vec![0; len]).is_ok());
    }
    assert!(matches!(
        WebRtcVad::new(4),
        Err(AudioError::Aggressiveness(4))
    ));
    let mut boxed: Box<dyn SpeechDetector> = Box::new(vad);
    let heard = std::thread::spawn(move || boxed.is_speech(&voiced_frame(3)))
        .join()
        .unwrap();
    assert!(heard.is_ok());
}

#[test]
fn energy_detector_and_levels() {
    assert_eq!(frame_dbfs(&[]), -100.0);
    assert_eq!(frame_dbfs(&[0; 160]), -100.0);
    assert!(frame_dbfs(&[i16::MIN; 160]).abs() < 0.01);
    let half: Vec<i16> = (0..160)
        .map(|i| if i % 2 == 0 { 16384 } else { -16384 })
        .collect();
    assert!((frame_dbfs(&half) + 6.02).abs() < 0.01);
    let mut e = EnergyDetector {
        threshold_dbfs: -40.0,
    };
    assert!(!e.is_speech(&[0; 160]).unwrap());
    assert!(!e.is_speech(&[100; 160]).unwrap()); // -50 dBFS
    assert!(e.is_speech(&voiced_frame(0)).unwrap());
}

/// Uniform white noise at `dbfs` (RMS), deterministic.
fn hiss(frames: usize, dbfs: f32, seed: &mut u64) -> Vec<Vec<i16>> {
    let peak = 32768.0 * 10f32.powf(dbfs / 20.0) * 3f32.sqrt();
    (0..frames)
        .map(|_| {
            (0..FRAME_SAMPLES)
                .map(|_| {
                    *seed = seed
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    let unit = ((*seed >> 33) as f32 / (1u64 << 31) as f32) * 2.0 - 1.0;
                    (unit * peak) as i16
                })
                .collect()
        })
        .collect()
}

#[test]
fn the_noise_floor_is_the_quietest_recent_frame_and_gates_only_a_noisy_line() {
    let mut quiet = NoiseFloor::default();
    for _ in 0..10 {
        quiet.push(-90.0);
    }
    assert!(quiet.gate(true, -44.0), "a quiet line: the VAD decides");
    assert!(!quiet.gate(false, -10.0), "and only the VAD");

    let mut noisy = NoiseFloor::default();
    for _ in 0..10 {
        noisy.push(-30.0);
    }
    assert_eq!(noisy.floor(), -30.0);
    assert!(
        !noisy.gate(true, -27.0),
        "within the margin of the noise: noise"
    );
    assert!(noisy.gate(true, -24.0), "6 dB above the noise: a voice");
    assert!(!noisy.gate(false, -20.0), "never more than the VAD says");

    // A caller talking for the whole window lifts the floor to the quietest of their frames.
    for _ in 0..NoiseFloor::WINDOW - 1 {
        noisy.push(-18.0);
    }
    assert_eq!(noisy.floor(), -20.0, "the -20 frame is still in the window");
    noisy.push(-18.0);
    noisy.push(-18.0);
    assert_eq!(noisy.floor(), -18.0);
    noisy.push(-31.0);
    assert_eq!(
        noisy.floor(),
        -31.0,
        "the first quiet frame brings it down at once"
    );
}

#[test]
fn hiss_the_vad_takes_for_speech_does_not_pass_the_gate() {
    let mut seed = 7;
    let mut vad = WebRtcVad::new(2).unwrap();
    let mut floor = NoiseFloor::default();
    let (mut flagged, mut passed) = (0, 0);
    for frame in hiss(250, -30.0, &mut seed) {
        let voiced = vad.is_speech(&frame).unwrap();
        flagged += usize::from(voiced);
        passed += usize::from(floor.gate(voiced, frame_dbfs(&frame)));
    }
    assert!(
        flagged > 0,
        "the VAD alone flags this hiss (the case the gate is for)"
    );
    assert_eq!(passed, 0, "{flagged} of 250 hiss frames flagged by the VAD");
}
