//! Sotto's memory.
//!
//! - [`Store`]: conversations and their turns in a sled database, each turn flushed to disk
//!   the moment it is added, so history survives a restart and a crash. A database that
//!   cannot be read is moved aside (never deleted) and whatever could still be read is
//!   carried over to a fresh one; [`Opened::moved_aside`] says so in words a person can
//!   act on.
//! - [`turn_log::TurnLogs`]: opt-in recordings of each turn (what the microphone heard,
//!   what the assistant said, and the transcript), pruned to a retention limit.
//!
//! Turns are stored as JSON, so the record type belongs to the caller (`sotto-core`
//! stores its turn records with their timings); this crate only needs it to be serde.

mod error;
mod history;
mod recover;
pub mod turn_log;

pub use error::StoreError;
pub use history::{Conversation, Opened, Store};
pub use recover::MovedAside;

/// Milliseconds since the Unix epoch, now (0 if the clock is before 1970).
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
