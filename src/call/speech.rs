//! Speech handles: what the agent said, what the caller actually heard.
//!
//! Every agent utterance gets an id, a cancel token and an `interruptible` flag (the legal
//! disclosure and the goodbye are not interruptible). Its clauses are recorded as they are queued;
//! Twilio's echoed marks say which were played. After a barge-in, marks that come back are
//! "dropped", not "played" (Twilio echoes pending marks on `clear`), so the conversation history
//! keeps only what the caller heard. Shared by the inbound loop (marks, barge-in) and the agent
//! (queueing, history); the lock is never held across an await.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;

/// One agent utterance.
#[derive(Debug, Clone)]
pub struct SpeechRecord {
    pub id: u64,
    pub interruptible: bool,
    pub cancel: CancellationToken,
    /// Clause texts in the order queued.
    pub clauses: Vec<String>,
    /// Clauses whose mark Twilio echoed while the speech was live.
    pub played: BTreeSet<u32>,
    /// All clauses are queued (the end mark follows them).
    pub complete: bool,
    /// The end mark came back: everything was played.
    pub fully_played: bool,
    /// A barge-in cut it.
    pub interrupted: bool,
    /// The clause that was playing when it was cut, and the share of its audio played (the
    /// pacer's playback clock; marks only resolve whole clauses).
    pub partial: Option<(u32, f32)>,
}

/// Splits a clause after the share `fraction` of its words: (heard, rest).
fn split_words(clause: &str, fraction: f32) -> (String, String) {
    let words: Vec<&str> = clause.split_whitespace().collect();
    let k = ((words.len() as f32 * fraction.clamp(0.0, 1.0)).floor() as usize).min(words.len());
    (words[..k].join(" "), words[k..].join(" "))
}

impl SpeechRecord {
    /// What the caller heard: every clause if fully played, else the clauses whose marks came back.
    pub fn heard_text(&self) -> String {
        if self.fully_played {
            return self.clauses.join(" ");
        }
        let mut parts = Vec::new();
        for (i, clause) in self.clauses.iter().enumerate() {
            let i = i as u32;
            if self.played.contains(&i) {
                parts.push(clause.clone());
            } else if let Some((_, fraction)) = self.partial.filter(|p| p.0 == i) {
                parts.push(split_words(clause, fraction).0);
            }
        }
        parts.retain(|p| !p.is_empty());
        parts.join(" ")
    }

    /// Clauses queued but never heard, in order (what a resume says).
    pub fn unheard_clauses(&self) -> Vec<String> {
        if self.fully_played {
            return Vec::new();
        }
        let mut rest = Vec::new();
        for (i, clause) in self.clauses.iter().enumerate() {
            let i = i as u32;
            if self.played.contains(&i) {
                continue;
            }
            match self.partial.filter(|p| p.0 == i) {
                Some((_, fraction)) => rest.push(split_words(clause, fraction).1),
                None => rest.push(clause.clone()),
            }
        }
        rest.retain(|r| !r.is_empty());
        rest
    }

    /// Still audible or about to be: started and neither fully played nor cut.
    pub fn is_live(&self) -> bool {
        !self.fully_played && !self.interrupted
    }
}

#[derive(Debug, Default)]
struct Board {
    speeches: BTreeMap<u64, SpeechRecord>,
    next_id: u64,
    expected: Option<String>,
    choices: Vec<String>,
}

/// The call's speech handles.
#[derive(Clone, Default)]
pub struct SpeechBoard {
    inner: Arc<Mutex<Board>>,
}

impl SpeechBoard {
    fn lock(&self) -> std::sync::MutexGuard<'_, Board> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts a new utterance; returns its id and cancel token.
    pub fn begin(
        &self,
        interruptible: bool,
        parent: &CancellationToken,
    ) -> (u64, CancellationToken) {
        let mut b = self.lock();
        b.next_id += 1;
        let id = b.next_id;
        let cancel = parent.child_token();
        b.speeches.insert(
            id,
            SpeechRecord {
                id,
                interruptible,
                cancel: cancel.clone(),
                clauses: Vec::new(),
                played: BTreeSet::new(),
                complete: false,
                fully_played: false,
                interrupted: false,
                partial: None,
            },
        );
        // Keep the last few only: history reconciliation looks back one or two utterances.
        while b.speeches.len() > 16 {
            let first = *b.speeches.keys().next().unwrap_or(&0);
            b.speeches.remove(&first);
        }
        (id, cancel)
    }

    /// Records a queued clause; returns its index.
    pub fn add_clause(&self, id: u64, text: &str) -> u32 {
        let mut b = self.lock();
        match b.speeches.get_mut(&id) {
            Some(s) => {
                s.clauses.push(text.to_string());
                (s.clauses.len() - 1) as u32
            }
            None => 0,
        }
    }

    pub fn complete(&self, id: u64) {
        if let Some(s) = self.lock().speeches.get_mut(&id) {
            s.complete = true;
        }
    }

    /// A clause mark came back from Twilio.
    pub fn clause_played(&self, id: u64, clause: u32) {
        if let Some(s) = self.lock().speeches.get_mut(&id) {
            if !s.interrupted {
                s.played.insert(clause);
            }
        }
    }

