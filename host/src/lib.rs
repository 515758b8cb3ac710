//! hoard: a disk-to-disk backup server whose transports and notifiers are sandboxed
//! WebAssembly components.
//!
//! - [`client`]: reaching a backup client (ssh, or the server itself).
//! - [`plugin`]: the plugin runtime (engine, cache, sandbox, capabilities, the WIT contract's
//!   host side).
//! - [`cli`]: the `hoard` command line.

pub mod cli;
pub mod client;
pub mod job;
pub mod plugin;
