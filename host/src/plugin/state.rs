//! The sandbox of one plugin job: the data of its wasmtime store.
//!
//! It starts from nothing, like a `WasiCtxBuilder`: no preopened directory, no environment,
//! no arguments, no sockets, stdout discarded, stderr captured into the job log. What the job
//! may reach (one client, its grants, the sink, the reference) is added by [`JobState::new`]
//! from a [`JobContext`](super::run::JobContext) and nothing else.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use wasmtime::component::ResourceTable;
use wasmtime::{StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::engine::RuntimeLimits;
use super::grant::{CapabilityGrant, JobDirection};
use super::imports::sink::{BackupSink, FileWriterHandle};
use super::imports::snapshot::SnapshotSource;
use crate::client::ClientConnector;

/// How much of a plugin's stderr (panic messages) is kept for the job log.
const STDERR_CAPTURE: usize = 64 * 1024;

/// Importance of a job log line.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Detail.
    Debug,
    /// Progress.
    Info,
    /// Worth a look.
    Warning,
    /// A failure.
    Error,
}

/// One line of a job's log.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct LogLine {
    /// Importance.
    pub level: LogLevel,
    /// Text.
    pub message: String,
}

/// A job's log, shared by the plugin's `job.log` calls, the host's own notes and whoever
/// shows it (CLI, web UI).
#[derive(Debug, Clone, Default)]
pub struct JobLog {
    lines: Arc<std::sync::Mutex<Vec<LogLine>>>,
}

impl JobLog {
    /// Appends a line and mirrors it to the server's log.
    pub fn push(&self, plugin: &str, level: LogLevel, message: impl Into<String>) {
        let message = message.into();
        match level {
            LogLevel::Debug => tracing::debug!(plugin, "{message}"),
            LogLevel::Info => tracing::info!(plugin, "{message}"),
            LogLevel::Warning => tracing::warn!(plugin, "{message}"),
            LogLevel::Error => tracing::error!(plugin, "{message}"),
        }
        if let Ok(mut lines) = self.lines.lock() {
            lines.push(LogLine { level, message });
        }
    }

    /// Every line so far.
    pub fn lines(&self) -> Vec<LogLine> {
        self.lines.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

/// Live progress of a job, readable from other tasks while it runs.
#[derive(Debug, Default)]
pub struct Progress {
    /// Entries handled.
    pub entries: AtomicU64,
    /// Content bytes handled.
    pub bytes: AtomicU64,
}

/// A flag the server sets to ask a job to stop.
#[derive(Debug, Clone, Default)]
pub struct CancelFlag(Arc<AtomicBool>);

impl CancelFlag {
    /// Asks the job to stop.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether stopping was asked for.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// The data of one job's store.
pub struct JobState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) limits: StoreLimits,
    /// The plugin's name, for every error and log line.
    pub plugin: Arc<str>,
    /// The client's name.
    pub host: String,
    /// Backup, restore, or neither.
    pub direction: JobDirection,
    /// What this plugin may do for this host.
    pub grant: CapabilityGrant,
    /// How to reach the client, when the job has one.
    pub client: Option<Arc<dyn ClientConnector>>,
    /// Where a backup's entries go.
    pub sink: Option<Box<dyn BackupSink>>,
    /// The file being written through the sink, if one is open.
    pub(crate) open_file: Option<wasmtime::component::Resource<FileWriterHandle>>,
    /// The reference backup.
    pub reference: Option<Arc<dyn SnapshotSource>>,
    /// The backup being restored.
    pub snapshot: Option<Arc<dyn SnapshotSource>>,
    /// The job log.
    pub log: JobLog,
    /// Live progress.
    pub progress: Arc<Progress>,
    /// Cancellation.
    pub cancel: CancelFlag,
    /// Time limits for capability calls.
    pub limits_config: RuntimeLimits,
    /// Where a notifier may send.
    pub notifier_target: super::imports::notifier::NotifierTarget,
    /// Credential files written for server tools; deleted with the job.
    pub(crate) temp_files: Vec<tempfile::TempPath>,
    stderr: MemoryOutputPipe,
}

impl JobState {
    /// A sandbox with nothing in it but what the arguments give.
    pub fn new(plugin: Arc<str>, limits: &RuntimeLimits) -> Self {
        let stderr = MemoryOutputPipe::new(STDERR_CAPTURE);
        let wasi = WasiCtx::builder()
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        let memory = usize::try_from(limits.memory_bytes).unwrap_or(usize::MAX);
        Self {
            wasi,
            table: ResourceTable::new(),
            limits: StoreLimitsBuilder::new()
                .memory_size(memory)
                .memories(4)
                .instances(16)
                .tables(64)
                .trap_on_grow_failure(true)
                .build(),
            plugin,
            host: String::new(),
            direction: JobDirection::None,
            grant: CapabilityGrant::default(),
            client: None,
            sink: None,
            open_file: None,
            reference: None,
            snapshot: None,
            log: JobLog::default(),
            progress: Arc::default(),
            cancel: CancelFlag::default(),
            limits_config: limits.clone(),
            notifier_target: Default::default(),
            temp_files: Vec::new(),
            stderr,
        }
    }

    /// The resource table shared by WASI streams and hoard resources.
    pub fn table(&mut self) -> &mut ResourceTable {
        &mut self.table
    }

    /// Appends to the job log.
    pub fn log_line(&self, level: LogLevel, message: impl Into<String>) {
        self.log.push(&self.plugin, level, message);
    }

    /// Moves what the plugin wrote to stderr (a panic message, typically) into the job log.
    pub fn drain_stderr(&self) {
        let text = self.stderr.contents();
        let text = String::from_utf8_lossy(&text);
        let text: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        if !text.is_empty() {
            self.log_line(
                LogLevel::Error,
                format!("plugin stderr: {}", text.join(" ")),
            );
        }
    }
}

impl WasiView for JobState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}
