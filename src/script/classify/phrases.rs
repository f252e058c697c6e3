//! The phrases rules recognise, written as callers say them (apostrophes are dropped before
//! matching, so "don't" and "dont" are one). Whole-phrase matches: "stop" matches "please stop"
//! but not "stopped".

/// "Stop calling me" in its many forms (FCC: honour any reasonable opt-out request). A bare
/// "stop" counts: a sales call is no place where "stop" means anything else.
pub(super) const OPT_OUT: &[&str] = &[
    "stop calling",
    "quit calling",
    "take me off",
    "take my number off",
    "remove me",
    "remove my number",
    "delete my number",
    "lose my number",
    "do not call",
    "don't call",
    "never call",
    "no more calls",
    "don't contact me",
    "do not contact me",
    "put me on your do not call",
    // "Put me on your do not call list" as a small ear hears it ("your device, call list").
    "call list",
    // "Stop calling me" as a small ear hears it: nobody asks a sales call to start calling.
    "start calling me",
    "unsubscribe",
    // ... as a small ear spells or hears it ("un-subscribe", "I want to subscribe from these").
    "un subscribe",
    "subscribe from",
    "opt out",
    "stop it",
    "stop",
];

pub(super) const WRONG_PERSON: &[&str] = &[
    "wrong number",
    "wrong person",
    "the wrong guy",
    "no one by that name",
    "nobody by that name",
    "no one here by that name",
    "nobody here by that name",
    // ... as a small ear hears it ("There is no one here by name").
    "no one here by",
    "nobody here by",
    "doesn't live here",
    "does not live here",
    "don't live here anymore",
    "doesn't live here anymore",
    "you have the wrong",
    "you've got the wrong",
];

/// "Not interested" anywhere in the answer.
pub(super) const DECLINE: &[&str] = &[
    "not interested",
    "not really interested",
    "not that interested",
    "not very interested",
    "no longer interested",
    "uninterested",
    "no thanks",
    "no thank you",
    "nah thanks",
    "not for me",
    "not for us",
    "i'll pass",
    "we'll pass",
    "i will pass",
    "we will pass",
    "i'm all set",
    "we're all set",
    "i'm good thanks",
    "i'm good thank you",
    "we're good thanks",
    "don't want it",
    "don't want any",
    "don't need it",
    "don't need any",
    "we don't need",
    "i don't need",
    "not buying",
    "no i'm good",
    "no we're good",
    "nah i'm good",
];

/// Declines only when they are the whole answer, give or take [`DECLINE_FILLER`]: "I'm good"
/// declines, "I'm good with that" does not.
pub(super) const DECLINE_WHOLE: &[&str] = &[
    "i'm good",
    "we're good",
    "i am good",
    "we are good",
    "i'm fine",
    "we're fine",
    "i'm okay",
    "i'm ok",
    "pass",
    "no interest",
];

pub(super) const DECLINE_FILLER: &[&str] = &[
    "oh", "um", "uh", "well", "thanks", "thank", "you", "no", "nah", "nope", "really", "but",
    "actually", "sorry", "honestly", "yeah", "so", "im", "i", "am", "sir", "maam",
];

/// "Call me another time" (the callback node follows, or a polite end).
pub(super) const CALL_LATER: &[&str] = &[
    "call me later",
    "call me back",
    "call back later",
    "call me another time",
    "call another time",
    "call some other time",
    "try me later",
    "try again later",
    "try me another time",
    "not a good time",
    "bad time",
    "busy right now",
    "i'm busy now",
    "in a meeting",
    "i'm driving",
    "can't talk right now",
    "cannot talk right now",
    "can't talk now",
];

/// Key words of the robot question: any of them makes the turn that question, before any node
/// intent can read it as "yes".
pub(super) const ROBOT: &[&str] = &[
    "robot",
    "bot",
    "chatbot",
    "human",
    "real person",
    "live person",
    "actual person",
    "real human",
    "machine",
    "computer",
    "ai",
    "a i",
    "artificial",
    "recording",
    "recorded",
    "automated",
];

/// Turns that ask us to repeat or check the line ("Hello?", "What?"): the question is asked
/// again. Matched as a sequence covering the whole turn ("sorry" + "what was that").
pub(super) const REPEAT: &[&str] = &[
    "hello",
    "hi",
    "hey",
    "what",
    "huh",
    "sorry",
    "pardon",
    "pardon me",
    "excuse me",
    "come again",
    "say that again",
    "repeat that",
    "can you repeat that",
    "could you repeat that",
    "what did you say",
    "what did you just say",
    "what was that",
    "what was it",
    "what was the question",
    "whats the question",
    "whats that",
    "say again",
    "say it again",
    "say that again please",
    "can you say that again",
    "could you say that again",
    "one more time",
    "again",
    "i missed that",
    "i didn't catch that",
    "i didn't get that",
    "i didn't hear that",
    "i didn't hear you",
    "i can't hear you",
    "you broke up",
    "you're breaking up",
    "you are breaking up",
];

/// Words a question starts with; the auxiliaries only in turns of three words or more ("do
/// it" is no question).
pub(super) const WH: &[&str] = &[
    "what", "whats", "how", "hows", "why", "when", "where", "who", "whos", "which",
];
pub(super) const AUX: &[&str] = &[
    "can", "could", "do", "does", "is", "are", "will", "would", "did", "should", "may",
];

/// Openers skipped before looking for a question word.
pub(super) const OPENERS: &[&str] = &[
    "um", "uh", "oh", "so", "well", "hi", "hello", "hey", "okay", "ok", "sorry", "wait", "and",
    "but", "yeah", "yes", "no", "hmm", "then", "first", "actually",
];

/// Words too common to tell intents apart (near matches count the others).
pub(super) const STOP_WORDS: &[&str] = &[
    "a", "an", "the", "i", "it", "is", "its", "we", "my", "to", "of", "and", "about", "around",
    "so", "well", "um", "uh", "oh", "just", "that", "this", "be", "you", "your", "me", "do",
    "does", "did", "are", "am", "can", "could", "would", "will", "im", "okay", "ok", "please",
    "really", "yeah", "what", "whats", "how", "hows", "why", "when", "where", "who", "whos",
    "which",
];

/// Two-word answers that open a yes/no ("I do, we own it"); "we have" is not one ("we have two
/// kids" answers nothing).
pub(super) const LEADING_PAIRS: &[&str] = &[
    "of course",
    "not really",
    "i do",
    "we do",
    "i dont",
    "we dont",
    "i am",
    "im not",
    "i did",
    "uh huh",
    "mm hmm",
    "all right",
    "not yet",
];

/// Words that do not tie an answer to an FAQ the model picked (question words do: "tell me
/// what this is about" shares "what" and "about" with "what is this about").
pub(super) const GROUNDING_STOP: &[&str] = &[
    "a", "an", "the", "i", "it", "is", "its", "to", "of", "and", "you", "me", "my", "do", "does",
    "did", "are", "am", "be", "this", "that", "for", "your", "on", "in", "we",
];

/// A negation anywhere in a normalised answer ("not", "never", "don't" written "dont", ...).
pub(super) fn negated(t: &str) -> bool {
    t.split_whitespace().any(|w| {
        matches!(
            w,
            "no" | "not" | "never" | "nobody" | "nothing" | "none" | "nope"
        ) || NEGATED_AUX.contains(&w)
    })
}

const NEGATED_AUX: &[&str] = &[
    "dont", "doesnt", "didnt", "cant", "cannot", "wont", "wouldnt", "couldnt", "shouldnt", "isnt",
    "arent", "wasnt", "werent", "havent", "hasnt", "aint",
];
