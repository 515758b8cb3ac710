//! The index: an embedded redb database mapping object ids to their pack locations, listing
//! the packs, and holding the snapshot catalog tables (see [`crate::snapshot::catalog`]).
//! Every write is one atomic, durable transaction.

use std::path::Path;

use redb::{Database, ReadOnlyTable, ReadableDatabase, ReadableTable, TableDefinition};

use crate::error::PoolError;
use crate::object::ObjectId;
use crate::pack::{FinishedPack, ObjectLocation, PackId};

/// Object id -> encoded [`ObjectLocation`].
pub(crate) const OBJECTS: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("objects");
/// Pack id -> (file length, object count).
pub(crate) const PACKS: TableDefinition<u64, (u64, u64)> = TableDefinition::new("packs");
/// (host, number) -> JSON snapshot record.
pub(crate) const SNAPSHOTS: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("snapshots");
/// Host -> next snapshot number (never decreases, so numbers are never reused).
pub(crate) const NEXT_NUMBER: TableDefinition<&str, u64> = TableDefinition::new("next_number");

/// Page cache of the index database (redb's default of 1 GiB would dominate a writer's memory).
const INDEX_CACHE_BYTES: usize = 64 * 1024 * 1024;

/// A read-only view of the object table at one instant.
pub(crate) type ObjectTable = ReadOnlyTable<&'static [u8; 32], &'static [u8]>;

/// The index database.
pub(crate) struct Index {
    db: Database,
}

impl Index {
    /// Opens (or creates) the database file and makes sure every table exists.
    pub(crate) fn open(path: &Path, pool_dir: &Path) -> Result<Index, PoolError> {
        let db = match Database::builder()
            .set_cache_size(INDEX_CACHE_BYTES)
            .create(path)
        {
            Ok(db) => db,
            Err(redb::DatabaseError::DatabaseAlreadyOpen) => {
                return Err(PoolError::Locked {
                    path: pool_dir.to_path_buf(),
                });
            }
            Err(redb::DatabaseError::Storage(redb::StorageError::Io(e))) => {
                return Err(PoolError::io("opening index", path, e));
            }
            Err(e) => return Err(PoolError::index("opening", e)),
        };
        let txn = db
            .begin_write()
            .map_err(|e| PoolError::index("opening", e))?;
        {
            txn.open_table(OBJECTS)
                .map_err(|e| PoolError::index("opening", e))?;
            txn.open_table(PACKS)
                .map_err(|e| PoolError::index("opening", e))?;
            txn.open_table(SNAPSHOTS)
                .map_err(|e| PoolError::index("opening", e))?;
            txn.open_table(NEXT_NUMBER)
                .map_err(|e| PoolError::index("opening", e))?;
        }
        txn.commit().map_err(|e| PoolError::index("opening", e))?;
        Ok(Index { db })
    }

    /// The database, for modules that run their own transactions.
    pub(crate) fn db(&self) -> &Database {
        &self.db
    }

    /// A snapshot of the object table.
    pub(crate) fn objects(&self) -> Result<ObjectTable, PoolError> {
        let txn = self
            .db
            .begin_read()
            .map_err(|e| PoolError::index("reading objects", e))?;
        txn.open_table(OBJECTS)
            .map_err(|e| PoolError::index("reading objects", e))
    }

    /// Looks an object up in a table snapshot.
    pub(crate) fn lookup_in(
        table: &ObjectTable,
        id: &ObjectId,
    ) -> Result<Option<ObjectLocation>, PoolError> {
        let value = table
            .get(&id.0)
            .map_err(|e| PoolError::index("looking up object", e))?;
        match value {
            None => Ok(None),
            Some(v) => ObjectLocation::decode(v.value()).map(Some).ok_or_else(|| {
                PoolError::index("looking up object", format!("malformed location of {id}"))
            }),
        }
    }

    /// Looks an object up in the current state.
    pub(crate) fn lookup(&self, id: &ObjectId) -> Result<Option<ObjectLocation>, PoolError> {
        Index::lookup_in(&self.objects()?, id)
    }

    /// Records a durable pack and its objects in one transaction. An object already indexed
    /// (written concurrently by another writer) keeps its first location; those ids are
    /// returned so the caller can claim them.
    pub(crate) fn add_pack(&self, pack: &FinishedPack) -> Result<Vec<ObjectId>, PoolError> {
        let op = "recording pack";
        let mut already = Vec::new();
        let txn = self.db.begin_write().map_err(|e| PoolError::index(op, e))?;
        {
            let mut objects = txn
                .open_table(OBJECTS)
                .map_err(|e| PoolError::index(op, e))?;
            for (id, loc) in &pack.objects {
                let exists = objects
                    .get(&id.0)
                    .map_err(|e| PoolError::index(op, e))?
                    .is_some();
                if exists {
                    already.push(*id);
                } else {
                    objects
                        .insert(&id.0, loc.encode().as_slice())
                        .map_err(|e| PoolError::index(op, e))?;
                }
            }
            let mut packs = txn.open_table(PACKS).map_err(|e| PoolError::index(op, e))?;
            packs
                .insert(pack.id.0, (pack.len, pack.objects.len() as u64))
                .map_err(|e| PoolError::index(op, e))?;
        }
        txn.commit().map_err(|e| PoolError::index(op, e))?;
        Ok(already)
    }

    /// Every pack the index knows, with its length.
    pub(crate) fn packs(&self) -> Result<Vec<(PackId, u64, u64)>, PoolError> {
        let op = "listing packs";
        let txn = self.db.begin_read().map_err(|e| PoolError::index(op, e))?;
        let table = txn.open_table(PACKS).map_err(|e| PoolError::index(op, e))?;
        let mut out = Vec::new();
        for row in table
            .range::<u64>(..)
            .map_err(|e| PoolError::index(op, e))?
        {
            let (k, v) = row.map_err(|e| PoolError::index(op, e))?;
            let (len, count) = v.value();
            out.push((PackId(k.value()), len, count));
        }
        Ok(out)
    }

    /// Calls `f` for every indexed object.
    pub(crate) fn for_each_object(
        &self,
        mut f: impl FnMut(ObjectId, ObjectLocation) -> Result<(), PoolError>,
    ) -> Result<(), PoolError> {
        let op = "listing objects";
        let table = self.objects()?;
        for row in table
            .range::<&[u8; 32]>(..)
            .map_err(|e| PoolError::index(op, e))?
        {
            let (k, v) = row.map_err(|e| PoolError::index(op, e))?;
            let id = ObjectId(*k.value());
            let loc = ObjectLocation::decode(v.value())
                .ok_or_else(|| PoolError::index(op, format!("malformed location of {id}")))?;
            f(id, loc)?;
        }
        Ok(())
    }
}
