//! Compiled plugin code on disk, so that a second load of the same component skips
//! compilation. Entries are keyed by the BLAKE3 of the component and the engine's
//! compatibility hash, and written atomically by this server only.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use wasmtime::Engine;
use wasmtime::component::Component;

/// Where compiled components are kept.
#[derive(Debug, Clone)]
pub struct CompileCache {
    dir: Option<PathBuf>,
}

/// How a component was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Compiled now (and stored, when the cache is on).
    Compiled,
    /// Loaded from the cache.
    Hit,
}

impl CompileCache {
    /// A cache in `dir` (created when needed).
    pub fn in_dir(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: Some(dir.into()),
        }
    }

    /// No cache: every load compiles.
    pub fn disabled() -> Self {
        Self { dir: None }
    }

    /// The cache directory, if any.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// The component for `wasm`, from the cache when present, else compiled and stored.
    /// A cache entry that no longer loads is replaced; a cache that cannot be written is
    /// logged and skipped, never fatal.
    pub fn load(
        &self,
        engine: &Engine,
        wasm: &[u8],
    ) -> wasmtime::Result<(Component, CacheOutcome)> {
        let Some(path) = self.entry_path(engine, wasm) else {
            return Ok((Component::new(engine, wasm)?, CacheOutcome::Compiled));
        };
        if path.exists() {
            // SAFETY: the file lives in the server's private cache directory and was written by
            // `store` below from `Component::serialize` of this same engine configuration (the
            // key includes the engine's compatibility hash); nothing else writes there.
            match unsafe { Component::deserialize_file(engine, &path) } {
                Ok(component) => return Ok((component, CacheOutcome::Hit)),
                Err(e) => tracing::warn!(
                    "discarding unusable compile cache entry {}: {e}",
                    path.display()
                ),
            }
        }
        let component = Component::new(engine, wasm)?;
        if let Err(e) = store(&path, &component) {
            tracing::warn!("cannot write compile cache entry {}: {e}", path.display());
        }
        Ok((component, CacheOutcome::Compiled))
    }

    fn entry_path(&self, engine: &Engine, wasm: &[u8]) -> Option<PathBuf> {
        let dir = self.dir.as_ref()?;
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        env!("CARGO_PKG_VERSION").hash(&mut hasher);
        let name = format!(
            "{}-{:016x}.cwasm",
            blake3::hash(wasm).to_hex(),
            hasher.finish()
        );
        Some(dir.join(name))
    }
}

fn store(path: &Path, component: &Component) -> Result<(), Box<dyn std::error::Error>> {
    let dir = path.parent().ok_or("cache path has no parent")?;
    std::fs::create_dir_all(dir)?;
    let bytes = component.serialize()?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}
