//! The plugins this server has loaded: the built-in ones embedded in the binary and the
//! `.wasm` files of the plugin folder, each compiled (or taken from the cache), checked
//! against its own manifest, and described.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use wasmtime::component::Component;
use wasmtime::component::types::ComponentItem;

use super::bindings::notifier::NotifierPre;
use super::bindings::transport::TransportPre;
use super::bindings::{Capability, PluginInfo};
use super::cache::CacheOutcome;
use super::engine::{PluginEngine, RuntimeLimits};
use super::run::{PluginError, describe_timeout};
use super::state::JobState;

/// The contract version this host implements.
pub const CONTRACT_VERSION: &str = "0.1.0";

/// The plugins compiled into this binary by `build.rs`: name and component bytes.
mod builtin {
    include!(concat!(env!("OUT_DIR"), "/builtin_plugins.rs"));
}

/// Transport or notifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PluginKind {
    /// Exports `backup` and `restore`.
    Transport,
    /// Exports `notify`.
    Notifier,
}

impl PluginKind {
    /// Its name in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            PluginKind::Transport => "transport",
            PluginKind::Notifier => "notifier",
        }
    }
}

/// Where a plugin came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginSource {
    /// Embedded in the `hoard` binary.
    BuiltIn,
    /// A file of the plugin folder.
    File(PathBuf),
}

impl std::fmt::Display for PluginSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PluginSource::BuiltIn => f.write_str("built-in"),
            PluginSource::File(path) => write!(f, "{}", path.display()),
        }
    }
}

/// A component ready to instantiate, per world.
pub(crate) enum PluginPre {
    Transport(TransportPre<JobState>),
    Notifier(NotifierPre<JobState>),
}

/// One loaded plugin.
pub struct LoadedPlugin {
    /// What it says about itself.
    pub info: PluginInfo,
    /// Transport or notifier.
    pub kind: PluginKind,
    /// Where it came from.
    pub source: PluginSource,
    /// BLAKE3 of its component bytes (hex).
    pub digest: String,
    /// Whether its compiled code came from the cache.
    pub cache: CacheOutcome,
    pub(crate) pre: PluginPre,
}

/// Why a component could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Reading the file failed.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// It is not a component wasmtime can compile.
    #[error("{source_name}: not a loadable component: {message}")]
    Compile {
        /// Where it came from.
        source_name: String,
        /// Why.
        message: String,
    },
    /// It exports neither world.
    #[error("{source_name}: exports neither a transport (backup, restore) nor a notifier (notify)")]
    UnknownWorld {
        /// Where it came from.
        source_name: String,
    },
    /// It imports something hoard does not provide, or a capability its manifest does not list.
    #[error("plugin {plugin} ({source_name}): {message}")]
    Manifest {
        /// Its name.
        plugin: String,
        /// Where it came from.
        source_name: String,
        /// What is wrong.
        message: String,
    },
    /// `describe()` failed.
    #[error("{0}")]
    Describe(#[from] PluginError),
}

/// A plugin folder entry that could not be loaded; the rest load anyway.
#[derive(Debug)]
pub struct LoadProblem {
    /// The file.
    pub path: PathBuf,
    /// Why.
    pub error: LoadError,
}

/// The loaded plugins by name.
pub struct PluginCatalog {
    engine: Arc<PluginEngine>,
    limits: RuntimeLimits,
    plugins: BTreeMap<String, Arc<LoadedPlugin>>,
    problems: Vec<LoadProblem>,
}

impl PluginCatalog {
    /// Loads the built-in plugins, then every `*.wasm` of `plugin_dir` (a plugin there with a
    /// built-in's name replaces it). A folder plugin that fails to load is reported in
    /// [`problems`](Self::problems); a built-in that fails is an error (a broken build).
    pub async fn load(
        engine: Arc<PluginEngine>,
        limits: RuntimeLimits,
        plugin_dir: Option<&Path>,
    ) -> Result<Self, LoadError> {
        let mut catalog = Self {
            engine,
            limits,
            plugins: BTreeMap::new(),
            problems: Vec::new(),
        };
        for (name, wasm) in builtin::PLUGINS {
            let plugin = catalog.load_component(wasm, PluginSource::BuiltIn).await?;
            if plugin.info.name != *name {
                tracing::warn!(
                    "built-in plugin {name} describes itself as {}",
                    plugin.info.name
                );
            }
            catalog.insert(plugin);
        }
        if let Some(dir) = plugin_dir {
            catalog.load_folder(dir).await;
        }
        Ok(catalog)
    }

