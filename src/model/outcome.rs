//! How a conversation ended for the campaign: decided by the script engine (an end node, an
//! opt-out, silence, the clock) or by what answered (a machine), never by the model.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Interested,
    NotInterested,
    Callback,
    /// The caller asked not to be called again: the number is on the do-not-call list.
    DoNotCall,
    WrongPerson,
    /// An answering machine took the voicemail line after the beep.
    Voicemail,
    /// An answering machine without a beep (`machine_start`): nothing was left.
    Machine,
    /// Nobody answered the agent (silence, or an unusable line).
    NoAnswer,
    MaxDuration,
    /// The caller hung up before the script reached an end.
    CallerHungUp,
    /// Handed to a person (the script's transfer node; the advisor's line was dialed).
    Transferred,
}

impl Outcome {
    pub const ALL: [Outcome; 11] = [
        Self::Interested,
        Self::NotInterested,
        Self::Callback,
        Self::DoNotCall,
        Self::WrongPerson,
        Self::Voicemail,
        Self::Machine,
        Self::NoAnswer,
        Self::MaxDuration,
        Self::CallerHungUp,
        Self::Transferred,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Interested => "interested",
            Self::NotInterested => "not_interested",
            Self::Callback => "callback",
            Self::DoNotCall => "do_not_call",
            Self::WrongPerson => "wrong_person",
            Self::Voicemail => "voicemail",
            Self::Machine => "machine",
            Self::NoAnswer => "no_answer",
            Self::MaxDuration => "max_duration",
            Self::CallerHungUp => "caller_hung_up",
            Self::Transferred => "transferred",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.as_str() == s)
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
