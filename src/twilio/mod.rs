//! Twilio's wire formats as pure code: Media Streams messages ([`media`]), webhook signatures
//! ([`signature`]) and TwiML ([`twiml`]).
//!
//! Nothing here does I/O: the REST client, the HTTP webhook handlers and the WebSocket session
//! live elsewhere and call into this module. Keeping the protocol apart lets every shape be
//! tested against Twilio's documented examples and the official library's vectors
//! (shared/docs/twilio.md, tests/python/twilio_crosscheck.py), and lets a fake Twilio in tests
//! reuse the same types to speak byte-exact Twilio JSON.

pub mod media;
pub mod signature;
pub mod twiml;
