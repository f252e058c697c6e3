//! The KV-cache slots of one llama.cpp context: which conversation holds which sequence, what
//! each holds, and what to drop when the cache is full. A conversation keeps its slot between
//! turns, so a turn evaluates only its new tokens; an ended call's cache stays as a donor whose
//! system prompt the next call shares. Bookkeeping is plain data (unit-tested); the few calls
//! into the context are the KV-cache edits it implies.

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::token::LlamaToken;

use super::inference;
use crate::engine::EngineError;

/// One KV-cache sequence and what it holds.
pub(super) struct Slot {
    pub(super) conversation: Option<String>,
    /// Tokens whose keys/values are in this sequence, in position order.
    pub(super) tokens: Vec<LlamaToken>,
    pub(super) last_used: u64,
    /// While a generation runs on it (batched): the cells it may grow to (prompt + reply).
    /// A live slot is never given to another conversation nor dropped to make room.
    pub(super) live: Option<usize>,
}

impl Slot {
    pub(super) fn free() -> Self {
        Slot {
            conversation: None,
            tokens: Vec::new(),
            last_used: 0,
            live: None,
        }
    }
}

/// A call ended. Its slot's cache stays as a donor: the next call's prompts start with the same
/// system prompt and node labels, and reuse only the tokens their own prompt has (a prefix
/// match), so nothing of this call reaches another.
pub(super) fn end(slots: &mut [Slot], conversation: &str) {
    if let Some(slot) = slots
        .iter_mut()
        .find(|s| s.conversation.as_deref() == Some(conversation))
    {
        slot.conversation = None;
    }
}

/// The conversation's slot; else the free slot whose cache shares the most of `tokens` (an
/// ended call's cache holds the same system prompt); else the least recently used one. A slot
/// changing hands keeps its cache: `generate` reuses the common prefix and drops the rest.
/// `None` while the slot it needs is live (its own, or every one): the job waits a step.
pub(super) fn pick_slot(
    slots: &mut [Slot],
    conversation: &str,
    clock: u64,
    tokens: &[LlamaToken],
) -> Option<usize> {
    if let Some(own) = slots
        .iter()
        .position(|s| s.conversation.as_deref() == Some(conversation))
    {
        if slots[own].live.is_some() {
            return None;
        }
        slots[own].last_used = clock;
        return Some(own);
    }
    let i = slots
        .iter()
        .enumerate()
        .filter(|(_, s)| s.conversation.is_none() && s.live.is_none())
        .min_by_key(|(_, s)| {
            (
                std::cmp::Reverse(common_prefix(&s.tokens, tokens)),
                s.last_used,
            )
        })
        .map(|(i, _)| i)
        .or_else(|| {
            slots
                .iter()
                .enumerate()
                .filter(|(_, s)| s.live.is_none())
                .min_by_key(|(_, s)| s.last_used)
                .map(|(i, _)| i)
        })?;
    slots[i].conversation = Some(conversation.to_string());
    slots[i].last_used = clock;
    Some(i)
}

/// The slots share one KV cache of `n_ctx` cells: before a prompt that needs `need` cells,
/// caches are dropped until everything fits: ended calls' first, then those of calls between
/// turns (they re-read their prompt next turn), oldest first; never one generating now.
pub(super) fn make_room(ctx: &mut LlamaContext<'_>, slots: &mut [Slot], seq: usize, need: usize) {
    let n_ctx = ctx.n_ctx() as usize;
    for i in caches_to_drop(slots, seq, need, n_ctx) {
        let _ = ctx.clear_kv_cache_seq(Some(i as u32), None, None);
        slots[i].tokens.clear();
    }
}

/// Cells the other slots hold, a generating one counted at what it may grow to.
pub(super) fn used_besides(slots: &[Slot], seq: usize) -> usize {
    slots
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != seq)
        .map(|(_, s)| s.tokens.len().max(s.live.unwrap_or(0)))
        .sum()
}

/// Whether `need` cells fit beside what the other slots hold.
pub(super) fn fits(slots: &[Slot], seq: usize, need: usize, n_ctx: usize) -> bool {
    used_besides(slots, seq) + need <= n_ctx
}