    /// The end mark came back from Twilio.
    pub fn fully_played(&self, id: u64) {
        if let Some(s) = self.lock().speeches.get_mut(&id) {
            if !s.interrupted {
                s.fully_played = true;
            }
        }
    }

    /// The pacer's estimate of how much of a clause played before a `clear`.
    pub fn cut_at(&self, id: u64, clause: u32, fraction: f32) {
        if let Some(s) = self.lock().speeches.get_mut(&id) {
            if !s.played.contains(&clause) {
                s.partial = Some((clause, fraction));
            }
        }
    }

    /// The live utterance the caller could be talking over, if any.
    pub fn live(&self) -> Option<SpeechRecord> {
        self.lock()
            .speeches
            .values()
            .rev()
            .find(|s| s.is_live())
            .cloned()
    }

    /// Cuts every live interruptible utterance (barge-in); returns the ids cut.
    pub fn interrupt(&self) -> Vec<u64> {
        let mut b = self.lock();
        let mut cut = Vec::new();
        for s in b.speeches.values_mut() {
            if s.is_live() && s.interruptible {
                s.interrupted = true;
                s.cancel.cancel();
                cut.push(s.id);
            }
        }
        cut
    }

    /// Cuts everything, interruptible or not (opt-out, hang-up).
    pub fn interrupt_all(&self) {
        for s in self.lock().speeches.values_mut() {
            if s.is_live() {
                s.interrupted = true;
                s.cancel.cancel();
            }
        }
    }

    /// The end of the latest utterance (its last clauses, at most `max_chars`): what the
    /// caller is most likely answering, a hint for recognising their words.
    pub fn latest_words(&self, max_chars: usize) -> Option<String> {
        let b = self.lock();
        let latest = b.speeches.values().next_back()?;
        let mut words = String::new();
        for clause in latest.clauses.iter().rev() {
            if !words.is_empty() && words.len() + clause.len() + 1 > max_chars {
                break;
            }
            words = if words.is_empty() {
                clause.clone()
            } else {
                format!("{clause} {words}")
            };
        }
        (!words.is_empty()).then_some(words)
    }

    /// What answers to the current question sound like (the script node's examples), set by
    /// the agent as the call moves: a hint for recognising the caller's words.
    pub fn expect(&self, examples: Option<String>) {
        self.lock().expected = examples;
    }

    pub fn expected(&self) -> Option<String> {
        self.lock().expected.clone()
    }

    /// The answers a turn the ear doubts is listened to again against (the script node's
    /// answers that carry no value), set with [`Self::expect`].
    pub fn offer(&self, choices: Vec<String>) {
        self.lock().choices = choices;
    }

    pub fn choices(&self) -> Vec<String> {
        self.lock().choices.clone()
    }

    pub fn get(&self, id: u64) -> Option<SpeechRecord> {
        self.lock().speeches.get(&id).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_keeps_only_what_was_heard() {
        let board = SpeechBoard::default();
        let root = CancellationToken::new();
        let (id, cancel) = board.begin(true, &root);
        for c in ["First clause.", "Second clause.", "Third clause."] {
            board.add_clause(id, c);
        }
        board.complete(id);
        board.clause_played(id, 0);
        assert_eq!(board.live().map(|s| s.id), Some(id));
        assert_eq!(board.interrupt(), vec![id]);
        assert!(cancel.is_cancelled());
        // Marks echoed after `clear` mean dropped.
        board.clause_played(id, 1);
        board.fully_played(id);
        let s = board.get(id).unwrap();
        assert_eq!(s.heard_text(), "First clause.");
        assert_eq!(s.unheard_clauses(), vec!["Second clause.", "Third clause."]);
        assert!(board.live().is_none());
        // Half of the second clause was playing when the caller cut in.
        board.cut_at(id, 1, 0.5);
        let s = board.get(id).unwrap();
        assert_eq!(s.heard_text(), "First clause. Second");
        assert_eq!(s.unheard_clauses(), vec!["clause.", "Third clause."]);
    }

    #[test]
    fn non_interruptible_speech_survives_barge_in() {
        let board = SpeechBoard::default();
        let root = CancellationToken::new();
        let (id, cancel) = board.begin(false, &root);
        board.add_clause(id, "This call is from Sunrise Solar.");
        assert!(board.interrupt().is_empty());
        assert!(!cancel.is_cancelled());
        board.fully_played(id);
        assert_eq!(
            board.get(id).unwrap().heard_text(),
            "This call is from Sunrise Solar."
        );
        board.interrupt_all();
        assert!(!cancel.is_cancelled(), "already played: nothing to cut");
    }

    #[test]
    fn latest_words_are_the_end_of_the_latest_line() {
        let board = SpeechBoard::default();
        let root = CancellationToken::new();
        assert_eq!(board.latest_words(60), None);
        let (a, _) = board.begin(false, &root);
        board.add_clause(a, "An old line.");
        let (b, _) = board.begin(true, &root);
        for c in [
            "Great, thanks.",
            "We help homeowners save.",
            "Do you own your home?",
        ] {
            board.add_clause(b, c);
        }
        assert_eq!(
            board.latest_words(50).as_deref(),
            Some("We help homeowners save. Do you own your home?")
        );
        assert_eq!(
            board.latest_words(5).as_deref(),
            Some("Do you own your home?"),
            "the last clause even when it is longer"
        );
    }
}
