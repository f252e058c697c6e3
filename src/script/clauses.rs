//! Streaming clause splitter: LLM tokens in, speakable clauses out.
//!
//! TTS starts on the first clause while the LLM is still generating, so the split point decides
//! the time to first audio. Sentences end at `.`, `!`, `?` followed by a space (not inside `3.5`,
//! not after `Mr.`); a comma, semicolon or colon also ends a clause once it is long enough to
//! sound natural on its own. Text meant for eyes (markdown, emojis, bullet marks) is removed.

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

#[cfg(test)]
mod tests {
    use super::*;

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
