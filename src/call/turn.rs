//! Turn-taking decisions, pure and clocked in samples: when the caller's turn is over, whether
//! an interruption is a real barge-in or a backchannel, and whether inbound "speech" is just our
//! own voice leaking back from the phone.
//!
//! The session feeds these with VAD events and transcripts; nothing here touches a socket or a
//! clock, so every rule is unit-tested with exact numbers.

/// Endpointing settings (LiveKit's defaults: 0.5 s minimum, 3 s maximum).
#[derive(Debug, Clone)]
pub struct EndpointRules {
    /// Silence after which a turn whose transcript sounds complete ends.
    pub min_silence_ms: u32,
    /// Silence after which a turn ends when the transcript gives no hint.
    pub default_silence_ms: u32,
    /// Silence after which a turn always ends (also after "and", "so", "um").
    pub max_silence_ms: u32,
}

/// What the turn detector says now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TurnDecision {
    /// Keep listening.
    Wait,
    /// The caller is done: answer.
    EndTurn,
}

/// Words after which a speaker usually goes on.
const CONTINUATIONS: &[&str] = &[
    "and", "so", "but", "or", "because", "um", "uh", "er", "hmm", "like", "the", "a", "an", "to",
    "my", "is", "if", "then", "well", "actually",
];

/// Endings of someone thinking aloud: the answer is coming ("Hmm, let me think."). "Hold on"
/// and "one second" are not among them: they ask us to wait, and a person answers that at
/// once ("Sure, take your time. I will be right here.", the script's `hold`), not after the longest endpoint.
const THINKING: &[&str] = &["let me think", "let me see", "let me check", "let me look"];

/// How a transcript ends, as far as turn-taking cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Sentence punctuation after a content word: probably done.
    Complete,
    /// A conjunction, a filler or a request for time: probably more to come.
    Trailing,
    /// Nothing to go on.
    Unknown,
    /// No words at all (noise, a cough).
    Empty,
}

pub fn classify_ending(transcript: &str) -> Ending {
    let t = transcript.trim();
    if !t.chars().any(|c| c.is_alphanumeric()) {
        return Ending::Empty;
    }
    let last_word = t
        .split_whitespace()
        .next_back()
        .unwrap_or("")
        .trim_matches(|c: char| !c.is_alphanumeric())
        .to_lowercase();
    let words: String = t
        .to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let holds = THINKING
        .iter()
        .any(|h| words == *h || words.ends_with(&format!(" {h}")));
    if holds
        || CONTINUATIONS.contains(&last_word.as_str())
        || t.ends_with("...")
        || t.ends_with(',')
    {
        Ending::Trailing
    } else if t.ends_with(['.', '?', '!']) {
        Ending::Complete
    } else {
        Ending::Unknown
    }
}

impl EndpointRules {
    /// Decides after `silence_ms` of silence, given the speculative transcript if it is ready.
    /// Without a transcript we wait (the reply needs it anyway) until the maximum.
    pub fn decide(&self, silence_ms: u32, transcript: Option<&str>) -> TurnDecision {
        if silence_ms >= self.max_silence_ms {
            return TurnDecision::EndTurn;
        }
        let needed = match transcript.map(classify_ending) {
            None => return TurnDecision::Wait,
            Some(Ending::Complete) | Some(Ending::Empty) => self.min_silence_ms,
            Some(Ending::Unknown) => self.default_silence_ms,
            Some(Ending::Trailing) => self.max_silence_ms,
        };
        if silence_ms >= needed {
            TurnDecision::EndTurn
        } else {
            TurnDecision::Wait
        }
    }
}

/// True when a transcript is only a backchannel ("uh-huh", "yeah", "okay right") or has no
/// words: the caller is listening, not taking the turn.
pub fn is_backchannel(transcript: &str, backchannels: &[String]) -> bool {
    let normalized: String = transcript
        .to_lowercase()
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '\'' || c == '-' {
                c
            } else {
                ' '
            }
        })
        .collect();
    let words: Vec<&str> = normalized.split_whitespace().collect();
    if words.is_empty() {
        return true;
    }
    if words.len() > 3 {
        return false;
    }
    let joined = words.join(" ");
    backchannels.iter().any(|b| b == &joined)
        || words.iter().all(|w| backchannels.iter().any(|b| b == w))
}

/// Telling our own voice, leaked back by the phone, from the caller.
///
/// Echo arrives while we play, delayed by tens of milliseconds and attenuated (echo return loss
/// is typically 10+ dB on phones). So: within `onset_ms` of our audio starting, inbound speech is
/// not trusted at all (the onset of our own audio is the classic false barge-in); later, inbound
/// frames more than `margin_db` below what we are playing count as echo.
#[derive(Debug, Clone)]
pub struct EchoGuard {
    pub onset_ms: u64,
    pub margin_db: f32,
    /// (start_ms, end_ms, level_db) of outbound audio as Twilio plays it.
    playing: Vec<(u64, u64, f32)>,
}

impl EchoGuard {
    pub fn new(onset_ms: u64, margin_db: f32) -> Self {
        Self {
            onset_ms,
            margin_db,
            playing: Vec::new(),
        }
    }

    /// Our audio plays over `[start_ms, end_ms)` at `level_db`.
    pub fn record_outbound(&mut self, start_ms: u64, end_ms: u64, level_db: f32) {
        self.playing.push((start_ms, end_ms, level_db));
        if self.playing.len() > 4096 {
            self.playing.drain(..2048);
        }
    }

    /// Everything queued was dropped (`clear`): nothing plays after `now_ms`.
    pub fn cut(&mut self, now_ms: u64) {
        self.playing.retain(|p| p.0 < now_ms);
        for p in &mut self.playing {
            p.1 = p.1.min(now_ms);
        }
    }

    /// Is our audio playing at the caller's ear at `now_ms`?
    pub fn is_playing(&self, now_ms: u64) -> bool {
        self.playing
            .iter()
            .rev()
            .take(64)
            .any(|&(start, end, _)| start <= now_ms && now_ms < end)
    }

    /// Is an inbound frame at `now_ms` with `level_db` probably our own echo?
    pub fn is_probable_echo(&self, now_ms: u64, level_db: f32) -> bool {
        // Start of the current run of contiguous playback.
        let mut current: Option<(u64, f32)> = None;
        for &(start, end, level) in &self.playing {
            if start <= now_ms && now_ms < end + 60 {
                current = Some((start, level));
            }
        }
        let Some((_, level)) = current else {
            return false;
        };
        let run_start = self.run_start(now_ms);
        now_ms < run_start + self.onset_ms || level_db < level - self.margin_db
    }

    fn run_start(&self, now_ms: u64) -> u64 {
        let mut start = now_ms;
        // Walk back through back-to-back segments (gaps under 60 ms count as continuous).
        let mut changed = true;
        while changed {
            changed = false;
            for &(s, e, _) in &self.playing {
                if s < start && e + 60 >= start {
                    start = s;
                    changed = true;
                }
            }
        }
        start
    }
}

#[cfg(test)]
mod tests;
