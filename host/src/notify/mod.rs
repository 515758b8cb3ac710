//! Telling people about trouble: which events are due ([`due`]), to whom ([`notice`]), and
//! delivering them through the configured notifier plugins with retries, never blocking or
//! failing a backup ([`deliver`]).
//!
//! - [`notice`]: one message (kind, host, subject, body, facts) and its recipients.
//! - [`due`]: overdue and never-backed-up hosts, throttled per host and kind, from a
//!   durable record of what was sent.
//! - [`deliver`]: the notifiers from the config, one delivery with retries, and a
//!   background dispatcher with a bounded queue for the server.

pub mod deliver;
pub mod due;
pub mod notice;

pub use deliver::{Delivery, Dispatcher, Notifiers};
pub use notice::{Notice, NoticeKind};
