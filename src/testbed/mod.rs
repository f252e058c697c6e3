//! The test bed: a local Twilio and the people it calls, for tests, rehearsals and benches.
//!
//! A black box on purpose: it speaks only Twilio's public protocols (REST, signed webhooks,
//! TwiML, Media Streams) and knows nothing of the call, HTTP or dialer rooms, so a mistake in
//! ours cannot hide itself in it. Behind the default cargo feature `testbed`; a production build
//! may leave it out (`--no-default-features`).
//!
//! - [`sim`]: one simulated Twilio call over a real WebSocket (the caller's side of the line).
//! - [`emulator`]: a local Twilio: `Calls.json`, status and AMD callbacks, TwiML, and callees
//!   (people, machines, fax, busy lines) following a scenario.
//! - [`voice`]: how callers sound: espeak-ng voices and speeds, mumbling, line noise.
//! - [`measure`]: latency and dead air at the caller's ear, from the audio they were played.
//! - [`corpus`]: the acceptance corpus (callers of a script and what each must experience);
//!   [`judge`]: one call judged by what its caller heard, the stored outcome and variables;
//!   [`ear`]: Whisper (through the engine's trait) on what the caller was played.

pub mod corpus;
pub mod ear;
pub mod emulator;
pub mod judge;
pub mod measure;
pub mod sim;
pub mod voice;
