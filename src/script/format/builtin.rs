//! What every script has without writing it: the built-in FAQs (callers ask these on every
//! campaign, and the robot question has a legal answer), default lines, and the open
//! conversation script that replaces the old free-LLM mode, so the disclosure, opt-out,
//! silence and duration rules hold on every call.

use std::collections::BTreeMap;

use super::{admits_automation, Faq, Globals, Node, Problem, Script};

/// `(id, examples, answer)`. A script's `[[faq]]` with the same id replaces the answer and adds
/// its examples (recognition never gets weaker). `are_you_a_robot` is also recognised by its
/// key words (robot, bot, human, real person, machine, computer, AI, recording, automated).
pub const BUILTIN_FAQS: &[(&str, &[&str], &str)] = &[
    (
        "are_you_a_robot",
        &[
            "are you a robot",
            "am I talking to a real person",
            "is this a real person",
            "are you human",
            "is this a recording",
            "are you an AI",
            "is this a machine",
        ],
        "I am an automated AI assistant calling for {company}, not a person.",
    ),
    (
        "who_is_this",
        &[
            "who is this",
            "who are you",
            "who's calling",
            "who is calling",
            "what company is this",
            "who do you work for",
            "where are you calling from",
            "what's your name",
        ],
        "This is {persona}, an automated assistant calling from {company}. You can reach us at {callback_number}.",
    ),
    (
        "what_is_this_about",
        &[
            "what is this about",
            "what's this about",
            "what is this regarding",
            "what is this call about",
            "why are you calling",
            "why are you calling me",
            "what do you want",
            "what are you selling",
            "what is it about",
        ],
        "I am calling from {company} with a short offer; it only takes a minute.",
    ),
    (
        "how_did_you_get_my_number",
        &[
            "how did you get my number",
            "where did you get my number",
            "who gave you my number",
            "how do you have my number",
            "why do you have my number",
        ],
        "Your number is on a contact list {company} works with. If you would rather not be called, just say stop and we will remove it.",
    ),
];

/// The FAQs of a script whose own `[[faq]]`s are `own` (validated by the caller).
pub(super) fn faqs(own: Vec<Faq>) -> Vec<Faq> {
    let mut out: Vec<Faq> = BUILTIN_FAQS
        .iter()
        .map(|(id, examples, answer)| Faq {
            id: id.to_string(),
            examples: examples.iter().map(|e| e.to_string()).collect(),
            answer: answer.to_string(),
        })
        .collect();
    for faq in own {
        match out.iter_mut().find(|f| f.id == faq.id) {
            Some(f) => {
                f.answer = faq.answer;
                f.examples.extend(faq.examples);
            }
            None => out.push(faq),
        }
    }
    out
}

pub(super) const OPT_OUT: &str =
    "Understood. I have removed your number from our list and you will not be called again. Goodbye.";

pub(super) fn globals(g: super::RawGlobals) -> Globals {
    let d = |v: Option<String>, default: &str| v.unwrap_or_else(|| default.to_string());
    Globals {
        opt_out: d(g.opt_out, OPT_OUT),
        decline: d(g.decline, "Understood, thank you for your time. Goodbye."),
        unknown_question: d(
            g.unknown_question,
            "That is a good question for one of our advisors; I can have them cover it.",
        ),
        call_later: d(
            g.call_later,
            "No problem. When would be a better time to call you back?",
        ),
        wrong_person: d(
            g.wrong_person,
            "I am sorry for the trouble. I will update our records. Goodbye.",
        ),
        unclear: d(
            g.unclear,
            "Sorry, I did not catch that. Could you say it again?",
        ),
        silence: d(g.silence, "Are you still there?"),
        hold: d(g.hold, "Sure, take your time. I will be right here."),
        max_duration: d(
            g.max_duration,
            "I do not want to take more of your time. Thank you, goodbye.",
        ),
        transfer_closed: d(
            g.transfer_closed,
            "Our advisors are available {hours}, so nobody can take your call right now.",
        ),
        transfer_failed: d(
            g.transfer_failed,
            "I am sorry, I cannot reach an advisor just now.",
        ),
        transfer_no_answer: d(
            g.transfer_no_answer,
            "I am sorry, nobody is free right now. An advisor will call you back from {callback_number}. Thank you, goodbye.",
        ),
    }
}

