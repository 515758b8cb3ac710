//! Storing objects for one writer: hash, deduplicate against the index (claiming what it
//! reuses), compress (on worker threads, see [`CompressWorkers`]), append to the writer's own
//! pack, and publish each full pack to the index only after it is durable. A full pack is
//! made durable and published on a helper thread while the writer goes on filling the next
//! one; commit waits for it.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::error::PoolError;
use crate::index::{Index, ObjectTable};
use crate::inflight::{Claims, ClaimsHandle, lock};
use crate::object::{CompressWorkers, Compressed, ObjectId, ObjectKind};
use crate::pack::{FinishedPack, ObjectLocation, PackId, PackWriter};
use crate::pool::PoolInner;

/// How many lookups one cached view of the index serves before it is refreshed.
const VIEW_USES: u32 = 4096;

/// Counters of what a packer wrote.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct PackerCounters {
    /// Plain bytes of newly stored data objects.
    pub new_data_bytes: u64,
    /// Bytes newly appended to packs (all objects, compressed).
    pub new_stored_bytes: u64,
    /// Objects newly stored.
    pub new_objects: u64,
}

/// A pack handed to the helper thread, with its objects (still deduplicated against).
type Publishing = (
    JoinHandle<Result<(), PoolError>>,
    HashMap<ObjectId, ObjectLocation>,
);

/// One writer's object store.
pub(crate) struct Packer {
    pool: Arc<PoolInner>,
    claims: ClaimsHandle,
    compress: CompressWorkers,
    /// Objects handed to the compression workers and not yet appended to a pack.
    compressing: HashSet<ObjectId>,
    current: Option<PackWriter>,
    pending: HashMap<ObjectId, ObjectLocation>,
    /// The previous pack, being made durable and published by a helper thread.
    publishing: Option<Publishing>,
    view: Option<(ObjectTable, u64, u32)>,
    /// What was written.
    pub counters: PackerCounters,
}

impl Packer {
    /// A packer registered with the pool's claims.
    pub(crate) fn new(pool: Arc<PoolInner>, claims: ClaimsHandle) -> Result<Packer, PoolError> {
        let compress = CompressWorkers::start(pool.options.zstd_level).map_err(|e| {
            PoolError::InvalidOptions(format!("zstd level {}: {e}", pool.options.zstd_level))
        })?;
        Ok(Packer {
            pool,
            claims,
            compress,
            compressing: HashSet::new(),
            current: None,
            pending: HashMap::new(),
            publishing: None,
            view: None,
            counters: PackerCounters::default(),
        })
    }

    /// True when the index (as this packer last saw it, refreshed if GC swept since) has `id`;
    /// claims it if so. Call with the shared GC lock held.
    fn indexed_and_claimed(&mut self, id: &ObjectId) -> Result<bool, PoolError> {
        let generation = self.pool.inflight.generation();
        let fresh = match &mut self.view {
            Some((_, g, uses)) if *g == generation && *uses < VIEW_USES => {
                *uses += 1;
                false
            }
            _ => true,
        };
        if fresh {
            self.view = Some((self.pool.index.objects()?, generation, 0));
        }
        let Some((table, _, _)) = &self.view else {
            return Ok(false);
        };
        if Index::lookup_in(table, id)?.is_some() {
            lock(&self.claims.claims().objects).insert(*id);
            return Ok(true);
        }
        Ok(false)
    }

    /// Stores `plain` (unless already present) and returns its id and whether it was new.
    /// A new object is compressed in the background; [`Packer::flush`] waits for it. Owned
    /// bytes go to the compression worker as they are; borrowed ones are copied only when new.
    pub(crate) fn store(
        &mut self,
        kind: ObjectKind,
        plain: Cow<'_, [u8]>,
    ) -> Result<(ObjectId, bool), PoolError> {
        let id = ObjectId::of(&plain);
        if self.compressing.contains(&id)
            || self.pending.contains_key(&id)
            || self
                .publishing
                .as_ref()
                .is_some_and(|(_, p)| p.contains_key(&id))
        {
            return Ok((id, false));
        }
        {
            let inflight = self.pool.inflight.clone();
            let _shared = inflight.shared();
            if self.indexed_and_claimed(&id)? {
                return Ok((id, false));
            }
        }
        if u32::try_from(plain.len()).is_err() {
            return Err(PoolError::InvalidOptions(format!(
                "object {id} larger than 4 GiB"
            )));
        }
        self.compress
            .submit(id, kind, plain.into_owned())
            .map_err(|e| PoolError::InvalidOptions(format!("zstd: {e}")))?;
        self.compressing.insert(id);
        while let Some(done) = self.compress.try_next() {
            self.append(done)?;
        }
        Ok((id, true))
    }

