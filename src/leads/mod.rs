//! Leads: turning uploaded lead lists into callable, scheduled contacts.
//!
//! Pure logic, no I/O beyond reading a caller-supplied `std::io::Read`, so
//! the HTTP layer, the dialer and tests all share it. One module per concern,
//! each usable on its own:
//!
//! - [`phone`]: any human phone format -> E.164, with NANP validation;
//! - [`timezone`]: NANP area code -> IANA timezone (shipped table);
//! - [`window`]: the legal/campaign calling window and when it next opens;
//! - [`import`]: CSV/JSON lead lists -> [`NewLead`]s plus per-row errors,
//!   built on the three above.
//!
//! Nothing here panics on input: bad numbers, names, times and rows come back
//! as typed errors whose messages are fit to show the operator.

pub mod import;
pub mod phone;
pub mod timezone;
pub mod window;

pub use import::{parse_csv, parse_json, ImportError, ImportReport, NewLead, RowError};
pub use phone::{is_e164, normalize_phone, PhoneError};
pub use timezone::timezone_for_number;
pub use window::{CallingWindow, WindowCheck, WindowError};