/// Which caches to drop so that `need` cells fit beside the rest (see [`make_room`]).
pub(super) fn caches_to_drop(slots: &[Slot], seq: usize, need: usize, n_ctx: usize) -> Vec<usize> {
    let mut used = used_besides(slots, seq);
    let mut candidates: Vec<usize> = (0..slots.len())
        .filter(|&i| i != seq && slots[i].live.is_none() && !slots[i].tokens.is_empty())
        .collect();
    candidates.sort_by_key(|&i| (slots[i].conversation.is_some(), slots[i].last_used));
    let mut drop = Vec::new();
    for i in candidates {
        if used + need <= n_ctx {
            break;
        }
        used -= slots[i].tokens.len();
        drop.push(i);
    }
    drop
}

/// A new conversation starts with the same system prompt as the others: copy the longest
/// matching prefix from another slot instead of evaluating it again (a sequence copy is cheap
/// with a unified KV cache).
pub(super) fn share_prefix(
    ctx: &mut LlamaContext<'_>,
    slots: &mut [Slot],
    seq: usize,
    tokens: &[LlamaToken],
) {
    let own = common_prefix(&slots[seq].tokens, tokens);
    let best = slots
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != seq)
        .map(|(i, s)| (i, common_prefix(&s.tokens, tokens)))
        .max_by_key(|(_, n)| *n);
    let Some((src, n)) = best.filter(|(_, n)| *n > own + 16) else {
        return;
    };
    // Keep at least one token to evaluate (the prompt's logits come from it).
    let n = n.min(tokens.len().saturating_sub(1));
    if ctx
        .clear_kv_cache_seq(Some(seq as u32), None, None)
        .is_err()
        || ctx
            .copy_kv_cache_seq(src as i32, seq as i32, Some(0), Some(n as u32))
            .is_err()
    {
        slots[seq].tokens.clear();
        return;
    }
    let prefix = slots[src].tokens[..n].to_vec();
    slots[seq].tokens = prefix;
}

