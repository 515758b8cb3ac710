//! The plugin runtime: loading WebAssembly components, confining them, and running their jobs.
//!
//! - [`engine`]: the one wasmtime engine of the process, its epoch ticker and linkers.
//! - [`cache`]: compiled code on disk, keyed by the component's hash and the engine.
//! - [`catalog`]: the plugins that are loaded (built-in and from the plugin folder), and what
//!   each one says about itself.
//! - [`grant`]: what the config allows one plugin to do for one host, and the argument rules
//!   that keep a granted program from being turned against the server.
//! - [`state`]: the sandbox of one job (the store's data): no files, no environment, no
//!   network but the grants.
//! - [`imports`]: the host side of each WIT interface.
//! - [`run`]: running `describe`, `backup`, `restore` and `notify` under limits.

pub mod bindings;
pub mod cache;
pub mod catalog;
pub mod engine;
pub mod grant;
pub mod imports;
pub mod run;
pub mod state;

pub use catalog::{LoadedPlugin, PluginCatalog, PluginKind};
pub use engine::{PluginEngine, RuntimeLimits};
pub use grant::CapabilityGrant;
pub use run::{JobContext, PluginError};