    async fn load_folder(&mut self, dir: &Path) {
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
            Err(source) => {
                self.problems.push(LoadProblem {
                    path: dir.to_path_buf(),
                    error: LoadError::Read {
                        path: dir.to_path_buf(),
                        source,
                    },
                });
                return;
            }
        };
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "wasm"))
            .collect();
        paths.sort();
        for path in paths {
            match self.load_file(&path).await {
                Ok(plugin) => {
                    if let Some(old) = self.plugins.get(&plugin.info.name) {
                        tracing::warn!(
                            "plugin {} from {} replaces the one from {}",
                            plugin.info.name,
                            path.display(),
                            old.source
                        );
                    }
                    self.insert(plugin);
                }
                Err(error) => {
                    tracing::error!("{error}");
                    self.problems.push(LoadProblem { path, error });
                }
            }
        }
    }

    /// Loads one component file.
    pub async fn load_file(&self, path: &Path) -> Result<Arc<LoadedPlugin>, LoadError> {
        let wasm = std::fs::read(path).map_err(|source| LoadError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        self.load_component(&wasm, PluginSource::File(path.to_path_buf()))
            .await
    }

    /// Compiles (or takes from the cache), checks and describes a component.
    pub async fn load_component(
        &self,
        wasm: &[u8],
        source: PluginSource,
    ) -> Result<Arc<LoadedPlugin>, LoadError> {
        let source_name = source.to_string();
        let engine = self.engine.engine();
        let compile_error = |e: wasmtime::Error| LoadError::Compile {
            source_name: source_name.clone(),
            message: format!("{e:#}"),
        };
        let (component, cache) = self
            .engine
            .cache()
            .load(engine, wasm)
            .map_err(compile_error)?;
        let kind = world_of(&component, engine).ok_or_else(|| LoadError::UnknownWorld {
            source_name: source_name.clone(),
        })?;
        let pre = match kind {
            PluginKind::Transport => {
                let pre = self
                    .engine
                    .transport_linker()
                    .instantiate_pre(&component)
                    .map_err(compile_error)?;
                PluginPre::Transport(TransportPre::new(pre).map_err(compile_error)?)
            }
            PluginKind::Notifier => {
                let pre = self
                    .engine
                    .notifier_linker()
                    .instantiate_pre(&component)
                    .map_err(compile_error)?;
                PluginPre::Notifier(NotifierPre::new(pre).map_err(compile_error)?)
            }
        };
        let info = describe(&self.engine, &pre, &self.limits, &source_name).await?;
        check_manifest(&component, engine, &info, &source_name)?;
        Ok(Arc::new(LoadedPlugin {
            info,
            kind,
            source,
            digest: blake3::hash(wasm).to_hex().to_string(),
            cache,
            pre,
        }))
    }

    fn insert(&mut self, plugin: Arc<LoadedPlugin>) {
        self.plugins.insert(plugin.info.name.clone(), plugin);
    }

    /// The plugin called `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<LoadedPlugin>> {
        self.plugins.get(name)
    }

    /// Every loaded plugin, by name.
    pub fn plugins(&self) -> impl Iterator<Item = &Arc<LoadedPlugin>> {
        self.plugins.values()
    }

    /// Folder entries that failed to load.
    pub fn problems(&self) -> &[LoadProblem] {
        &self.problems
    }

    /// The engine.
    pub fn engine(&self) -> &Arc<PluginEngine> {
        &self.engine
    }

    /// The limits every job runs under.
    pub fn limits(&self) -> &RuntimeLimits {
        &self.limits
    }
}

