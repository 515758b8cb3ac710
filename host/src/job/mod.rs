//! One backup or restore: wiring a host's config, its client, a transport plugin and the pool
//! together, and recording what happened.
//!
//! - [`backup`]: one backup of one host, share by share, into one snapshot.
//! - [`log_store`]: job logs kept beside the pool.
//! - [`convert`]: the contract's entries ↔ the pool's entries.
//! - [`pool_sink`]: a plugin's backup into a pool snapshot (a writer thread).
//! - [`pool_source`]: a pool snapshot read by a plugin (reference, restore).
//! - [`restore_local`]: a backup restored into a directory of the server, never outside it.
//! - [`share`]: one share inside a snapshot (path prefixes).

pub mod backup;
pub mod convert;
pub mod log_store;
pub mod pool_sink;
pub mod pool_source;
pub mod restore_local;
pub mod share;

pub use pool_sink::PoolSink;
pub use pool_source::PoolSource;
