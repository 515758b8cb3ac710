//! What most commands need: the config (the folder, or the built-in quick start when the
//! folder does not exist), the pool, and the plugin catalog; and the pieces of one host's
//! backup (its client connection, its transport and its grant).

use std::sync::Arc;

use anyhow::{Context as _, anyhow, bail};
use hoard_pool::{Pool, PoolOptions, SnapshotId, SnapshotInfo};

use super::Cli;
use crate::client::ClientConnector;
use crate::client::local::LocalClient;
use crate::client::ssh::SshClient;
use crate::config::{Config, ResolvedHost, user_pool_dir};
use crate::job::backup::{BackupPlan, SharePlan};
use crate::plugin::bindings::{BackupLevel, Capability};
use crate::plugin::cache::CompileCache;
use crate::plugin::catalog::PluginSource;
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
        let pool = Pool::open_or_create(config.pool(), options)
            .with_context(|| format!("opening the pool at {}", config.pool().display()))?;
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

    /// The host's transport plugin and what it may do. Without `grants` in its config, a
    /// built-in plugin gets what its manifest asks for; a plugin from the folder gets nothing.
    pub fn transport(
        &self,
        catalog: &PluginCatalog,
        host: &ResolvedHost,
    ) -> anyhow::Result<(Arc<LoadedPlugin>, CapabilityGrant)> {
        let plugin = catalog.get(&host.transport).cloned().ok_or_else(|| {
            anyhow!(
                "host {}: no plugin named {:?} is loaded (see `hoard plugin list`)",
                host.name,
                host.transport
            )
        })?;
        let manifest: &[Capability] =
            if host.grants.is_none() && plugin.source != PluginSource::BuiltIn {
                &[]
            } else {
                &plugin.info.capabilities
            };
        let grant = self.config.capability_grant(host, manifest)?;
        Ok((plugin, grant))
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

/// The limits plugins run under, from the config (and the host's client timeout).
pub fn runtime_limits(config: &Config, host: Option<&ResolvedHost>) -> RuntimeLimits {
    let mut limits = RuntimeLimits {
        memory_bytes: config.plugin_memory().bytes(),
        job_deadline: config.plugin_deadline(),
        ..RuntimeLimits::default()
    };
    if let Some(host) = host {
        limits.client_timeout = host.client_timeout;
    }
    limits
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
    match &host.ssh {
        None => Ok(Arc::new(LocalClient)),
        Some(ssh) => Ok(Arc::new(SshClient::new(ssh.clone()).await?)),
    }
}

/// What to back up for `host`.
pub fn backup_plan(host: &ResolvedHost, level: Option<BackupLevel>) -> BackupPlan {
    let bytes = |s: &str| s.as_bytes().to_vec();
    BackupPlan {
        host: host.name.clone(),
        address: host.address.clone(),
        shares: host
            .shares
            .iter()
            .map(|share| SharePlan {
                path: share.as_os_str().as_encoded_bytes().to_vec(),
                includes: host.includes_for(share).into_iter().map(bytes).collect(),
                excludes: host.excludes_for(share).into_iter().map(bytes).collect(),
            })
            .collect(),
        one_file_system: host.one_file_system,
        settings: host
            .plugin_settings
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        level,
    }
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
