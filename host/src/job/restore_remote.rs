//! Restoring a backup to a client through its transport plugin (e.g. a tar stream into
//! `tar -x` on the client), to the original place or another.

use std::sync::Arc;

use hoard_pool::SnapshotReader;

use super::PoolSource;
use super::share::ShareSource;
use crate::client::ClientConnector;
use crate::plugin::bindings::{JobSummary, RestoreJob, Setting};
use crate::plugin::imports::snapshot::SnapshotSource;
use crate::plugin::state::{CancelFlag, JobLog, Progress};
use crate::plugin::{
    CapabilityGrant, JobContext, LoadedPlugin, PluginEngine, PluginError, RuntimeLimits,
};

/// Where a restore goes on the client.
#[derive(Debug, Clone)]
pub struct RemoteRestore {
    /// The client's name.
    pub host: String,
    /// Its address.
    pub address: String,
    /// The share the entries belong to (their prefix in the backup).
    pub share: Vec<u8>,
    /// The path inside the share to restore (empty: all of it).
    pub source: Vec<u8>,
    /// The directory on the client the share's relative paths are restored under: the share
    /// itself for the original place.
    pub destination: Vec<u8>,
    /// Plugin settings.
    pub settings: Vec<(String, String)>,
}

/// Runs the transport's restore.
#[allow(clippy::too_many_arguments)]
pub async fn restore_to_client(
    request: &RemoteRestore,
    reader: SnapshotReader,
    engine: &PluginEngine,
    limits: &RuntimeLimits,
    transport: Arc<LoadedPlugin>,
    grant: CapabilityGrant,
    client: Arc<dyn ClientConnector>,
    progress: Arc<Progress>,
) -> (Result<JobSummary, PluginError>, JobLog) {
    let source: Arc<dyn SnapshotSource> = Arc::new(PoolSource::new(reader));
    let view = ShareSource::new(&request.share, source).walking_from(&request.source);
    let job = RestoreJob {
        source: request.source.clone(),
        host: request.host.clone(),
        address: request.address.clone(),
        share: request.destination.clone(),
        target: Vec::new(),
        settings: request
            .settings
            .iter()
            .map(|(name, value)| Setting {
                name: name.clone(),
                value: value.clone(),
            })
            .collect(),
    };
    let context = JobContext {
        host: request.host.clone(),
        grant,
        client: Some(client),
        snapshot: Some(Arc::new(view)),
        progress,
        cancel: CancelFlag::default(),
        ..JobContext::default()
    };
    let run = transport.restore(engine, limits, job, context).await;
    (run.result, run.log)
}