/// The quiet wait after "hold on" (a caller fetching a bill, answering the door), and its limit.
pub(super) const HOLD_SECONDS: u32 = 30;
pub(super) const MAX_HOLD_SECONDS: u32 = 120;

/// The default callback greeting.
pub(super) const CALLBACK_GREETING: &str = "You asked us to call you back at this time.";

/// A person who rang our number is greeted, not "calling from" them.
pub(super) const INBOUND_OPENING: &str = "Thanks for calling {company}, this is {persona}.";
pub(super) const VOICEMAIL: &str = "Hi, this is {persona}, an automated assistant calling from {company}. Please call us back at {callback_number}. To stop these calls, call that number and ask to be removed.";

/// The `[conversation]` settings of a call without a script: a greeting that discloses the AI,
/// a persona prompt, the opt-out key and line, and how long replies may be.
#[derive(Debug, Clone)]
pub struct OpenConversation {
    pub greeting: String,
    pub system_prompt: String,
    pub opt_out_digit: Option<char>,
    pub opt_out_message: String,
    pub max_reply_sentences: usize,
}

/// The one node of the open conversation.
const OPEN_NODE: &str = "conversation";

impl Script {
    /// The free conversation as a script: the greeting (which must disclose the AI) opens the
    /// call; one open node answers every turn with a generated reply under `system_prompt`;
    /// opt-out, decline, wrong person, call-me-later and the robot question stay rules. No
    /// voicemail (the open conversation knows no callback number to leave). Problems are keyed
    /// by the `[conversation]` setting they come from.
    pub fn open_conversation(c: &OpenConversation) -> Result<Script, Vec<Problem>> {
        let mut problems = Vec::new();
        if c.greeting.trim().is_empty() {
            problems.push(Problem {
                key: "conversation.greeting".into(),
                reason: "must not be empty".into(),
            });
        } else if !admits_automation(&c.greeting) {
            problems.push(Problem {
                key: "conversation.greeting".into(),
                reason: "must say the caller is talking to an AI / automated voice".into(),
            });
        }
        if c.opt_out_message.trim().is_empty() {
            problems.push(Problem {
                key: "conversation.opt_out_message".into(),
                reason: "must not be empty".into(),
            });
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        let sentences = c.max_reply_sentences.max(1);
        let node = Node {
            id: OPEN_NODE.into(),
            // The system prompt says the goal; the node adds only how long replies are.
            goal: String::new(),
            say: None,
            generate: Some(match sentences {
                1 => "Answer in one short spoken sentence.".to_string(),
                2 => "Answer in one or two short spoken sentences.".to_string(),
                n => format!("Answer in at most {n} short spoken sentences."),
            }),
            end: None,
            open: true,
            sentences,
            retry: None,
            fallback: None,
            skip_if_known: None,
            transfer: None,
            intents: Vec::new(),
            capture: BTreeMap::new(),
        };
        let globals = globals(super::RawGlobals {
            opt_out: Some(c.opt_out_message.clone()),
            ..Default::default()
        });
        Ok(Script {
            name: "open conversation".into(),
            persona: "the assistant".into(),
            company: String::new(),
            callback_number: String::new(),
            opening: c.greeting.trim().to_string(),
            disclosure: String::new(),
            start: OPEN_NODE.into(),
            persona_prompt: Some(c.system_prompt.clone()),
            opt_out_digit: c.opt_out_digit,
            max_call_seconds: 300,
            silence_reprompt_seconds: 6,
            max_silence_reprompts: 2,
            hold_seconds: HOLD_SECONDS,
            voicemail: None,
            callback_greeting: CALLBACK_GREETING.into(),
            inbound_opening: c.greeting.trim().to_string(),
            inbound_start: OPEN_NODE.into(),
            globals,
            // Only the legal one: who we are and why we call is the model's to say, from the
            // system prompt (the built-in answers name a company this script does not know).
            faqs: vec![Faq {
                id: "are_you_a_robot".into(),
                examples: BUILTIN_FAQS[0].1.iter().map(|e| e.to_string()).collect(),
                answer: "I am an automated AI assistant, not a person.".into(),
            }],
            nodes: BTreeMap::from([(OPEN_NODE.to_string(), node)]),
            vars: BTreeMap::new(),
            warnings: Vec::new(),
        })
    }
}
