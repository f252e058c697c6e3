//! Streaming clause splitter: LLM tokens in, speakable clauses out.
//!
//! TTS starts on the first clause while the LLM is still generating, so the split point decides
//! the time to first audio. Sentences end at `.`, `!`, `?` followed by a space (not inside `3.5`,
//! not after `Mr.`); a comma, semicolon or colon also ends a clause once it is long enough to
//! sound natural on its own. Text meant for eyes (markdown, emojis, bullet marks) is removed.

use crate::model::ChatMessage;

/// Splits streamed text into clauses.
#[derive(Debug, Default)]
pub struct ClauseSplitter {
    buffer: String,
    /// Clauses shorter than this never end at a comma: "Yes, ..." stays one clause.
    min_comma_clause_chars: usize,
    /// Clauses emitted so far: the first may end at an earlier comma, because time to first
    /// audio is what the caller notices.
    emitted: usize,
}

const ABBREVIATIONS: &[&str] = &[
    "mr", "mrs", "ms", "dr", "st", "vs", "etc", "e.g", "i.e", "no",
];

impl ClauseSplitter {
    pub fn new() -> Self {
        Self {
            buffer: String::new(),
            min_comma_clause_chars: 24,
            emitted: 0,
        }
    }

    /// Adds streamed text; returns the clauses it completed.
    pub fn push(&mut self, text: &str) -> Vec<String> {
        self.buffer.push_str(text);
        let mut out = Vec::new();
        while let Some(end) = self.find_boundary() {
            let clause: String = self.buffer.drain(..end).collect();
            if let Some(c) = clean_for_speech(&clause) {
                out.push(c);
                self.emitted += 1;
            }
        }
        out
    }

    /// The remaining text at the end of the stream.
    pub fn finish(&mut self) -> Option<String> {
        let rest = std::mem::take(&mut self.buffer);
        clean_for_speech(&rest)
    }

    /// Byte index just past a clause boundary (including the following space), if one is complete.
    fn find_boundary(&self) -> Option<usize> {
        let b = self.buffer.as_bytes();
        let min_comma = if self.emitted == 0 {
            12
        } else {
            self.min_comma_clause_chars
        };
        for (i, &c) in b.iter().enumerate() {
            let next_is_space = b.get(i + 1).is_some_and(|n| n.is_ascii_whitespace());
            if !next_is_space {
                // Newlines end a clause on their own (LLMs use them between sentences).
                if c == b'\n' && i > 0 {
                    return Some(i + 1);
                }
                continue;
            }
            match c {
                b'.' => {
                    let word = self.buffer[..i]
                        .rsplit(|ch: char| ch.is_whitespace())
                        .next()
                        .unwrap_or("")
                        .to_ascii_lowercase();
                    if !ABBREVIATIONS.contains(&word.as_str()) {
                        return Some(i + 2);
                    }
                }
                b'!' | b'?' => return Some(i + 2),
                b',' | b';' | b':' if i + 1 >= min_comma => return Some(i + 2),
                _ => {}
            }
        }
        None
    }
}

/// Removes what a phone voice should not read out; `None` when nothing speakable is left.
pub fn clean_for_speech(text: &str) -> Option<String> {
    let cleaned: String = text
        .chars()
        .filter(|c| !matches!(c, '*' | '#' | '_' | '`' | '~' | '<' | '>' | '[' | ']' | '|'))
        .filter(|c| (*c as u32) < 0x2000 || matches!(c, '’' | '‘' | '“' | '”' | '—' | '–'))
        .collect();
    let words: Vec<&str> = cleaned.split_whitespace().collect();
    let joined = words.join(" ");
    let joined = joined.trim_start_matches(['-', '•', ' ']).to_string();
    if joined.chars().any(|c| c.is_alphanumeric()) {
        Some(joined)
    } else {
        None
    }
}

/// Counts sentences in text already split into clauses (for the reply's sentence limit).
pub fn ends_sentence(clause: &str) -> bool {
    clause.trim_end().ends_with(['.', '!', '?'])
}

/// Why a generated clause is not said (the tiny model babbles; the script decides).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unfit {
    /// It repeats the instruction it was given ("In one short sentence, how could ...").
    Echo,
    /// The line's first clause shares no subject word with its instruction and goal ("We're
    /// thrilled to have you as a guest").
    OffSubject,
    /// It says again a line the agent already said in the call (the tiny model copies its
    /// history: "Is now a good time for a quick question about your electricity bill?" as the
    /// pitch's lead-in, a question the caller had answered).
    Repeat,
}

