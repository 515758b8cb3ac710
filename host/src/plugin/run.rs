//! Running one plugin call under the sandbox's limits: a fresh store per job, the memory cap,
//! a wall deadline (the store yields on every epoch tick, so a spinning guest is stopped as
//! surely as one blocked in a host call), and every way a plugin can fail turned into a
//! [`PluginError`] that names it. A failed job never takes the server down.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use wasmtime::Store;

use super::bindings::{BackupJob, JobSummary, RestoreJob, WitError};
use super::catalog::{LoadedPlugin, PluginPre};
use super::engine::{PluginEngine, RuntimeLimits};
use super::grant::{CapabilityGrant, JobDirection};
use super::imports::notifier::NotifierTarget;
use super::imports::sink::BackupSink;
use super::imports::snapshot::SnapshotSource;
use super::state::{CancelFlag, JobLog, JobState, LogLevel, Progress};
use crate::client::ClientConnector;

/// Why a plugin call failed.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// The plugin returned an error.
    #[error("plugin {plugin}: {error}")]
    Failed {
        /// The plugin.
        plugin: String,
        /// What it reported.
        error: String,
        /// Whether it was a capability the config does not grant.
        not_granted: bool,
    },
    /// The plugin trapped (a panic, an out-of-bounds access, ...).
    #[error("plugin {plugin} crashed: {message}")]
    Trap {
        /// The plugin.
        plugin: String,
        /// The trap, and the panic message when the plugin printed one.
        message: String,
    },
    /// It tried to grow its memory past the cap.
    #[error("plugin {plugin} went over its memory limit of {limit} bytes")]
    Memory {
        /// The plugin.
        plugin: String,
        /// The cap.
        limit: u64,
    },
    /// It ran past its deadline and was stopped.
    #[error("plugin {plugin} ran past its deadline of {after:?} and was stopped")]
    Deadline {
        /// The plugin.
        plugin: String,
        /// The deadline.
        after: Duration,
    },
    /// It could not be instantiated (an import the host lacks, a start function that failed).
    #[error("plugin {plugin} could not be started: {message}")]
    Instantiate {
        /// The plugin.
        plugin: String,
        /// Why.
        message: String,
    },
    /// The call does not fit the plugin (backup on a notifier).
    #[error("plugin {plugin} is a {kind}, it cannot {call}")]
    WrongKind {
        /// The plugin.
        plugin: String,
        /// What it is.
        kind: &'static str,
        /// What was asked.
        call: &'static str,
    },
}

/// Renders a plugin's error for logs.
pub fn describe_wit_error(error: &WitError) -> String {
    match error {
        WitError::NotGranted(m) => format!("not granted: {m}"),
        WitError::Client(m) => format!("client: {m}"),
        WitError::Protocol(m) => format!("protocol: {m}"),
        WitError::Storage(m) => format!("storage: {m}"),
        WitError::Cancelled => "cancelled".into(),
        WitError::Other(m) => m.clone(),
    }
}

/// Everything a job hands to a plugin beyond its arguments.
#[derive(Default)]
pub struct JobContext {
    /// The client's name (empty for notifiers).
    pub host: String,
    /// Backup, restore, or neither.
    pub direction: Option<JobDirection>,
    /// What the config grants this plugin for this host; limited further to its manifest.
    pub grant: CapabilityGrant,
    /// How to reach the client.
    pub client: Option<Arc<dyn ClientConnector>>,
    /// Where a backup goes.
    pub sink: Option<Box<dyn BackupSink>>,
    /// The reference backup.
    pub reference: Option<Arc<dyn SnapshotSource>>,
    /// The backup being restored.
    pub snapshot: Option<Arc<dyn SnapshotSource>>,
    /// A notifier's destinations.
    pub notifier_target: NotifierTarget,
    /// The job log to append to.
    pub log: JobLog,
    /// Live progress.
    pub progress: Arc<Progress>,
    /// Cancellation.
    pub cancel: CancelFlag,
}

