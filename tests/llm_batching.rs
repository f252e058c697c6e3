//! Continuous batching with the real SmolLM2-135M: conversations decoded together in one
//! context produce, token for token, what each produces alone (greedy sampling), and cutting
//! one (a barge-in) leaves the others' output untouched.

mod common;

use std::time::Duration;

use telemarketer::config::{RawConfig, Secrets};
use telemarketer::engine::llama::{LlamaConfig, LlamaEngine};
use telemarketer::engine::{GenerateRequest, LanguageModel, LlmEvent, StopReason};
use telemarketer::model::ChatMessage;
use tokio_util::sync::CancellationToken;

fn config(batching: bool) -> LlamaConfig {
    let toml = format!(
        "[models]\ndir = {:?}\n[llm]\ntemperature = 0.0\nbatching = {batching}\n\
         prompt_tokens_per_step = 16",
        common::models_dir().display().to_string()
    );
    RawConfig::from_toml(&toml)
        .unwrap()
        .single_threaded()
        .validate(Secrets::default())
        .unwrap()
        .llm
}

const A: &str = "Tell me in two sentences why homeowners put solar panels on their roofs.";
const B: &str = "Write a short friendly goodbye for a phone call about a bill.";

fn request(id: &str, text: &str, cancel: CancellationToken) -> GenerateRequest {
    GenerateRequest {
        conversation_id: id.into(),
        messages: vec![
            ChatMessage::new("system", "You are Nova, a helpful assistant on the phone."),
            ChatMessage::new("user", text),
        ],
        max_tokens: 40,
        grammar: None,
        cancel,
    }
}

/// The pieces a generation streamed and why it stopped; `cut_after` fires its cancel token
/// once that many pieces have arrived.
async fn collect(
    mut rx: tokio::sync::mpsc::Receiver<LlmEvent>,
    cancel: CancellationToken,
    cut_after: Option<usize>,
) -> (Vec<String>, StopReason) {
    let mut pieces = Vec::new();
    loop {
        let event = tokio::time::timeout(Duration::from_secs(60), rx.recv())
            .await
            .expect("the engine answers")
            .expect("the stream ends with Done");
        match event {
            LlmEvent::Token(t) => {
                pieces.push(t);
                if Some(pieces.len()) == cut_after {
                    cancel.cancel();
                }
            }
            LlmEvent::Done { stop, .. } => return (pieces, stop),
            LlmEvent::Error(e) => panic!("generation failed: {e}"),
        }
    }
}

async fn alone(engine: &LlamaEngine, id: &str, text: &str) -> Vec<String> {
    let cancel = CancellationToken::new();
    let rx = engine.generate(request(id, text, cancel.clone()));
    let (pieces, stop) = collect(rx, cancel, None).await;
    assert_ne!(stop, StopReason::Cancelled);
    assert!(pieces.len() > 5, "{pieces:?}");
    pieces
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conversations_decoded_together_say_what_each_says_alone() {
    // Alone: a fresh engine for each, so nothing is cached from the other.
    let a_alone = alone(&LlamaEngine::load(&config(true)).unwrap(), "a", A).await;
    let b_alone = alone(&LlamaEngine::load(&config(true)).unwrap(), "b", B).await;
    assert_ne!(a_alone, b_alone);

    // Together, neither cut: both decode in the same steps (B's prompt is evaluated while A
    // already generates), and each says exactly what it said alone.
    let engine = LlamaEngine::load(&config(true)).unwrap();
    let (ca, cb) = (CancellationToken::new(), CancellationToken::new());
    let ra = engine.generate(request("a", A, ca.clone()));
    let rb = engine.generate(request("b", B, cb.clone()));
    let ((a, _), (b, _)) = tokio::join!(collect(ra, ca, None), collect(rb, cb, None));
    assert_eq!(a, a_alone, "A beside B");
    assert_eq!(b, b_alone, "B beside A");

    // Together, B cut after 3 pieces (a barge-in): B stops there, A is untouched.
    let engine = LlamaEngine::load(&config(true)).unwrap();
    let (ca, cb) = (CancellationToken::new(), CancellationToken::new());
    let rb = engine.generate(request("b", B, cb.clone()));
    let ra = engine.generate(request("a", A, ca.clone()));
    let ((a, _), (b, stop)) = tokio::join!(collect(ra, ca, None), collect(rb, cb, Some(3)));
    assert_eq!(stop, StopReason::Cancelled);
    assert!(b.len() < b_alone.len(), "B stopped early: {b:?}");
    assert_eq!(b[..3], b_alone[..3]);
    assert_eq!(a, a_alone, "A beside a cut B");

    // The unbatched workers say the same (the schedule changes timing, not words).
    let unbatched = alone(&LlamaEngine::load(&config(false)).unwrap(), "a", A).await;
    assert_eq!(unbatched, a_alone);
}
