//! Twilio's wire formats, as pure functions and types (no I/O): Media Streams messages,
//! webhook signatures and TwiML. The HTTP handlers and the call session use them; keeping them
//! apart lets every shape be tested against Twilio's documented examples and official vectors.

pub mod media;
pub mod signature;
pub mod twiml;
