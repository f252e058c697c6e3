//! One phone call, from the first `start` message to the last frame.
//!
//! - [`session`]: the inbound loop and the agent (greeting, then STT -> LLM -> TTS per turn).
//! - [`clauses`]: splits streamed LLM text into speakable clauses (pure).
//! - [`output`]: paces agent audio to Twilio in 20 ms frames with marks; `clear` on demand.
//! - [`registry`]: call metadata from the API and the transcript with per-stage latency.

pub mod agent;
pub mod clauses;
pub mod output;
pub mod registry;
pub mod session;
pub mod speech;
pub mod turn;