fn world_of(component: &Component, engine: &wasmtime::Engine) -> Option<PluginKind> {
    let ty = component.component_type();
    let exports: Vec<String> = ty
        .exports(engine)
        .map(|(name, _)| name.to_string())
        .collect();
    let has = |n: &str| exports.iter().any(|e| e == n);
    if has("backup") && has("restore") && has("describe") {
        Some(PluginKind::Transport)
    } else if has("notify") && has("describe") {
        Some(PluginKind::Notifier)
    } else {
        None
    }
}

async fn describe(
    engine: &PluginEngine,
    pre: &PluginPre,
    limits: &RuntimeLimits,
    source_name: &str,
) -> Result<PluginInfo, LoadError> {
    let state = JobState::new(Arc::from(source_name), limits);
    let mut store = wasmtime::Store::new(engine.engine(), state);
    store.limiter(|s| &mut s.limits);
    store.epoch_deadline_async_yield_and_update(1);
    let call = async {
        match pre {
            PluginPre::Transport(pre) => {
                pre.instantiate_async(&mut store)
                    .await?
                    .call_describe(&mut store)
                    .await
            }
            PluginPre::Notifier(pre) => {
                pre.instantiate_async(&mut store)
                    .await?
                    .call_describe(&mut store)
                    .await
            }
        }
    };
    match tokio::time::timeout(limits.short_deadline, call).await {
        Ok(Ok(info)) => Ok(info),
        Ok(Err(e)) => Err(LoadError::Describe(PluginError::Trap {
            plugin: source_name.to_string(),
            message: format!("describe() failed: {e:#}"),
        })),
        Err(_) => Err(describe_timeout(source_name, limits.short_deadline)),
    }
}

/// Checks what a component imports against what its manifest declares: an interface that
/// reaches outside the sandbox needs a matching capability, and nothing outside WASI and the
/// hoard contract may be imported at all.
fn check_manifest(
    component: &Component,
    engine: &wasmtime::Engine,
    info: &PluginInfo,
    source_name: &str,
) -> Result<(), LoadError> {
    let refuse = |message: String| LoadError::Manifest {
        plugin: info.name.clone(),
        source_name: source_name.to_string(),
        message,
    };
    let major_minor = |v: &str| v.split('.').take(2).collect::<Vec<_>>().join(".");
    if major_minor(&info.contract) != major_minor(CONTRACT_VERSION) {
        return Err(refuse(format!(
            "built against contract {}, this server speaks {CONTRACT_VERSION}",
            info.contract
        )));
    }
    let declares = |f: &dyn Fn(&Capability) -> bool| info.capabilities.iter().any(f);
    let ty = component.component_type();
    for (name, item) in ty.imports(engine) {
        if !matches!(item.ty, ComponentItem::ComponentInstance(_)) && !name.starts_with("wasi:") {
            return Err(refuse(format!("imports {name}, which is not an interface")));
        }
        let Some(rest) = name.strip_prefix("hoard:plugin/") else {
            if name.starts_with("wasi:") {
                continue;
            }
            return Err(refuse(format!(
                "imports {name}, which hoard does not provide"
            )));
        };
        let (interface, version) = rest.split_once('@').unwrap_or((rest, ""));
        if major_minor(version) != major_minor(CONTRACT_VERSION) {
            return Err(refuse(format!(
                "imports {name}, this server speaks {CONTRACT_VERSION}"
            )));
        }
        let declared = match interface {
            "client" => declares(&|c| matches!(c, Capability::Exec(_) | Capability::Connect(_))),
            "server-tools" => declares(&|c| matches!(c, Capability::ServerTool(_))),
            "credentials" => declares(&|c| matches!(c, Capability::Secret(_))),
            "endpoint" => declares(&|c| matches!(c, Capability::Endpoint)),
            "http" => declares(&|c| matches!(c, Capability::Http)),
            _ => true,
        };
        if !declared {
            return Err(refuse(format!(
                "imports hoard:plugin/{interface} but its manifest asks for no capability that uses it"
            )));
        }
    }
    Ok(())
}