/// What is left of a job once the plugin returned: its result, and the sink to commit or drop.
pub struct JobRun<T> {
    /// The plugin's answer, or why there is none.
    pub result: Result<T, PluginError>,
    /// The sink, handed back for commit (or abort).
    pub sink: Option<Box<dyn BackupSink>>,
    /// The job's log.
    pub log: JobLog,
}

impl LoadedPlugin {
    fn store(
        &self,
        engine: &PluginEngine,
        limits: &RuntimeLimits,
        context: JobContext,
    ) -> Store<JobState> {
        let mut state = JobState::new(Arc::from(self.info.name.as_str()), limits);
        state.host = context.host;
        state.direction = context.direction.unwrap_or(JobDirection::None);
        state.grant = context.grant.restricted_to(&self.info.capabilities);
        state.client = context.client;
        state.sink = context.sink;
        state.reference = context.reference;
        state.snapshot = context.snapshot;
        state.notifier_target = context.notifier_target;
        state.log = context.log;
        state.progress = context.progress;
        state.cancel = context.cancel;
        let mut store = Store::new(engine.engine(), state);
        store.limiter(|state| &mut state.limits);
        store.epoch_deadline_async_yield_and_update(1);
        store
    }

    /// Backs up through the plugin.
    pub async fn backup(
        &self,
        engine: &PluginEngine,
        limits: &RuntimeLimits,
        job: BackupJob,
        mut context: JobContext,
    ) -> JobRun<JobSummary> {
        context.direction = Some(JobDirection::Backup);
        let PluginPre::Transport(pre) = &self.pre else {
            return self.wrong_kind("back up", context);
        };
        let call = async |store: &mut Store<JobState>| {
            let instance = pre
                .instantiate_async(&mut *store)
                .await
                .map_err(Phase::Instantiate)?;
            instance
                .call_backup(&mut *store, &job)
                .await
                .map_err(Phase::Call)
        };
        self.call(engine, limits, context, limits.job_deadline, call)
            .await
    }

    /// Restores through the plugin.
    pub async fn restore(
        &self,
        engine: &PluginEngine,
        limits: &RuntimeLimits,
        job: RestoreJob,
        mut context: JobContext,
    ) -> JobRun<JobSummary> {
        context.direction = Some(JobDirection::Restore);
        let PluginPre::Transport(pre) = &self.pre else {
            return self.wrong_kind("restore", context);
        };
        let call = async |store: &mut Store<JobState>| {
            let instance = pre
                .instantiate_async(&mut *store)
                .await
                .map_err(Phase::Instantiate)?;
            instance
                .call_restore(&mut *store, &job)
                .await
                .map_err(Phase::Call)
        };
        self.call(engine, limits, context, limits.job_deadline, call)
            .await
    }

    /// Delivers one event through a notifier.
    pub async fn notify(
        &self,
        engine: &PluginEngine,
        limits: &RuntimeLimits,
        event: super::bindings::notifier::hoard::plugin::events::Event,
        context: JobContext,
    ) -> JobRun<()> {
        let PluginPre::Notifier(pre) = &self.pre else {
            return self.wrong_kind("notify", context);
        };
        let call = async |store: &mut Store<JobState>| {
            let instance = pre
                .instantiate_async(&mut *store)
                .await
                .map_err(Phase::Instantiate)?;
            instance
                .call_notify(&mut *store, &event)
                .await
                .map_err(Phase::Call)
        };
        self.call(engine, limits, context, limits.short_deadline, call)
            .await
    }

    /// Runs one export in a fresh store under `deadline`, and turns how it ended into a
    /// [`JobRun`].
    async fn call<T>(
        &self,
        engine: &PluginEngine,
        limits: &RuntimeLimits,
        context: JobContext,
        deadline: Duration,
        export: impl AsyncFnOnce(&mut Store<JobState>) -> Result<Result<T, WitError>, Phase>,
    ) -> JobRun<T> {
        let mut store = self.store(engine, limits, context);
        let result = run_with_deadline(export(&mut store), deadline).await;
        self.finish(store, result, limits)
    }