/// Length of the common prefix of two token lists.
pub(super) fn common_prefix(a: &[LlamaToken], b: &[LlamaToken]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// Drops what of the slot's cache the prompt does not share, and says how many of its tokens
/// stay (at least one is left to evaluate: the prompt's logits come from it).
pub(super) fn keep_prefix(
    ctx: &mut LlamaContext<'_>,
    seq: usize,
    slot: &mut Slot,
    tokens: &[LlamaToken],
    max_tokens: u32,
) -> Result<usize, EngineError> {
    let n_ctx = ctx.n_ctx() as usize;
    if tokens.is_empty() || tokens.len() + max_tokens as usize >= n_ctx {
        return Err(inference(format!(
            "prompt of {} tokens + {max_tokens} to generate does not fit the context of {n_ctx}",
            tokens.len(),
        )));
    }
    let keep = common_prefix(&slot.tokens, tokens).min(tokens.len() - 1);
    ctx.clear_kv_cache_seq(Some(seq as u32), Some(keep as u32), None)
        .map_err(inference)?;
    slot.tokens.truncate(keep);
    Ok(keep)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_and_slots() {
        let t = |v: &[i32]| v.iter().map(|&x| LlamaToken(x)).collect::<Vec<_>>();
        assert_eq!(common_prefix(&t(&[1, 2, 3]), &t(&[1, 2, 4, 5])), 2);
        let mut slots: Vec<Slot> = (0..2)
            .map(|_| Slot {
                conversation: None,
                tokens: Vec::new(),
                last_used: 0,
                live: None,
            })
            .collect();
        assert_eq!(pick_slot(&mut slots, "a", 1, &t(&[1, 2])), Some(0));
        slots[0].tokens = t(&[1, 2]);
        assert_eq!(pick_slot(&mut slots, "b", 2, &t(&[1, 2])), Some(1));
        assert_eq!(pick_slot(&mut slots, "a", 3, &t(&[1, 2, 3])), Some(0));
        assert_eq!(slots[0].tokens.len(), 2, "a keeps its cache");
        // c evicts the least recently used (b).
        assert_eq!(pick_slot(&mut slots, "c", 4, &t(&[7])), Some(1));
    }

    #[test]
    fn a_new_conversation_takes_the_ended_cache_that_shares_most_of_its_prompt() {
        let t = |v: &[i32]| v.iter().map(|&x| LlamaToken(x)).collect::<Vec<_>>();
        let slot = |tokens: &[i32], last_used| Slot {
            conversation: None,
            tokens: t(tokens),
            last_used,
            live: None,
        };
        // Two ended calls: one classified at node A (tokens 1 2 3 ...), one at node B.
        let mut slots = vec![slot(&[1, 2, 3, 9], 1), slot(&[1, 5, 6, 8], 2), slot(&[], 0)];
        assert_eq!(pick_slot(&mut slots, "next", 3, &t(&[1, 5, 6, 7])), Some(1));
        assert_eq!(slots[1].conversation.as_deref(), Some("next"));
        assert_eq!(
            slots[1].tokens,
            t(&[1, 5, 6, 8]),
            "the cache stays for generate to trim"
        );
        // Nothing shared: the least recently used free slot, never a live one.
        assert_eq!(pick_slot(&mut slots, "other", 4, &t(&[42])), Some(2));
    }

    #[test]
    fn ended_caches_make_room_first_then_idle_ones_oldest_first() {
        let t = |n: usize| vec![LlamaToken(1); n];
        let slot = |conversation: Option<&str>, n, last_used| Slot {
            conversation: conversation.map(String::from),
            tokens: t(n),
            last_used,
            live: None,
        };
        let slots = vec![
            slot(Some("between turns"), 1500, 0),
            slot(None, 1000, 3),
            slot(None, 1000, 1),
            slot(Some("me"), 0, 6),
        ];
        // 3500 used besides slot 3; 1000 more needed in 4096: the oldest ended call's (2) goes.
        assert_eq!(caches_to_drop(&slots, 3, 1000, 4096), vec![2]);
        // 2500 more: both ended calls' go, and the call between turns keeps its cache...
        assert_eq!(caches_to_drop(&slots, 3, 2500, 4096), vec![2, 1]);
        // ...until nothing else makes room (it re-reads its prompt next turn).
        assert_eq!(caches_to_drop(&slots, 3, 4000, 4096), vec![2, 1, 0]);
        assert!(caches_to_drop(&slots, 3, 500, 4096).is_empty());
        assert!(fits(&slots, 3, 596, 4096) && !fits(&slots, 3, 597, 4096));
    }

    #[test]
    fn a_live_slot_is_neither_taken_nor_dropped() {
        let t = |n: usize| vec![LlamaToken(1); n];
        let slot = |conversation: Option<&str>, n, last_used, live| Slot {
            conversation: conversation.map(String::from),
            tokens: t(n),
            last_used,
            live,
        };
        // "a" generates on slot 0; its call ended meanwhile (no conversation), as in a hang-up.
        let mut slots = vec![slot(None, 100, 1, Some(300)), slot(Some("b"), 50, 2, None)];
        assert_eq!(
            pick_slot(&mut slots, "c", 3, &t(100)),
            Some(1),
            "b's is evicted"
        );
        slots[0].conversation = Some("a".into());
        assert_eq!(
            pick_slot(&mut slots, "a", 4, &t(5)),
            None,
            "a's own slot is busy"
        );
        slots[1].live = Some(60);
        assert_eq!(
            pick_slot(&mut slots, "d", 5, &t(5)),
            None,
            "every slot is live"
        );
        // A live slot counts with what it may grow to, and is never a donor.
        slots[0].conversation = None;
        slots[1] = slot(None, 1000, 0, None);
        assert_eq!(caches_to_drop(&slots, 1, 500, 700), Vec::<usize>::new());
        let slots = [
            slot(None, 100, 1, Some(300)),
            slot(None, 300, 0, None),
            slot(None, 0, 0, None),
        ];
        assert_eq!(caches_to_drop(&slots, 2, 500, 700), vec![1]);
        assert!(!fits(&slots, 2, 401, 700), "the live slot counts at 300");
    }
}