/// Words too common to tell a line's subject.
const COMMON: &[&str] = &[
    "about", "after", "again", "also", "been", "before", "being", "could", "does", "doing", "each",
    "even", "from", "have", "here", "into", "just", "like", "make", "many", "more", "most", "much",
    "only", "other", "over", "really", "same", "say", "should", "some", "such", "than", "that",
    "their", "them", "then", "there", "these", "they", "this", "those", "very", "want", "well",
    "were", "what", "when", "where", "which", "while", "will", "with", "would", "your", "yours",
    "sentence", "short", "one",
];

/// Subject words of a text: lower-case, four letters or more, not common, cut to a five-letter
/// stem ("lower", "lowering").
fn subject_words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .map(str::to_lowercase)
        .filter(|w| w.chars().count() >= 4 && !COMMON.contains(&w.as_str()))
        .map(|w| w.chars().take(5).collect())
        .collect()
}

/// Checks a generated clause against the node's instruction and goal: `first` is the line's
/// first clause (the one that must be on the subject). A node without a goal (the open
/// conversation, whose subject is the caller's) is not checked.
pub fn unfit(clause: &str, first: bool, instruction: &str, goal: &str) -> Option<Unfit> {
    let given = subject_words(instruction);
    if given.is_empty() || goal.trim().is_empty() {
        return None;
    }
    // Nearly every word of it is a word of the instruction: a copy, not an answer (a line on
    // the subject shares some: "Solar panels could cut a 200 dollar bill by a third").
    let (all, asked) = (lower_words(clause), lower_words(instruction));
    let copied = all.iter().filter(|w| asked.contains(w)).count();
    if all.len() >= 6 && copied * 100 >= all.len() * 85 {
        return Some(Unfit::Echo);
    }
    let said = subject_words(clause);
    let topic: Vec<String> = given.into_iter().chain(subject_words(goal)).collect();
    if first && !said.iter().any(|w| topic.contains(w)) {
        return Some(Unfit::OffSubject);
    }
    None
}

/// [`unfit`], or a clause whose words are nearly all one sentence the agent already said
/// (the assistant turns of the model's `history`): at least 6 words, 85 % of them in it.
pub fn unfit_in_call(
    clause: &str,
    first: bool,
    (instruction, goal): (&str, &str),
    history: &[ChatMessage],
) -> Option<Unfit> {
    unfit(clause, first, instruction, goal).or_else(|| {
        let all = lower_words(clause);
        let repeats = |sentence: &str| {
            let before = lower_words(sentence);
            let shared = all.iter().filter(|w| before.contains(w)).count();
            all.len() >= 6 && shared * 100 >= all.len() * 85
        };
        history
            .iter()
            .filter(|m| m.role == "assistant")
            .flat_map(|m| m.content.split_inclusive(['.', '?', '!']))
            .any(repeats)
            .then_some(Unfit::Repeat)
    })
}

