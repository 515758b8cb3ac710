//! `hoard serve`: the long-running server. It wakes up on the schedule, decides per host
//! what is due ([`crate::schedule`]), checks the host is reachable, queues and runs backups
//! under the concurrency limits, records every job and skip in the host's history, runs the
//! nightly maintenance, answers the CLI on a control socket, reloads its config on SIGHUP or
//! when the files change, and on SIGTERM stops running jobs (committing what they stored as
//! partial backups) before it exits.
//!
//! - [`control`]: the control socket's requests and answers, and the client side.
//! - [`daemon`]: the server's loop and state.
//! - [`disk`]: how full the pool's file system is.
//! - [`history`]: per-host job history, kept durably beside the pool.
//! - [`log`]: the server's own log file, rotated by size.
//! - [`reach`]: the reachability check before a backup.

pub mod control;
pub mod daemon;
pub mod disk;
pub mod history;
pub mod log;
pub mod reach;

pub use daemon::{ServeError, serve};
