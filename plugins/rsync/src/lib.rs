//! hoard's rsync transport: the rsync wire protocol (29 to 31) spoken inside the sandbox
//! with a stock rsync on the client, either `rsync --server` run through `exec` (over ssh)
//! or an rsync daemon reached through `connect`. No rsync runs on the server. Content moves
//! as rsync's delta against the version in the reference backup. See `docs/rsync.md`.
//!
//! - [`start`]: the job's settings, the connection (exec or daemon), the session setup.
//! - [`backup`]: receiver and generator: the file list into the sink, files rebuilt from
//!   the delta against the reference.
//! - [`restore`]: the sender: a file list and whole files to the client's receiver.
//! - [`session`]: protocol version, compatibility flags, checksum negotiation, seed.
//! - [`flist`]: decoding and encoding file lists; rsync's sort order.
//! - [`conn`]: the byte streams, multiplexing, deadlock-free waiting.
//! - [`wire`]: rsync's integer and string encodings (no I/O).
//! - [`checksum`]: rolling, block and file checksums.
//! - [`matcher`]: the sender's delta against the receiver's block checksums.
//! - [`daemon`]: the daemon greeting and authentication.
//! - [`filter`]: includes and excludes as filter rules.
//! - [`reference_index`]: the reference's listings, and the subtrees an incremental keeps whole.

pub mod backup;
pub mod checksum;
pub mod conn;
pub mod daemon;
pub mod error;
pub mod filter;
pub mod flist;
pub mod matcher;
pub mod reference_index;
pub mod restore;
pub mod session;
pub mod start;
pub mod wire;

use hoard_plugin_sdk::transport::hoard::plugin::manifest::{
    Capability, Features, Metadata, PluginInfo,
};
use hoard_plugin_sdk::transport::hoard::plugin::types::{BackupJob, Error, JobSummary, RestoreJob};

/// The rsync transport.
struct Rsync;

impl hoard_plugin_sdk::transport::Guest for Rsync {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "rsync".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            contract: hoard_plugin_sdk::CONTRACT_VERSION.into(),
            description: "the rsync protocol with the client's rsync (over ssh, or an rsync daemon): delta transfer against the pool".into(),
            capabilities: vec![
                Capability::Exec("rsync".into()),
                Capability::Connect(873),
                Capability::Secret(start::DEFAULT_SECRET.into()),
            ],
            features: Features {
                incremental: true,
                restore: true,
                delta: true,
                metadata: Metadata::OWNER_IDS
                    | Metadata::OWNER_NAMES
                    | Metadata::PERMISSIONS
                    | Metadata::MTIME_NANOSECONDS
                    | Metadata::SYMLINKS
                    | Metadata::HARDLINKS
                    | Metadata::DEVICES
                    | Metadata::SPECIALS
                    | Metadata::XATTRS,
            },
        }
    }

    fn backup(job: BackupJob) -> Result<JobSummary, Error> {
        start::backup(job)
    }

    fn restore(job: RestoreJob) -> Result<JobSummary, Error> {
        restore::run(job)
    }
}

hoard_plugin_sdk::export_transport!(Rsync);
