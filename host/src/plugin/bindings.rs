//! Host bindings of the WIT worlds in `wit/` (package `hoard:plugin@0.1.0`).
//!
//! Every import is async (the host may wait on a client) and trappable (a host failure that
//! is not the plugin's fault ends the job rather than being handed to the plugin). Resources
//! map to the host types in [`crate::plugin::imports`].

/// The `transport` world.
pub mod transport {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "hoard:plugin/transport",
        imports: { default: async | trappable },
        exports: { default: async },
        with: {
            "wasi:io": wasmtime_wasi::p2::bindings::io,
            "hoard:plugin/process.process": crate::plugin::imports::process::ProcessHandle,
            "hoard:plugin/sink.file-writer": crate::plugin::imports::sink::FileWriterHandle,
            "hoard:plugin/snapshot.walk": crate::plugin::imports::snapshot::WalkHandle,
        },
    });
}

/// The `notifier` world; its shared interfaces are the transport world's.
pub mod notifier {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "hoard:plugin/notifier",
        imports: { default: async | trappable },
        exports: { default: async },
        with: {
            "wasi:io": wasmtime_wasi::p2::bindings::io,
            "hoard:plugin/types": super::transport::hoard::plugin::types,
            "hoard:plugin/job": super::transport::hoard::plugin::job,
            "hoard:plugin/net": super::transport::hoard::plugin::net,
            "hoard:plugin/credentials": super::transport::hoard::plugin::credentials,
            "hoard:plugin/manifest": super::transport::hoard::plugin::manifest,
        },
    });
}

pub use transport::hoard::plugin::manifest::{Capability, Features, Metadata, PluginInfo};
pub use transport::hoard::plugin::types::{
    BackupJob, BackupLevel, DeviceNumber, Entry, EntryKind, Error as WitError, JobSummary,
    RestoreJob, Setting, Timestamp, Xattr,
};
