//! What running writers hold, so GC never sweeps it: the packs they are writing, the indexed
//! objects they have deduplicated against, and the roots (reference snapshots) they copy from.
//! Also the lock that orders GC's sweep against those claims.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::object::ObjectId;
use crate::pack::PackId;

/// Claims of one running writer (or of GC's own repacking).
#[derive(Default)]
pub(crate) struct Claims {
    /// Packs being written or written but not yet referenced by a committed snapshot.
    pub packs: Mutex<HashSet<PackId>>,
    /// Indexed objects (in other packs) this writer will reference.
    pub objects: Mutex<HashSet<ObjectId>>,
    /// Root trees this writer copies from (its reference snapshot).
    pub roots: Mutex<Vec<ObjectId>>,
}

/// The registry of claims and the GC ordering lock.
#[derive(Default)]
pub(crate) struct Inflight {
    gc_lock: RwLock<()>,
    generation: AtomicU64,
    claims: Mutex<HashMap<u64, Arc<Claims>>>,
    next: AtomicU64,
}

/// Locks a mutex, recovering the data if a panicking thread poisoned it (claims are sets that
/// stay valid whatever a panicking holder was doing).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Inflight {
    /// Held (shared) by writers while they look up and claim objects or publish packs.
    pub(crate) fn shared(&self) -> RwLockReadGuard<'_, ()> {
        self.gc_lock.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Held (exclusive) by GC while it sweeps.
    pub(crate) fn exclusive(&self) -> RwLockWriteGuard<'_, ()> {
        self.gc_lock.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Bumped by each sweep: a writer's cached view of the index taken before it is stale.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Marks that a sweep removed objects (call with the exclusive lock held).
    pub(crate) fn bump_generation(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// Registers a new claimant.
    pub(crate) fn register(self: &Arc<Self>) -> ClaimsHandle {
        let key = self.next.fetch_add(1, Ordering::SeqCst);
        let claims = Arc::new(Claims::default());
        lock(&self.claims).insert(key, claims.clone());
        ClaimsHandle {
            inflight: self.clone(),
            key,
            claims,
        }
    }

    /// Every current claimant.
    pub(crate) fn all(&self) -> Vec<Arc<Claims>> {
        lock(&self.claims).values().cloned().collect()
    }
}

/// A registered claimant; dropping it withdraws the claims.
pub(crate) struct ClaimsHandle {
    inflight: Arc<Inflight>,
    key: u64,
    claims: Arc<Claims>,
}

impl ClaimsHandle {
    /// The claims.
    pub(crate) fn claims(&self) -> &Claims {
        &self.claims
    }

    /// The claims, shareable with a helper thread.
    pub(crate) fn shared_claims(&self) -> Arc<Claims> {
        self.claims.clone()
    }
}

impl Drop for ClaimsHandle {
    fn drop(&mut self) {
        lock(&self.inflight.claims).remove(&self.key);
    }
}