    /// Appends one compressed object to the current pack (opening one if needed), handing
    /// the pack to the publisher once it is full.
    fn append(&mut self, done: std::io::Result<Compressed>) -> Result<(), PoolError> {
        let done = done.map_err(|e| PoolError::InvalidOptions(format!("zstd: {e}")))?;
        self.compressing.remove(&done.id);
        let plain_len = u32::try_from(done.plain_len).map_err(|_| {
            PoolError::InvalidOptions(format!("object {} larger than 4 GiB", done.id))
        })?;
        if self.current.is_none() {
            let pack = PackId::random();
            {
                let _shared = self.pool.inflight.shared();
                lock(&self.claims.claims().packs).insert(pack);
            }
            self.current = Some(PackWriter::create(
                &self.pool.packs_dir,
                pack,
                self.pool.options.write_faults.clone(),
            )?);
        }
        let Some(writer) = self.current.as_mut() else {
            return Err(PoolError::InvalidOptions("no pack open".into()));
        };
        let loc = writer.append(done.id, done.kind, done.compressed, plain_len, &done.stored)?;
        self.pending.insert(done.id, loc);
        self.counters.new_objects += 1;
        self.counters.new_stored_bytes += loc.record_len();
        if done.kind == ObjectKind::Data {
            self.counters.new_data_bytes += u64::from(plain_len);
        }
        if writer.len() >= self.pool.options.pack_target_size {
            self.flush_in_background()?;
        }
        Ok(())
    }

    /// Waits for the helper thread publishing the previous pack, if any.
    fn wait_published(&mut self) -> Result<(), PoolError> {
        if let Some((handle, _)) = self.publishing.take() {
            let result = handle.join().unwrap_or_else(|_| {
                Err(PoolError::index(
                    "publishing pack",
                    "helper thread panicked",
                ))
            });
            self.view = None;
            result?;
        }
        Ok(())
    }

    /// Hands the current pack to a helper thread that makes it durable and publishes it.
    fn flush_in_background(&mut self) -> Result<(), PoolError> {
        self.wait_published()?;
        let Some(writer) = self.current.take() else {
            return Ok(());
        };
        let pool = self.pool.clone();
        let claims = self.claims.shared_claims();
        let handle = std::thread::Builder::new()
            .name("hoard-pack-publish".into())
            .spawn(move || publish(&pool, &claims, writer.finish()?))
            .map_err(|e| PoolError::io("starting pack publisher", &self.pool.packs_dir, e))?;
        self.publishing = Some((handle, std::mem::take(&mut self.pending)));
        Ok(())
    }

    /// Makes every pack durable and records it in the index; returns when done.
    pub(crate) fn flush(&mut self) -> Result<(), PoolError> {
        while let Some(done) = self.compress.next() {
            self.append(done)?;
        }
        self.wait_published()?;
        let Some(writer) = self.current.take() else {
            return Ok(());
        };
        publish(&self.pool, &self.claims.shared_claims(), writer.finish()?)?;
        self.pending.clear();
        self.view = None;
        Ok(())
    }
}

/// Records a durable pack in the index, claiming objects another writer indexed first.
fn publish(pool: &PoolInner, claims: &Claims, finished: FinishedPack) -> Result<(), PoolError> {
    let _shared = pool.inflight.shared();
    let already = pool.index.add_pack(&finished)?;
    if !already.is_empty() {
        lock(&claims.objects).extend(already);
    }
    tracing::debug!(pack = %finished.id, bytes = finished.len, objects = finished.objects.len(), "pack published");
    Ok(())
}

impl Drop for Packer {
    fn drop(&mut self) {
        if let Err(e) = self.wait_published() {
            tracing::warn!(error = %e, "abandoned writer's last pack was not published");
        }
        if let Some(writer) = self.current.take() {
            let path = writer.path().to_path_buf();
            drop(writer);
            if let Err(e) = std::fs::remove_file(&path) {
                tracing::warn!(path = %path.display(), error = %e, "cannot remove abandoned pack");
            }
        }
    }
}
