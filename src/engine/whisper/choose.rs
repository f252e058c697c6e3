//! A second listen to a doubtful turn, against the answers the question expects.
//!
//! Greedy decoding takes the likeliest word at each step, and on the phone line Whisper tiny's
//! first word is often a coin toss: "Not interested." comes out as "That's interested."
//! (token probabilities 0.30, 0.31, 0.32, 0.48), a phrase no rule reads. An IVR with a
//! grammar would have heard "not interested": it scores the few answers it expects against the
//! audio. This does the same with the audio already encoded: each expected answer is forced
//! through the decoder, and its mean log-probability (end of text included, so a prefix of
//! what was said does not win) is compared with the free transcript's, scored the same way.
//! An expected answer the audio explains about as well, and clearly better than any other,
//! replaces the transcript ([`pick`]). Only after a doubtful free decode, so a sure turn costs
//! nothing (a doubtful one about 10 ms a choice on 2 cores with tiny); the rules still read
//! what was chosen.

use whisper_rs::{WhisperContext, WhisperState, WhisperTokenId};

use crate::engine::EngineError;

/// Whisper's context is 448 tokens; whisper.cpp keeps at most half of it for the prompt.
const PROMPT_TOKENS: usize = 224 - 1;

/// The best of `choices` (sentences as Whisper writes them) if the audio explains it as well as
/// `free` (the greedy tokens) and no other choice nearly as well ([`pick`]), as
/// (choice, its geometric-mean token probability). `prompt` is the prompt `full` was given:
/// the scores are conditioned on it as the free decode was. Call right after `state.full` on
/// the same audio: the decoder reads the encoder output `full` left in `state`.
pub fn second_listen(
    ctx: &WhisperContext,
    state: &mut WhisperState,
    prompt: &str,
    free: &[WhisperTokenId],
    choices: &[String],
    threads: usize,
) -> Result<Option<(String, f32)>, EngineError> {
    let failed = |e: whisper_rs::WhisperError| EngineError::Inference {
        engine: "whisper",
        reason: format!("second listen: {e}"),
    };
    let mut prefix = Vec::new();
    if !prompt.is_empty() {
        let tokens = ctx.tokenize(prompt, 1024).map_err(failed)?;
        prefix.push(ctx.token_prev());
        prefix.extend_from_slice(&tokens[tokens.len().saturating_sub(PROMPT_TOKENS)..]);
    }
    prefix.push(ctx.token_sot());
    if ctx.is_multilingual() {
        prefix.push(ctx.token_lang(0));
        prefix.push(ctx.token_transcribe());
    }
    prefix.push(ctx.token_not());
    let eot = ctx.token_eot();
    state.decode(&prefix, 0, threads).map_err(failed)?;
    let first = log_softmax(state.get_logits().map_err(failed)?, eot);
    let mut score = |tokens: &[WhisperTokenId]| -> Result<f32, EngineError> {
        let mut total = 0.0f32;
        let mut logprobs = first.clone();
        for (i, &token) in tokens.iter().chain([&eot]).enumerate() {
            total += logprobs[token as usize];
            if i == tokens.len() {
                break;
            }
            state
                .decode(&[token], prefix.len() + i, threads)
                .map_err(failed)?;
            logprobs = log_softmax(state.get_logits().map_err(failed)?, eot);
        }
        Ok(total / (tokens.len() + 1) as f32)
    };
    let heard = score(free)?;
    let mut scored = Vec::with_capacity(choices.len());
    for choice in choices {
        let text = choice.trim().to_string();
        // A sentence too long to be one answer (over 64 tokens) is no choice.
        let Ok(tokens) = ctx.tokenize(&format!(" {text}"), 64) else {
            continue;
        };
        if tokens.is_empty() || tokens.iter().any(|&t| t >= eot) {
            continue;
        }
        scored.push((text, score(&tokens)?));
    }
    tracing::debug!(heard, ?scored, "second listen");
    Ok(pick(heard, &scored).map(|i| (scored[i].0.clone(), scored[i].1.exp())))
}

/// How far (mean log-probability per token) a choice may fall behind the free transcript.
/// Greedy takes the likeliest token at each step, so the free transcript is close to the best
/// any sentence can score: the choice that was said scores near it, not above ("That's
/// interested." -1.22, "Not interested." -1.24).
const MARGIN: f32 = 0.1;
/// How far the choice must lead every other one: e^0.5, 1.6 times likelier a token. A mumble
/// explains several answers about as badly; only a clear winner was said.
const LEAD: f32 = 0.5;

/// Which scored choice replaces the free transcript (`heard`, scored the same way), if any:
/// the best, when it is within [`MARGIN`] of the free transcript and [`LEAD`] ahead of the
/// next choice. Chosen on the 17 doubtful turns of 586 replayed corpus turns: "Who is this?"
/// for "This is this." and "Not interested." for "That's interested." are taken; "No." for
/// "Right." (said: "Not right now.", 0.40 behind), "I don't know." for "Maybe one fifty."
/// (1.05 behind) and "How did you get my number?" for "That's how." (0.16 behind, 0.18
/// ahead) are not.
pub fn pick(heard: f32, scored: &[(String, f32)]) -> Option<usize> {
    let mut order: Vec<usize> = (0..scored.len()).collect();
    order.sort_by(|&a, &b| scored[b].1.total_cmp(&scored[a].1));
    let best = *order.first()?;
    let second = order.get(1).map_or(f32::NEG_INFINITY, |&i| scored[i].1);
    (scored[best].1 >= heard - MARGIN && scored[best].1 - second >= LEAD).then_some(best)
}

/// Log-probabilities over the text tokens and end of text: what the free decode chooses from
/// once timestamps and other special tokens are suppressed.
fn log_softmax(logits: &[f32], eot: WhisperTokenId) -> Vec<f32> {
    let n = (eot as usize + 1).min(logits.len());
    let max = logits[..n].iter().fold(f32::NEG_INFINITY, |m, &l| m.max(l));
    let sum: f32 = logits[..n].iter().map(|l| (l - max).exp()).sum();
    let log_sum = max + sum.ln();
    logits[..n].iter().map(|l| l - log_sum).collect()
}

#[cfg(test)]
mod tests {
    use super::pick;

    fn scored(list: &[(&str, f32)]) -> Vec<(String, f32)> {
        list.iter().map(|(t, s)| (t.to_string(), *s)).collect()
    }

    #[test]
    fn a_choice_is_taken_when_the_audio_explains_it_as_well_and_no_other_nearly_as_well() {
        // "That's interested." (-1.22), replayed against the pitch's answers.
        let pitch = scored(&[
            ("Yes.", -2.83),
            ("Not interested.", -1.24),
            ("How did you get my number?", -1.90),
        ]);
        assert_eq!(pick(-1.22, &pitch), Some(1));
        // Better than the free transcript: taken too.
        assert_eq!(pick(-1.5, &pitch), Some(1));
        // Too far behind what was heard: "Right." (-1.47) against "No." (-1.87).
        assert_eq!(
            pick(-1.47, &scored(&[("No.", -1.87), ("Yes.", -3.0)])),
            None
        );
        // Two choices explain it about as well: "That's how." (-1.16).
        let close = scored(&[
            ("How did you get my number?", -1.12),
            ("What is this about?", -1.30),
        ]);
        assert_eq!(pick(-1.16, &close), None);
        // One choice leads nothing; none is nothing.
        assert_eq!(pick(-1.0, &scored(&[("Not interested.", -1.05)])), Some(0));
        assert_eq!(pick(-1.0, &[]), None);
    }
}
