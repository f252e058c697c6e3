//! The audio front end per 20 ms frame of one call: what every call costs before any model runs.
//! Divide a figure by 20 ms for the share of one core per call.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use telemarketer::audio::resample::StreamResampler;
use telemarketer::audio::vad::{EndpointConfig, Endpointer, SpeechDetector, WebRtcVad};
use telemarketer::audio::{f32_to_i16, i16_to_f32, mulaw, FRAME_SAMPLES, STT_RATE, TWILIO_RATE};

/// Piper's output rate.
const VOICE_RATE: u32 = 22050;
/// 20 ms at the voice rate.
const VOICE_FRAME: usize = 441;

/// A voiced 20 ms frame: harmonics of 150 Hz, so the VAD does real work.
fn voiced_frame() -> Vec<i16> {
    (0..FRAME_SAMPLES)
        .map(|i| {
            let t = i as f32 / TWILIO_RATE as f32;
            let s: f32 = (1..6)
                .map(|h| (2.0 * std::f32::consts::PI * 150.0 * h as f32 * t).sin() / h as f32)
                .sum();
            (s * 6000.0) as i16
        })
        .collect()
}

fn frontend(c: &mut Criterion) {
    let frame = voiced_frame();
    let encoded = mulaw::encode(&frame);
    c.bench_function("inbound/mulaw_decode_20ms", |b| {
        b.iter(|| mulaw::decode(black_box(&encoded)))
    });

    let mut up = StreamResampler::new(TWILIO_RATE, STT_RATE).unwrap();
    let pcm = i16_to_f32(&frame);
    c.bench_function("inbound/resample_8k_to_16k_20ms", |b| {
        b.iter(|| up.process(black_box(&pcm)))
    });

    let mut vad = WebRtcVad::new(2).unwrap();
    let mut ep = Endpointer::new(EndpointConfig::default());
    c.bench_function("inbound/vad_and_endpointer_20ms", |b| {
        b.iter(|| {
            let speech = vad.is_speech(black_box(&frame)).unwrap();
            ep.push(&frame, speech)
        })
    });

    let voice: Vec<f32> = (0..VOICE_FRAME)
        .map(|i| (2.0 * std::f32::consts::PI * 200.0 * i as f32 / VOICE_RATE as f32).sin() * 0.3)
        .collect();
    let mut down = StreamResampler::new(VOICE_RATE, TWILIO_RATE).unwrap();
    c.bench_function("outbound/resample_22050_to_8k_and_encode_20ms", |b| {
        b.iter(|| mulaw::encode(&f32_to_i16(&down.process(black_box(&voice)))))
    });

    // One frame each way, as a call does it (the 8k -> 16k step runs per utterance, on the
    // same samples, so its per-frame figure above adds to this).
    let mut vad = WebRtcVad::new(2).unwrap();
    let mut ep = Endpointer::new(EndpointConfig::default());
    let mut down = StreamResampler::new(VOICE_RATE, TWILIO_RATE).unwrap();
    c.bench_function("call/both_directions_per_20ms_frame", |b| {
        b.iter(|| {
            let pcm = mulaw::decode(black_box(&encoded));
            let speech = vad.is_speech(&pcm).unwrap();
            let events = ep.push(&pcm, speech);
            let out = mulaw::encode(&f32_to_i16(&down.process(&voice)));
            (events, out)
        })
    });
}

criterion_group!(benches, frontend);
criterion_main!(benches);