    /// Instantiates the plugin in a fresh, empty sandbox and drops it: a check that it still
    /// links, and the per-job start-up cost (benchmarks).
    pub async fn instantiate_only(
        &self,
        engine: &PluginEngine,
        limits: &RuntimeLimits,
    ) -> Result<(), PluginError> {
        let mut store = self.store(engine, limits, JobContext::default());
        let result = match &self.pre {
            PluginPre::Transport(pre) => pre.instantiate_async(&mut store).await.map(drop),
            PluginPre::Notifier(pre) => pre.instantiate_async(&mut store).await.map(drop),
        };
        result.map_err(|e| PluginError::Instantiate {
            plugin: self.info.name.clone(),
            message: format!("{e:#}"),
        })
    }

    fn wrong_kind<T>(&self, call: &'static str, context: JobContext) -> JobRun<T> {
        JobRun {
            result: Err(PluginError::WrongKind {
                plugin: self.info.name.clone(),
                kind: self.kind.as_str(),
                call,
            }),
            sink: context.sink,
            log: context.log,
        }
    }

    fn finish<T>(
        &self,
        store: Store<JobState>,
        outcome: Outcome<Result<T, WitError>>,
        limits: &RuntimeLimits,
    ) -> JobRun<T> {
        let state = store.into_data();
        state.drain_stderr();
        let plugin = self.info.name.clone();
        let result = match outcome {
            Outcome::Done(Ok(value)) => Ok(value),
            Outcome::Done(Err(error)) => Err(PluginError::Failed {
                plugin,
                not_granted: matches!(error, WitError::NotGranted(_)),
                error: describe_wit_error(&error),
            }),
            Outcome::Failed(Phase::Instantiate(e)) => Err(PluginError::Instantiate {
                plugin,
                message: format!("{e:#}"),
            }),
            Outcome::Failed(Phase::Call(e)) => Err(classify_trap(plugin, e, &state, limits)),
            Outcome::TimedOut(after) => Err(PluginError::Deadline { plugin, after }),
        };
        if let Err(e) = &result {
            state.log_line(LogLevel::Error, e.to_string());
        }
        JobRun {
            result,
            sink: state.sink,
            log: state.log,
        }
    }
}

/// Where a call failed.
enum Phase {
    Instantiate(wasmtime::Error),
    Call(wasmtime::Error),
}

/// How a call ended.
enum Outcome<T> {
    Done(T),
    Failed(Phase),
    TimedOut(Duration),
}

async fn run_with_deadline<T>(
    call: impl Future<Output = Result<T, Phase>>,
    deadline: Duration,
) -> Outcome<T> {
    match tokio::time::timeout(deadline, call).await {
        Ok(Ok(value)) => Outcome::Done(value),
        Ok(Err(phase)) => Outcome::Failed(phase),
        Err(_) => Outcome::TimedOut(deadline),
    }
}

fn classify_trap(
    plugin: String,
    error: wasmtime::Error,
    state: &JobState,
    limits: &RuntimeLimits,
) -> PluginError {
    let text = format!("{error:?}");
    if text.contains("growing memory")
        || text.contains("memory.grow")
        || text.contains("forcing trap when growing")
    {
        return PluginError::Memory {
            plugin,
            limit: limits.memory_bytes,
        };
    }
    let trap = error
        .downcast_ref::<wasmtime::Trap>()
        .map(|t| t.to_string());
    let panic = state
        .log
        .lines()
        .into_iter()
        .rev()
        .find(|l| l.message.contains("panicked"))
        .map(|l| l.message);
    let message = match (trap, panic) {
        (Some(trap), Some(panic)) => format!("{trap} ({panic})"),
        (Some(trap), None) => trap,
        (None, Some(panic)) => format!("{error} ({panic})"),
        (None, None) => format!("{error}"),
    };
    PluginError::Trap { plugin, message }
}

/// The error for a `describe()` that did not answer in time.
pub(crate) fn describe_timeout(plugin: &str, after: Duration) -> super::catalog::LoadError {
    super::catalog::LoadError::Describe(PluginError::Deadline {
        plugin: plugin.to_string(),
        after,
    })
}
