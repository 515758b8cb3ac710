//! hoard: a disk-to-disk backup server whose transports and notifiers are sandboxed
//! WebAssembly components.
//!
//! - [`config`]: the RON config folder, resolved per host.
//! - [`client`]: reaching a backup client (ssh, or the server itself).
//! - [`plugin`]: the plugin runtime (engine, cache, sandbox, capabilities, the WIT contract's
//!   host side).
//! - [`hooks`]: admin commands run around jobs.
//! - [`job`]: one backup or restore, from config to pool.
//! - [`schedule`]: when backups run (BackupPC's rules, as pure decisions).
//! - [`notify`]: events for people, through notifier plugins.
//! - [`retention`]: which backups expire (BackupPC's rules).
//! - [`server`]: `hoard serve`, the scheduler's loop, control socket and maintenance.
//! - [`cli`]: the `hoard` command line.

pub mod cli;
pub mod client;
pub mod config;
pub mod hooks;
pub mod job;
pub mod notify;
pub mod plugin;
pub mod retention;
pub mod schedule;
pub mod server;
