//! hoard's storage engine: content-addressed, deduplicated, compressed objects in append-only
//! pack files with an embedded index, snapshot trees of content-addressed directory objects,
//! garbage collection, fsck and statistics. It knows nothing of plugins, hosts' schedules or
//! transports.
//!
//! Start with [`Pool::create`] or [`Pool::open`], write a snapshot with
//! [`Pool::begin_snapshot`], read it back with [`Pool::snapshot`].

mod entry;
mod error;
mod fault;
mod fsck;
mod gc;
mod index;
mod inflight;
mod object;
mod pack;
mod packer;
mod pool;
mod snapshot;
mod stats;
mod tree;

pub use entry::{DeviceNumber, Entry, EntryKind, Timestamp, Xattr, normalize_path};
pub use error::{BytePath, PathError, PoolError};
pub use fault::WriteFaults;
pub use fsck::{DamagedObject, DamagedPath, FsckOptions, FsckReport};
pub use gc::{GcOptions, GcReport};
pub use object::{ChunkParams, ObjectId};
pub use pack::PackId;
pub use pool::{Pool, PoolOptions};
pub use snapshot::{
    BackupType, CommitInfo, FileReader, FileSummary, FileWriter, SnapshotId, SnapshotInfo,
    SnapshotReader, SnapshotWriter, Walk,
};
pub use stats::{PoolStats, UsageStats};

#[cfg(test)]
mod send_sync {
    fn assert_send_sync<T: Send + Sync>() {}
    fn assert_send<T: Send>() {}

    #[test]
    fn handles_cross_threads() {
        assert_send_sync::<super::Pool>();
        assert_send_sync::<super::SnapshotReader>();
        assert_send::<super::SnapshotWriter>();
        assert_send::<super::FileReader>();
    }
}
