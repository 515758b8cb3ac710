//! The pieces of one host's backup, from its resolved config: the plan (shares, filters,
//! settings), how its client is reached, the limits its plugin runs under, and its transport
//! with what the config grants it. The CLI and the server both start jobs from these.

use std::sync::Arc;

use super::backup::{BackupPlan, SharePlan};
use crate::client::local::LocalClient;
use crate::client::ssh::SshClient;
use crate::client::{ClientConnector, ClientError};
use crate::config::{Config, ConfigError, ResolvedHost};
use crate::plugin::bindings::{BackupLevel, Capability};
use crate::plugin::catalog::PluginSource;
use crate::plugin::{CapabilityGrant, LoadedPlugin, PluginCatalog, RuntimeLimits};

/// Why a host's job cannot be prepared.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    /// The host names a transport no loaded plugin has.
    #[error("host {host}: no plugin named {name:?} is loaded (see `hoard plugin list`)")]
    NoPlugin {
        /// The host.
        host: String,
        /// The transport it names.
        name: String,
    },
    /// The host's grants do not resolve.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The client cannot be set up.
    #[error(transparent)]
    Client(#[from] ClientError),
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

/// The host's transport plugin and what it may do. Without `grants` in its config, a
/// built-in plugin gets what its manifest asks for; a plugin from the folder gets nothing.
pub fn transport_for(
    config: &Config,
    catalog: &PluginCatalog,
    host: &ResolvedHost,
) -> Result<(Arc<LoadedPlugin>, CapabilityGrant), PrepareError> {
    let plugin = catalog
        .get(&host.transport)
        .cloned()
        .ok_or_else(|| PrepareError::NoPlugin {
            host: host.name.clone(),
            name: host.transport.clone(),
        })?;
    let manifest: &[Capability] = if host.grants.is_none() && plugin.source != PluginSource::BuiltIn
    {
        &[]
    } else {
        &plugin.info.capabilities
    };
    let grant = config.capability_grant(host, manifest)?;
    Ok((plugin, grant))
}

/// How a host is reached.
pub async fn client_for(host: &ResolvedHost) -> Result<Arc<dyn ClientConnector>, PrepareError> {
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
        hooks: host.hooks.clone(),
        hook_limit: host.client_timeout,
    }
}
