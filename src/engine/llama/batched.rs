//! Continuous batching: one llama.cpp context holds every live conversation as a sequence of
//! its own, and each step decodes the next token of every generating conversation, plus a
//! bounded share of the prompts waiting, in one `llama_decode` (as llama.cpp's server does).
//!
//! Why: a decode step reads every weight once whatever the number of tokens in it, so N
//! conversations in one step cost little more than one, on a GPU and on a CPU alike. With one
//! generation at a time per worker, a call's reply waited for every reply queued before it.
//!
//! Each conversation keeps its own sampler (grammar, penalties) and cancel token: a barge-in
//! ends its sequence at the next step and no other. The slots, their prefix cache and the
//! sharing of the system prompt are the unbatched worker's ([`super::pick_slot`],
//! [`super::share_prefix`], [`super::make_room`]). What to feed each step is [`plan`], pure.

use std::collections::VecDeque;
use std::time::Instant;

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::{LlamaChatTemplate, LlamaModel};
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;
use tokio::sync::mpsc;

use super::slots::{end, fits, keep_prefix, make_room, pick_slot, share_prefix, Slot};
use super::{
    build_sampler, inference, new_context, prompt_tokens, take_valid_utf8, Counters, Job,
    LlamaConfig, N_BATCH,
};
use crate::engine::pool::Jobs;
use crate::engine::{EngineError, GenerateRequest, LlmEvent, StopReason};

/// Where a live conversation stands, for [`plan`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Prompt tokens still to evaluate.
    Prompt { left: usize },
    /// A sampled token waits to be fed.
    Generating,
}

/// How many tokens each conversation feeds this step, given oldest first: every generating
/// one its token, then the prompts, oldest first, within `prompt_budget` and the batch's room.
/// A long prompt is spread over steps, so the others' replies do not stall behind it.
pub fn plan(phases: &[Phase], batch: usize, prompt_budget: usize) -> Vec<usize> {
    let mut room = batch;
    let mut out: Vec<usize> = phases
        .iter()
        .map(|p| match p {
            Phase::Generating if room > 0 => {
                room -= 1;
                1
            }
            _ => 0,
        })
        .collect();
    let mut budget = prompt_budget.min(room);
    for (n, p) in out.iter_mut().zip(phases) {
        if let Phase::Prompt { left } = *p {
            *n = left.min(budget);
            budget -= *n;
        }
    }
    out
}

/// One generation in the batch.
struct Live {
    seq: usize,
    request: GenerateRequest,
    events: mpsc::Sender<LlmEvent>,
    prompt: Vec<LlamaToken>,
    /// Prompt tokens found in the cache.
    cached: usize,
    sampler: LlamaSampler,
    /// Bytes of a character split across tokens.
    pending: Vec<u8>,
    generated: usize,
    /// The token sampled last step, fed this step.
    next: Option<LlamaToken>,
}

impl Live {
    fn phase(&self, slot: &Slot) -> Phase {
        match self.next {
            Some(_) => Phase::Generating,
            None => Phase::Prompt {
                left: self.prompt.len() - slot.tokens.len(),
            },
        }
    }

    fn finish(self, slots: &mut [Slot], counters: &Counters, stop: StopReason) {
        slots[self.seq].live = None;
        counters.ended(self.prompt.len() - self.cached, self.generated);
        let _ = self.events.try_send(LlmEvent::Done {
            prompt_evaluated: self.prompt.len() - self.cached,
            prompt_cached: self.cached,
            generated: self.generated,
            stop,
        });
    }

    /// A failed decode may have left the sequence half-written: it is forgotten.
    fn fail(self, ctx: &mut LlamaContext<'_>, slots: &mut [Slot], e: EngineError) {
        let _ = ctx.clear_kv_cache_seq(Some(self.seq as u32), None, None);
        slots[self.seq].tokens.clear();
        slots[self.seq].live = None;
        let _ = self.events.try_send(LlmEvent::Error(e));
    }
}

/// What the worker owns between steps.
struct Batcher<'a> {
    model: &'a LlamaModel,
    template: &'a LlamaChatTemplate,
    config: &'a LlamaConfig,
    counters: &'a Counters,
    slots: Vec<Slot>,
    live: Vec<Live>,
    /// Jobs whose conversation's slot is live (a reply cut by barge-in still ending): they
    /// start once it has.
    waiting: VecDeque<Job>,
    batch: LlamaBatch<'a>,
    n_batch: usize,
    clock: u64,
}

