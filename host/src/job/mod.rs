//! One backup or restore: wiring a host's config, its client, a transport plugin and the pool
//! together, and recording what happened.
//!
//! - [`archive_tar`]: a backup written as a tar stream.
//! - [`restore_remote`]: a restore to a client through its transport plugin.
//! - [`backup`]: one backup of one host, share by share, into one snapshot.
//! - [`log_store`]: job logs kept beside the pool.
//! - [`prepare`]: a host's plan, client, limits and transport, from its config.
//! - [`convert`]: the contract's entries ↔ the pool's entries.
//! - [`pool_sink`]: a plugin's backup into a pool snapshot (a writer thread).
//! - [`pool_source`]: a pool snapshot read by a plugin (reference, restore).
//! - [`restore_local`]: a backup restored into a directory of the server, never outside it.
//! - [`share`]: one share inside a snapshot (path prefixes).

pub mod archive_tar;
pub mod backup;
pub mod convert;
pub mod log_store;
pub mod pool_sink;
pub mod pool_source;
pub mod prepare;
pub mod restore_local;
pub mod restore_remote;
pub mod share;

pub use pool_sink::PoolSink;
pub use pool_source::PoolSource;
