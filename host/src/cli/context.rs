//! What most commands need: the config (the folder, or the built-in quick start when the
//! folder does not exist), the pool, and the plugin catalog; and the pieces of one host's
//! backup (its client connection, its transport and its grant).

use std::sync::Arc;

use anyhow::{Context as _, anyhow, bail};
use hoard_pool::{Pool, PoolOptions, SnapshotId, SnapshotInfo};

use super::Cli;
use crate::client::ClientConnector;
use crate::config::{Config, ResolvedHost, user_pool_dir};
use crate::job::prepare::{self, transport_for};
pub use crate::job::prepare::{backup_plan, runtime_limits};
use crate::plugin::cache::CompileCache;
use crate::plugin::{CapabilityGrant, LoadedPlugin, PluginCatalog, PluginEngine, RuntimeLimits};

/// The loaded config and what it points at.
pub struct Context {
    /// The config.
    pub config: Config,
    /// The pool.
    pub pool: Pool,
}

impl Context {
    /// Loads the config and opens (or creates) the pool.
    pub fn open(cli: &Cli) -> anyhow::Result<Context> {
        let config = load_config(cli)?;
        let options = PoolOptions {
            zstd_level: config.compression_level(),
            ..PoolOptions::default()
        };
        let pool = match Pool::open_or_create(config.pool(), options) {
            Err(hoard_pool::PoolError::Locked { path }) => bail!(
                "the pool at {} is in use by another hoard process (a running `hoard serve`: \
                 use `hoard status`, and `hoard backup HOST` queues into it)",
                path.display()
            ),
            other => {
                other.with_context(|| format!("opening the pool at {}", config.pool().display()))?
            }
        };
        Ok(Context { config, pool })
    }

    /// The limits plugins run under.
    pub fn limits(&self, host: Option<&ResolvedHost>) -> RuntimeLimits {
        runtime_limits(&self.config, host)
    }

    /// The engine and the plugins (built-in, then the plugin folder).
    pub async fn catalog(&self) -> anyhow::Result<PluginCatalog> {
        load_catalog(&self.config, true).await
    }

    /// A host of the config.
    pub fn host(&self, name: &str) -> anyhow::Result<ResolvedHost> {
        Ok(self.config.host(name)?)
    }

    /// The host's transport plugin and what it may do.
    pub fn transport(
        &self,
        catalog: &PluginCatalog,
        host: &ResolvedHost,
    ) -> anyhow::Result<(Arc<LoadedPlugin>, CapabilityGrant)> {
        Ok(transport_for(&self.config, catalog, host)?)
    }

    /// The host's snapshot `number`, or its latest.
    pub fn snapshot_info(&self, host: &str, number: Option<u64>) -> anyhow::Result<SnapshotInfo> {
        let snapshots = self.pool.snapshots(host)?;
        match number {
            Some(n) => snapshots
                .into_iter()
                .find(|s| s.id.number == n)
                .ok_or_else(|| anyhow!("host {host} has no backup #{n} (see `hoard list {host}`)")),
            None => snapshots
                .into_iter()
                .next_back()
                .ok_or_else(|| anyhow!("host {host} has no backups yet")),
        }
    }

    /// The snapshot id of `HOST[:N]`.
    pub fn resolve_spec(&self, spec: &HostSpec) -> anyhow::Result<SnapshotId> {
        Ok(self.snapshot_info(&spec.host, spec.number)?.id)
    }
}

/// The engine (with the config's compile cache) and the built-in plugins, plus the config's
/// plugin folder when `with_folder`.
pub async fn load_catalog(config: &Config, with_folder: bool) -> anyhow::Result<PluginCatalog> {
    let engine = PluginEngine::new(CompileCache::in_dir(config.cache_dir().join("compiled")))
        .map_err(|e| anyhow!("{e:#}"))
        .context("starting the WebAssembly engine")?;
    let folder = if with_folder {
        config.plugin_dir()
    } else {
        None
    };
    let catalog =
        PluginCatalog::load(engine, runtime_limits(config, None), folder.as_deref()).await?;
    for problem in catalog.problems() {
        eprintln!("warning: plugin not loaded: {}", problem.error);
    }
    Ok(catalog)
}

/// The config folder, or the built-in quick start when the default folder does not exist.
pub fn load_config(cli: &Cli) -> anyhow::Result<Config> {
    if cli.config.exists() {
        return Ok(Config::load(&cli.config)?);
    }
    if cli.config_is_default() {
        let pool = user_pool_dir();
        eprintln!(
            "note: no config at {}: using the built-in quick start (host localhost, pool {})",
            cli.config.display(),
            pool.display()
        );
        return Ok(Config::embedded(pool)?);
    }
    bail!("config folder {} does not exist", cli.config.display())
}

/// How a host is reached.
pub async fn client_for(host: &ResolvedHost) -> anyhow::Result<Arc<dyn ClientConnector>> {
    Ok(prepare::client_for(host).await?)
}

/// `HOST` or `HOST:N`.
#[derive(Debug, Clone)]
pub struct HostSpec {
    /// The host.
    pub host: String,
    /// The backup number; `None` for the latest.
    pub number: Option<u64>,
}

impl std::str::FromStr for HostSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.rsplit_once(':') {
            Some((host, n)) => Ok(HostSpec {
                host: host.to_string(),
                number: Some(
                    n.parse()
                        .map_err(|_| format!("{n:?} is not a backup number"))?,
                ),
            }),
            None => Ok(HostSpec {
                host: s.to_string(),
                number: None,
            }),
        }
    }
}