fn lower_words(t: &str) -> Vec<String> {
    t.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_clause_that_says_again_what_the_agent_said_is_unfit() {
        let key = (
            "In one short sentence, say how solar panels could lower a monthly bill of about 200 dollars.",
            "Offer a free, no-obligation consultation.",
        );
        let said = [
            ChatMessage::new("assistant", "Hi, this is Nova calling from Sunrise Solar."),
            ChatMessage::new(
                "assistant",
                "Is now a good time for a quick question about your electricity bill?",
            ),
            ChatMessage::new(
                "user",
                "Yes, and the bill is high. Sunrise Solar, you said?",
            ),
            ChatMessage::new("assistant", "And do you own your home?"),
        ];
        let check = |c: &str| unfit_in_call(c, true, key, &said);
        // What the tiny model wrote as the pitch's lead-in in a simulated call.
        assert_eq!(
            check("Is now a good time for a quick question about your electricity bill?"),
            Some(Unfit::Repeat)
        );
        assert_eq!(
            check("Now is a good time for a quick question about your bill."),
            Some(Unfit::Repeat)
        );
        // On the subject, sharing words with earlier lines but saying something new.
        assert_eq!(
            check("Solar panels could cut your electricity bill by a third."),
            None
        );
        // Short lines are not judged as copies; the instruction's checks still apply.
        assert_eq!(check("Do you own your home?"), Some(Unfit::OffSubject));
        assert_eq!(
            unfit_in_call("Solar could save you a lot.", true, key, &said),
            None
        );
        assert_eq!(
            unfit_in_call(
                "Is now a good time for a quick question about your electricity bill?",
                true,
                key,
                &[]
            ),
            None
        );
    }

    #[test]
    fn generated_clauses_off_the_subject_or_echoing_the_instruction_are_unfit() {
        let instruction =
            "In one short sentence, say how solar panels could lower a monthly bill of about 200 dollars.";
        let goal = "Offer a free, no-obligation consultation.";
        let check = |c: &str, first: bool| unfit(c, first, instruction, goal);
        // What the tiny model said in a rehearsal.
        assert_eq!(
            check(
                "In one short sentence, how could solar panels lower a monthly bill of $200?",
                true
            ),
            Some(Unfit::Echo)
        );
        assert_eq!(check("No, I'm sorry.", true), Some(Unfit::OffSubject));
        assert_eq!(
            check(
                "We're thrilled to have you as a guest for our upcoming visit.",
                true
            ),
            Some(Unfit::OffSubject)
        );
        assert_eq!(check("Hi, that's great.", true), Some(Unfit::OffSubject));
        // Lines on the subject.
        assert_eq!(
            check(
                "Solar panels could cut a 200 dollar bill by about a third.",
                true
            ),
            None
        );
        assert_eq!(
            check(
                "Solar panels could lower a monthly bill of 200 dollars by a third.",
                true
            ),
            None
        );
        assert_eq!(check("With panels on your roof,", true), None);
        assert_eq!(check("Your bill could drop a lot with solar.", true), None);
        assert_eq!(
            check("A free consultation shows what you would save.", true),
            None
        );
        // Later clauses only have to not echo.
        assert_eq!(check("and that adds up over a year.", false), None);
        assert_eq!(
            check("say how solar panels could lower a monthly bill", false),
            Some(Unfit::Echo)
        );
        // The open conversation (no goal; the instruction only says how long): not checked.
        let open = "Answer in one or two short spoken sentences.";
        assert_eq!(unfit("No, I'm sorry.", true, open, ""), None);
        assert_eq!(
            unfit(
                "Answer in one or two short spoken sentences.",
                true,
                open,
                ""
            ),
            None
        );
    }

    fn split_stream(pieces: &[&str]) -> Vec<String> {
        let mut s = ClauseSplitter::new();
        let mut out: Vec<String> = pieces.iter().flat_map(|p| s.push(p)).collect();
        out.extend(s.finish());
        out
    }

    #[test]
    fn sentences_split_as_tokens_arrive() {
        let mut s = ClauseSplitter::new();
        assert!(s.push("Hello").is_empty());
        assert!(s.push(" there.").is_empty(), "needs the following space");
        assert_eq!(s.push(" How"), vec!["Hello there."]);
        assert_eq!(s.push(" are you? I"), vec!["How are you?"]);
        assert_eq!(s.finish().as_deref(), Some("I"));
    }

    #[test]
    fn decimals_abbreviations_and_short_commas_do_not_split() {
        let out = split_stream(&["It costs 3.5 cents. ", "Mr. Smith said yes, ", "thanks."]);
        assert_eq!(
            out,
            vec!["It costs 3.5 cents.", "Mr. Smith said yes, thanks."]
        );
    }

    #[test]
    fn long_comma_clauses_split_early() {
        let out = split_stream(&[
            "Our consultation is completely free of charge, and it takes ten minutes.",
        ]);
        assert_eq!(
            out,
            vec![
                "Our consultation is completely free of charge,",
                "and it takes ten minutes."
            ]
        );
    }

    #[test]
    fn markdown_and_emoji_are_dropped() {
        assert_eq!(clean_for_speech("**Great!** 😀").as_deref(), Some("Great!"));
        assert_eq!(clean_for_speech("- item one").as_deref(), Some("item one"));
        assert_eq!(clean_for_speech(" ** "), None);
        assert!(ends_sentence("Done."));
        assert!(!ends_sentence("and then,"));
    }
}
