//! The audio front end per 20 ms frame of one call: what every call costs before any model runs.
//! Divide a figure by 20 ms for the share of one core per call.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use telemarketer::audio::resample::StreamResampler;
use telemarketer::audio::vad::{EndpointConfig, Endpointer, SpeechDetector, WebRtcVad};
use telemarketer::audio::{f32_to_i16, i16_to_f32, mulaw, FRAME_SAMPLES};

fn voiced_frame(offset: usize) -> Vec<i16> {
    (0..FRAME_SAMPLES)
        .map(|i| {
            let t = (offset + i) as f32 / 8000.0;
            let s: f32 = (1..6)
                .map(|h| (2.0 * std::f32::consts::PI * 150.0 * h as f32 * t).sin() / h as f32)
                .sum();
            (s * 6000.0) as i16
        })
        .collect()
}

fn frontend(c: &mut Criterion) {
    let frame = voiced_frame(0);
    let encoded = mulaw::encode(&frame);
    c.bench_function("inbound/mulaw_decode_20ms", |b| {
        b.iter(|| mulaw::decode(black_box(&encoded)))
    });
    let mut up = StreamResampler::new(8000, 16000).unwrap();
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
    let voice: Vec<f32> = (0..441)
        .map(|i| (2.0 * std::f32::consts::PI * 200.0 * i as f32 / 22050.0).sin() * 0.3)
        .collect();
    let mut down = StreamResampler::new(22050, 8000).unwrap();
    c.bench_function("outbound/resample_22050_to_8k_and_encode_20ms", |b| {
        b.iter(|| mulaw::encode(&f32_to_i16(&down.process(black_box(&voice)))))
    });
    let mut vad = WebRtcVad::new(2).unwrap();
    let mut ep = Endpointer::new(EndpointConfig::default());
    let mut down = StreamResampler::new(22050, 8000).unwrap();
    c.bench_function("call/full_frontend_per_20ms_frame", |b| {
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