/// The batching worker: one context, rebuilt after a panic (every live generation then fails).
pub(super) fn worker(
    backend: &'static LlamaBackend,
    model: &LlamaModel,
    template: &LlamaChatTemplate,
    config: &LlamaConfig,
    counters: &Counters,
    jobs: &Jobs<Job>,
) {
    loop {
        let Some(mut ctx) = jobs.up(new_context(backend, model, config)) else {
            return;
        };
        let mut b = Batcher {
            model,
            template,
            config,
            counters,
            slots: (0..config.slots_per_worker.max(1))
                .map(|_| Slot::free())
                .collect(),
            live: Vec::new(),
            waiting: VecDeque::new(),
            batch: LlamaBatch::new(N_BATCH as usize, 1),
            n_batch: N_BATCH as usize,
            clock: 0,
        };
        loop {
            // Idle: wait for work. Else take what is queued, as far as slots are free (what
            // stays queued keeps its deadline).
            if b.live.is_empty() && b.waiting.is_empty() {
                match jobs.next() {
                    Some(job) => b.waiting.push_back(job),
                    None => return,
                }
            }
            while b.live.len() < b.slots.len() {
                match jobs.try_next() {
                    Some(job) => b.waiting.push_back(job),
                    None => break,
                }
            }
            let started = Instant::now();
            let ok = jobs.run(|| b.step(&mut ctx));
            counters.busy(started.elapsed());
            if !ok {
                // The KV cache may be half-written: a fresh context, every slot empty.
                break;
            }
            if jobs.closed() && b.live.is_empty() && b.waiting.is_empty() {
                return;
            }
        }
        if jobs.closed() {
            return;
        }
    }
}

