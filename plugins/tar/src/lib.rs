//! hoard's tar transport: GNU tar runs on the client (`exec`, over ssh or locally), its POSIX
//! stream is parsed here, and entries and content go to the host's sink; a restore writes a
//! tar stream built from the snapshot to `tar -x` on the client. See `docs/tar.md`.
//!
//! - [`backup`]: reading tar's archive stream into the sink; full backups.
//! - [`incremental`]: listing, `--newer`, and what did not change kept from the reference.
//! - [`restore`]: the snapshot as a tar stream to `tar -x`.
//! - [`process`]: one tar run, its streams and its verdict.
//! - [`command`]: the argument lists, file lists, tar's messages and the settings.
//! - [`header`]: decoding headers, PAX records and sparse maps (no I/O).
//! - [`pax`]: encoding entries as PAX headers (no I/O).
//! - [`convert`]: members as entries, and the tree rules against hostile streams.
//! - [`path`]: member names as share-relative paths.

pub mod backup;
pub mod command;
pub mod convert;
pub mod header;
pub mod incremental;
pub mod path;
pub mod pax;
pub mod process;
pub mod restore;

use hoard_plugin_sdk::transport::hoard::plugin::manifest::{
    Capability, Features, Metadata, PluginInfo,
};
use hoard_plugin_sdk::transport::hoard::plugin::types::{BackupJob, Error, JobSummary, RestoreJob};

/// The tar transport.
struct Tar;

impl hoard_plugin_sdk::transport::Guest for Tar {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "tar".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            contract: hoard_plugin_sdk::CONTRACT_VERSION.into(),
            description: "GNU tar on the client (over ssh, or locally): full and incremental backups, restores".into(),
            capabilities: vec![Capability::Exec("tar".into())],
            features: Features {
                incremental: true,
                restore: true,
                delta: false,
                metadata: Metadata::OWNER_IDS
                    | Metadata::OWNER_NAMES
                    | Metadata::PERMISSIONS
                    | Metadata::MTIME_NANOSECONDS
                    | Metadata::SYMLINKS
                    | Metadata::HARDLINKS
                    | Metadata::DEVICES
                    | Metadata::XATTRS,
            },
        }
    }

    fn backup(job: BackupJob) -> Result<JobSummary, Error> {
        backup::run(job)
    }

    fn restore(job: RestoreJob) -> Result<JobSummary, Error> {
        restore::run(job)
    }
}

hoard_plugin_sdk::export_transport!(Tar);