impl Batcher<'_> {
    /// Ends what was cancelled (freeing its slot for a job that waits on it), starts what can
    /// start, decodes one batch, samples.
    fn step(&mut self, ctx: &mut LlamaContext<'_>) {
        let mut i = 0;
        while i < self.live.len() {
            let l = &self.live[i];
            if l.request.cancel.is_cancelled() || l.events.is_closed() {
                self.live
                    .remove(i)
                    .finish(&mut self.slots, self.counters, StopReason::Cancelled);
            } else {
                i += 1;
            }
        }
        for _ in 0..self.waiting.len() {
            if let Some(job) = self.waiting.pop_front() {
                self.admit(ctx, job);
            }
        }
        if self.live.is_empty() {
            return;
        }
        let phases: Vec<Phase> = self
            .live
            .iter()
            .map(|l| l.phase(&self.slots[l.seq]))
            .collect();
        let counts = plan(
            &phases,
            self.n_batch,
            self.config.prompt_tokens_per_step.max(1),
        );
        if let Err(e) = self.decode(ctx, &counts) {
            // Which sequence the KV cache had no room for is not known: all in the batch fail.
            for i in (0..self.live.len()).rev() {
                if counts[i] > 0 {
                    let e = inference(e.to_string());
                    self.live.remove(i).fail(ctx, &mut self.slots, e);
                }
            }
            return;
        }
        self.sample(ctx, &counts);
    }

    /// A new generation takes its slot (or waits for it), reusing what its cache shares.
    fn admit(&mut self, ctx: &mut LlamaContext<'_>, job: Job) {
        let (request, events) = match job {
            Job::End(id) => return end(&mut self.slots, &id),
            Job::Generate { request, events } => (request, events),
        };
        if request.cancel.is_cancelled() {
            let _ = events.try_send(LlmEvent::Done {
                prompt_evaluated: 0,
                prompt_cached: 0,
                generated: 0,
                stop: StopReason::Cancelled,
            });
            return;
        }
        let prompt = match prompt_tokens(self.model, self.template, &request) {
            Ok(t) => t,
            Err(e) => {
                let _ = events.try_send(LlmEvent::Error(e));
                return;
            }
        };
        self.clock += 1;
        let conversation = request.conversation_id.clone();
        let Some(seq) = pick_slot(&mut self.slots, &conversation, self.clock, &prompt) else {
            self.waiting.push_back(Job::Generate { request, events });
            return;
        };
        share_prefix(ctx, &mut self.slots, seq, &prompt);
        let need = prompt.len() + request.max_tokens as usize;
        make_room(ctx, &mut self.slots, seq, need);
        if !self.live.is_empty() && !fits(&self.slots, seq, need, ctx.n_ctx() as usize) {
            // The replies under way hold the cache: this one starts when one of them ends.
            self.waiting.push_back(Job::Generate { request, events });
            return;
        }
        let started = keep_prefix(ctx, seq, &mut self.slots[seq], &prompt, request.max_tokens)
            .and_then(|cached| {
                let sampler = build_sampler(self.model, self.config, request.grammar.as_deref())?;
                Ok((cached, sampler))
            });
        match started {
            Ok((cached, sampler)) => {
                self.slots[seq].live = Some(need);
                self.live.push(Live {
                    seq,
                    request,
                    events,
                    prompt,
                    cached,
                    sampler,
                    pending: Vec::new(),
                    generated: 0,
                    next: None,
                });
            }
            Err(e) => {
                let _ = events.try_send(LlmEvent::Error(e));
            }
        }
    }

    /// One `llama_decode` of what [`plan`] chose; the fed tokens join their slots.
    fn decode(&mut self, ctx: &mut LlamaContext<'_>, counts: &[usize]) -> Result<(), EngineError> {
        self.batch.clear();
        for (l, &n) in self.live.iter().zip(counts) {
            let slot = &self.slots[l.seq];
            let pos = slot.tokens.len();
            let seq = [l.seq as i32];
            match l.next {
                Some(token) if n > 0 => {
                    self.batch
                        .add(token, pos as i32, &seq, true)
                        .map_err(inference)?;
                }
                _ => {
                    for p in pos..pos + n {
                        let last = p + 1 == l.prompt.len();
                        self.batch
                            .add(l.prompt[p], p as i32, &seq, last)
                            .map_err(inference)?;
                    }
                }
            }
        }
        if self.batch.n_tokens() == 0 {
            return Ok(());
        }
        ctx.decode(&mut self.batch).map_err(inference)?;
        for (l, &n) in self.live.iter_mut().zip(counts) {
            let slot = &mut self.slots[l.seq];
            match l.next.take() {
                Some(token) if n > 0 => slot.tokens.push(token),
                kept @ Some(_) => l.next = kept,
                None => {
                    let from = slot.tokens.len();
                    slot.tokens.extend_from_slice(&l.prompt[from..from + n]);
                }
            }
        }
        Ok(())
    }

    /// Samples every conversation whose logits this step computed, in batch order.
    fn sample(&mut self, ctx: &LlamaContext<'_>, counts: &[usize]) {
        let vocab = self.model.vocab();
        let mut index = 0i32;
        let mut ended = Vec::new();
        for (i, (l, &n)) in self.live.iter_mut().zip(counts).enumerate() {
            if n == 0 {
                continue;
            }
            index += n as i32;
            let has_logits = self.slots[l.seq].tokens.len() >= l.prompt.len();
            if !has_logits {
                continue;
            }
            // `sample` also accepts the token into the chain (grammar, penalties).
            let token = l.sampler.sample(ctx, index - 1);
            if vocab.is_eog(token) {
                ended.push((i, StopReason::EndOfTurn));
                continue;
            }
            l.generated += 1;
            l.pending.extend(vocab.token_to_piece(token, false, None));
            let text = take_valid_utf8(&mut l.pending);
            if !text.is_empty() && l.events.try_send(LlmEvent::Token(text)).is_err() {
                ended.push((i, StopReason::Cancelled));
            } else if l.generated >= l.request.max_tokens as usize {
                ended.push((i, StopReason::MaxTokens));
            } else {
                l.next = Some(token);
            }
        }
        for (i, stop) in ended.into_iter().rev() {
            self.live
                .remove(i)
                .finish(&mut self.slots, self.counters, stop);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Phase::*;

    #[test]
    fn every_reply_moves_each_step_and_prompts_share_what_is_left() {
        // Two replies generating, two prompts waiting (oldest first): the replies always go.
        let phases = [
            Prompt { left: 300 },
            Generating,
            Prompt { left: 40 },
            Generating,
        ];
        assert_eq!(plan(&phases, 512, 128), vec![128, 1, 0, 1]);
        // The first prompt's tail leaves room for the next one in the same step.
        let phases = [
            Prompt { left: 44 },
            Generating,
            Prompt { left: 40 },
            Generating,
        ];
        assert_eq!(plan(&phases, 512, 128), vec![44, 1, 40, 1]);
        // The batch's room bounds the prompt budget, and the replies come first.
        assert_eq!(plan(&phases, 50, 128), vec![44, 1, 4, 1]);
        assert_eq!(
            plan(&[Generating, Generating, Prompt { left: 9 }], 1, 128),
            vec![1, 0, 0]
        );
        assert_eq!(plan(&[], 512, 128), Vec::<usize>::new());
    }
}
