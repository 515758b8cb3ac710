//! The server's loop. One task owns the state (config, queue, per-host history, running
//! jobs) and reacts to five things: the next wakeup, a control request, a finished job, a
//! signal (SIGHUP reloads, SIGTERM/SIGINT stop), and a change of the config files. Backups
//! and the nightly maintenance run on their own tasks and report back, so the loop always
//! answers the CLI.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use hoard_pool::{BackupType, FsckOptions, GcOptions, Pool, PoolError, PoolOptions};
use tokio::sync::{mpsc, oneshot};

use super::control::{self, Answer, HostState, Request, RunningJob, ServerStatus};
use super::history::{History, JobRecord, JobResult};
use super::log::ServerLog;
use super::{disk, reach};
use crate::config::{BackupMode, Config, ConfigError};
use crate::job::backup::{BackupOutcome, BackupResources, run_backup};
use crate::job::prepare::{backup_plan, client_for, runtime_limits, transport_for};
use crate::notify::deliver::Dispatcher;
use crate::notify::due::{SentRecord, reminders};
use crate::notify::notice::{admin_recipients, failure};
use crate::notify::{Notice, NoticeKind, Notifiers};
use crate::plugin::bindings::BackupLevel;
use crate::plugin::cache::CompileCache;
use crate::plugin::state::{CancelFlag, Progress};
use crate::plugin::{PluginCatalog, PluginEngine};
use crate::retention::{RetentionPolicy, expire_host};
use crate::schedule::calendar::UnixTime;
use crate::schedule::decide::requested;
use crate::schedule::policy::ServerLimits;
use crate::schedule::wakeup::Wakeup;
use crate::schedule::{
    Decision, HostHistory, JobQueue, LocalTime, Observation, Origin, QueuedJob, SchedulePolicy,
    decide, next_wakeup,
};

/// How often the config files are looked at for changes.
const CONFIG_POLL: Duration = Duration::from_secs(2);

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The config does not load.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Another process holds the pool.
    #[error(
        "the pool at {0} is in use by another hoard process (a running `hoard serve`, or a backup or restore): only one server may run on a pool"
    )]
    PoolBusy(PathBuf),
    /// The pool does not open.
    #[error("pool: {0}")]
    Pool(#[from] PoolError),
    /// The control socket cannot be set up.
    #[error("control socket {path}: {source}")]
    Socket {
        /// The socket.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// The plugin engine or the plugins do not load.
    #[error("plugins: {0}")]
    Plugins(String),
    /// A signal handler cannot be installed.
    #[error("signals: {0}")]
    Signals(std::io::Error),
}

/// Loads the config again (on SIGHUP or a change of its files).
pub type ConfigLoader = Box<dyn Fn() -> Result<Config, ConfigError> + Send + Sync>;

/// A job that ended.
struct Finished {
    job: QueuedJob,
    started: UnixTime,
    outcome: Result<BackupOutcome, String>,
}

/// A job that runs.
struct Running {
    job: QueuedJob,
    started: UnixTime,
    cancel: CancelFlag,
    progress: Arc<Progress>,
}

/// Runs the server until SIGTERM or SIGINT. `config_dir` is watched for changes (`None` for
/// the built-in config); `load` reads the config again.
pub async fn serve(config_dir: Option<PathBuf>, load: ConfigLoader) -> Result<(), ServeError> {
    use tokio::signal::unix::{SignalKind, signal};
    let config = load()?;
    let options = PoolOptions {
        zstd_level: config.compression_level(),
        ..PoolOptions::default()
    };
    let pool = match Pool::open_or_create(config.pool(), options) {
        Ok(pool) => pool,
        Err(PoolError::Locked { path }) => return Err(ServeError::PoolBusy(path)),
        Err(e) => return Err(e.into()),
    };
    let socket_path = config.control_socket();
    let listener = control::listen(&socket_path)
        .await
        .map_err(|source| ServeError::Socket {
            path: socket_path.clone(),
            source,
        })?;
    let catalog = load_plugins(&config).await?;
    let mut hangup = signal(SignalKind::hangup()).map_err(ServeError::Signals)?;
    let mut terminate = signal(SignalKind::terminate()).map_err(ServeError::Signals)?;
    let mut interrupt = signal(SignalKind::interrupt()).map_err(ServeError::Signals)?;

    let (done_tx, mut done_rx) = mpsc::unbounded_channel();
    let (request_tx, mut request_rx) = mpsc::channel::<(Request, oneshot::Sender<Answer>)>(16);
    let mut daemon = Daemon::new(config, pool, catalog, done_tx);
    daemon.log.line(format!(
        "server started (pid {}), control socket {}",
        std::process::id(),
        socket_path.display()
    ));
    let mut fingerprint = config_dir.as_deref().map(config_fingerprint);
    let mut poll = tokio::time::interval(CONFIG_POLL);

    loop {
        let wakeup_in = daemon
            .next_wakeup
            .map(|w| Duration::from_secs(w.at.saturating_sub(now()).max(0) as u64))
            .unwrap_or(Duration::from_secs(3600));
        tokio::select! {
            _ = tokio::time::sleep(wakeup_in), if daemon.next_wakeup.is_some() => {
                if let Some(w) = daemon.next_wakeup.take() {
                    daemon.wakeup(w).await;
                }
                daemon.plan_wakeup();
            }
            accepted = listener.accept() => {
                if let Ok((stream, _)) = accepted {
                    let requests = request_tx.clone();
                    tokio::spawn(async move {
                        let result = control::serve_one(stream, async move |request| {
                            let (tx, rx) = oneshot::channel();
                            if requests.send((request, tx)).await.is_err() {
                                return Answer::Refused { message: "the server is stopping".into() };
                            }
                            rx.await.unwrap_or(Answer::Refused { message: "the server is stopping".into() })
                        }).await;
                        if let Err(e) = result {
                            tracing::debug!(error = %e, "control connection failed");
                        }
                    });
                }
            }
            Some((request, reply)) = request_rx.recv() => {
                let answer = daemon.handle(request);
                let _ = reply.send(answer);
                daemon.start_jobs();
            }
            Some(finished) = done_rx.recv() => {
                daemon.finished(finished);
                daemon.start_jobs();
            }
            _ = hangup.recv() => daemon.reload(&load, "SIGHUP"),
            _ = poll.tick(), if config_dir.is_some() => {
                let now_print = config_dir.as_deref().map(config_fingerprint);
                if now_print != fingerprint {
                    fingerprint = now_print;
                    daemon.reload(&load, "a change of the config files");
                }
            }
            _ = terminate.recv() => break,
            _ = interrupt.recv() => break,
        }
    }

    daemon.log.line(format!(
        "stopping: {} running backup(s) asked to stop",
        daemon.running.len()
    ));
    for running in daemon.running.values() {
        running.cancel.cancel();
    }
    while !daemon.running.is_empty() {
        match done_rx.recv().await {
            Some(finished) => daemon.finished(finished),
            None => break,
        }
    }
    drop(listener);
    let _ = std::fs::remove_file(&socket_path);
    daemon.log.line("server stopped");
    Ok(())
}

/// The engine and the plugins the config names.
async fn load_plugins(config: &Config) -> Result<Arc<PluginCatalog>, ServeError> {
    let engine = PluginEngine::new(CompileCache::in_dir(config.cache_dir().join("compiled")))
        .map_err(|e| ServeError::Plugins(format!("{e:#}")))?;
    let catalog = PluginCatalog::load(
        engine,
        runtime_limits(config, None),
        config.plugin_dir().as_deref(),
    )
    .await
    .map_err(|e| ServeError::Plugins(e.to_string()))?;
    for problem in catalog.problems() {
        tracing::warn!("plugin not loaded: {}", problem.error);
    }
    Ok(Arc::new(catalog))
}

/// Names, sizes and modification times of the config files, to notice a change.
fn config_fingerprint(dir: &Path) -> Vec<(PathBuf, u64, Option<SystemTime>)> {
    let mut files = Vec::new();
    for folder in [dir.to_path_buf(), dir.join("hosts")] {
        let Ok(entries) = std::fs::read_dir(&folder) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "ron")
                && let Ok(meta) = entry.metadata()
            {
                files.push((path, meta.len(), meta.modified().ok()));
            }
        }
    }
    files.sort();
    files
}

fn now() -> UnixTime {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn kind_name(kind: BackupType) -> &'static str {
    match kind {
        BackupType::Full => "full",
        BackupType::Incremental => "incremental",
    }
}

/// The server's state, owned by the loop.
struct Daemon {
    config: Config,
    limits: ServerLimits,
    catalog: Arc<PluginCatalog>,
    pool: Pool,
    history: History,
    log: Arc<ServerLog>,
    queue: JobQueue,
    hosts: BTreeMap<String, HostHistory>,
    running: BTreeMap<String, Running>,
    done: mpsc::UnboundedSender<Finished>,
    started: UnixTime,
    next_wakeup: Option<Wakeup>,
    /// Delivers notifications in the background, when notifiers are configured.
    dispatcher: Option<Dispatcher>,
    /// What reminders were sent, durable.
    sent: SentRecord,
}

impl Daemon {
    fn new(
        config: Config,
        pool: Pool,
        catalog: Arc<PluginCatalog>,
        done: mpsc::UnboundedSender<Finished>,
    ) -> Daemon {
        let mut daemon = Daemon {
            limits: ServerLimits::of(&config),
            history: History::new(pool.dir()),
            log: Arc::new(ServerLog::new(pool.dir())),
            config,
            catalog,
            pool,
            queue: JobQueue::new(),
            hosts: BTreeMap::new(),
            running: BTreeMap::new(),
            done,
            started: now(),
            next_wakeup: None,
            dispatcher: None,
            sent: SentRecord::default(),
        };
        daemon.sent = SentRecord::open(daemon.pool.dir());
        daemon.start_notifications();
        daemon.load_histories();
        daemon.plan_wakeup();
        daemon
    }

    fn start_notifications(&mut self) {
        if self.config.notify_settings().notifiers.is_empty() {
            return;
        }
        match Notifiers::from_config(
            &self.config,
            self.catalog.clone(),
            runtime_limits(&self.config, None),
        ) {
            Ok(notifiers) => {
                let log = self.log.clone();
                self.dispatcher =
                    Some(Dispatcher::start(
                        Arc::new(notifiers),
                        move |notice, d| match &d.result {
                            Ok(()) => {
                                log.line(format!("notified via {}: {}", d.notifier, notice.subject))
                            }
                            Err(e) => log.line(format!(
                                "notification via {} failed after {} attempts: {}: {e}",
                                d.notifier, d.attempts, notice.subject
                            )),
                        },
                    ));
            }
            Err(e) => self.log.line(format!("notifications off: {e}")),
        }
    }

    fn tell(&self, notice: Notice) {
        if let Some(dispatcher) = &self.dispatcher {
            dispatcher.send(notice);
        }
    }

    /// Reminders of hosts not backed up for too long, or never.
    fn remind(&mut self, at: UnixTime) {
        if self.dispatcher.is_none() {
            return;
        }
        let hosts: Vec<_> = self
            .config
            .hosts()
            .filter_map(|name| {
                let host = self.config.host(name).ok()?;
                let last = self.hosts.get(name).and_then(|h| h.last_backup);
                Some((host, last))
            })
            .collect();
        let settings = self.config.notify_settings().clone();
        for notice in reminders(&hosts, &settings, &mut self.sent, at) {
            self.log.line(format!("reminder: {}", notice.subject));
            self.tell(notice);
        }
    }

    /// Each configured host's last complete backups, from the pool.
    fn load_histories(&mut self) {
        let names: Vec<String> = self.config.hosts().map(str::to_string).collect();
        for name in names {
            let entry = self.hosts.entry(name.clone()).or_default();
            match self.pool.snapshots(&name) {
                Ok(snapshots) => {
                    for s in snapshots.iter().filter(|s| !s.partial) {
                        entry.completed(s.backup_type, s.started.seconds);
                    }
                }
                Err(e) => {
                    tracing::warn!(host = %name, error = %e, "cannot read the host's backups")
                }
            }
        }
    }

    fn plan_wakeup(&mut self) {
        self.next_wakeup = next_wakeup(now(), &self.limits.wakeup_hours, &chrono::Local);
        if let Some(w) = self.next_wakeup {
            tracing::debug!(at = w.at, nightly = w.nightly, "next wakeup");
        }
    }

    fn disk_full(&self) -> bool {
        match disk::usage_percent(self.pool.dir()) {
            Ok(pct) => pct > self.limits.df_max_usage_pct,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the pool disk's usage");
                false
            }
        }
    }

    /// One wakeup: the nightly maintenance when it is the first of the day, then each
    /// scheduled host's decision.
    async fn wakeup(&mut self, wakeup: Wakeup) {
        if wakeup.nightly {
            self.nightly();
        }
        let at = now();
        let local = LocalTime::of(at, &chrono::Local);
        let disk_full = self.disk_full();
        let names: Vec<String> = self.config.hosts().map(str::to_string).collect();
        for name in names {
            let host = match self.config.host(&name) {
                Ok(host) => host,
                Err(e) => {
                    self.log.line(format!("host {name}: config problem: {e}"));
                    continue;
                }
            };
            let policy = SchedulePolicy::of(&host);
            if policy.backups != BackupMode::Scheduled {
                continue;
            }
            if self.running.contains_key(&name) || self.queue.waiting().any(|j| j.host == name) {
                continue;
            }
            let reach = reach::check(&host, self.config.ping_max_rtt()).await;
            let history = self.hosts.entry(name.clone()).or_default();
            history.observe(reach.reachable, &policy);
            let seen = Observation {
                reachable: reach.reachable,
                disk_full,
            };
            match decide(&policy, history, at, local, seen) {
                Decision::UpToDate => {}
                Decision::Run(kind) => {
                    let job = QueuedJob {
                        host: name.clone(),
                        kind,
                        origin: Origin::Scheduled,
                    };
                    if self.queue.enqueue(job).is_ok() {
                        self.log
                            .line(format!("host {name}: {} backup queued", kind_name(kind)));
                    }
                }
                Decision::Skipped(kind, why) => {
                    self.log.line(format!(
                        "host {name}: {} backup due, skipped: {}",
                        kind_name(kind),
                        why.describe()
                    ));
                    self.record(JobRecord {
                        host: name.clone(),
                        kind: kind_name(kind).into(),
                        origin: Origin::Scheduled,
                        started: at,
                        ended: at,
                        result: JobResult::Skipped,
                        number: None,
                        files: 0,
                        bytes: 0,
                        detail: why.describe().into(),
                    });
                }
            }
        }
        self.remind(at);
        if disk_full {
            let settings = self.config.notify_settings();
            let last = self.sent.last("", NoticeKind::DiskUsageHigh);
            let min_days = settings.email_notify_min_days.unwrap_or(2.5);
            if last.is_none_or(|t| ((at - t) as f64) >= min_days * 86_400.0) {
                self.sent.mark("", NoticeKind::DiskUsageHigh, at);
                self.tell(Notice {
                    kind: NoticeKind::DiskUsageHigh,
                    host: None,
                    time: at,
                    subject: format!("hoard: pool disk above {}%", self.limits.df_max_usage_pct),
                    body: "Scheduled backups are refused until space is freed (hoard expire, hoard gc, or a bigger disk).\n".into(),
                    recipients: admin_recipients(settings),
                    facts: vec![("df-max-usage-pct".into(), self.limits.df_max_usage_pct.to_string())],
                });
            }
        }
        self.start_jobs();
    }

    fn record(&self, record: JobRecord) {
        if let Err(e) = self.history.append(&record) {
            self.log
                .line(format!("host {}: cannot write history: {e}", record.host));
        }
    }

    /// Starts what the limits allow.
    fn start_jobs(&mut self) {
        let scheduled_allowed =
            !self.queue.waiting().any(|j| j.origin == Origin::Scheduled) || !self.disk_full();
        while let Some(job) = self.queue.start_next(&self.limits, scheduled_allowed) {
            self.spawn(job);
        }
    }

    fn spawn(&mut self, job: QueuedJob) {
        let started = now();
        let host = match self.config.host(&job.host) {
            Ok(host) => host,
            Err(e) => {
                let _ = self.done.send(Finished {
                    job,
                    started,
                    outcome: Err(format!("config: {e}")),
                });
                return;
            }
        };
        let prepared = transport_for(&self.config, &self.catalog, &host);
        let level = Some(match job.kind {
            BackupType::Full => BackupLevel::Full,
            BackupType::Incremental => BackupLevel::Incremental,
        });
        let plan = backup_plan(&host, level);
        let limits = runtime_limits(&self.config, Some(&host));
        let cancel = CancelFlag::default();
        let progress = Arc::new(Progress::default());
        self.running.insert(
            job.host.clone(),
            Running {
                job: job.clone(),
                started,
                cancel: cancel.clone(),
                progress: progress.clone(),
            },
        );
        self.log.line(format!(
            "host {}: {} backup started ({})",
            job.host,
            kind_name(job.kind),
            match job.origin {
                Origin::Scheduled => "scheduled",
                Origin::User => "requested",
            }
        ));
        let catalog = self.catalog.clone();
        let pool = self.pool.clone();
        let done = self.done.clone();
        // Each job runs on a thread of its own, as in the CLI. The plugin's sink calls may
        // wait for the pool writer, so they run under `block_in_place`: on a runtime worker
        // every such call hands the worker's scheduler to another thread, on a thread of its
        // own it costs nothing (the 1 GiB benchmark full: 7.8 s of server CPU instead of
        // 8.0 to 8.1 s). The job's I/O (the ssh session) stays on the workers.
        let runtime = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || {
            runtime.block_on(async move {
                let outcome = async {
                    let (transport, grant) = prepared.map_err(|e| e.to_string())?;
                    let client = client_for(&host).await.map_err(|e| e.to_string())?;
                    run_backup(
                        &plan,
                        BackupResources {
                            pool: &pool,
                            engine: catalog.engine(),
                            limits: &limits,
                            transport,
                            grant,
                            client,
                            progress,
                            cancel,
                        },
                    )
                    .await
                    .map_err(|e| e.to_string())
                }
                .await;
                let _ = done.send(Finished {
                    job,
                    started,
                    outcome,
                });
            })
        });
    }

    fn finished(&mut self, finished: Finished) {
        let Finished {
            job,
            started,
            outcome,
        } = finished;
        self.queue.finished(&job.host);
        self.running.remove(&job.host);
        let mut record = JobRecord {
            host: job.host.clone(),
            kind: kind_name(job.kind).into(),
            origin: job.origin,
            started,
            ended: now(),
            result: JobResult::Failed,
            number: None,
            files: 0,
            bytes: 0,
            detail: String::new(),
        };
        match outcome {
            Err(e) => record.detail = e,
            Ok(outcome) => {
                record.detail = outcome.failure.clone().unwrap_or_default();
                if let Some(snapshot) = &outcome.snapshot {
                    record.number = Some(snapshot.id.number);
                    record.files = snapshot.file_count;
                    record.bytes = snapshot.bytes;
                    record.kind = kind_name(snapshot.backup_type).into();
                    if snapshot.partial {
                        record.result = JobResult::Partial;
                    } else {
                        record.result = JobResult::Ok;
                        self.hosts
                            .entry(job.host.clone())
                            .or_default()
                            .completed(snapshot.backup_type, snapshot.started.seconds);
                    }
                }
            }
        }
        self.log.line(format!(
            "host {}: {} backup {}{}{}",
            job.host,
            record.kind,
            match record.result {
                JobResult::Ok => "done",
                JobResult::Partial => "partial",
                JobResult::Failed => "failed",
                JobResult::Skipped => "skipped",
            },
            record
                .number
                .map(|n| format!(" (#{n}, {} files)", record.files))
                .unwrap_or_default(),
            if record.detail.is_empty() {
                String::new()
            } else {
                format!(": {}", record.detail)
            }
        ));
        if record.result == JobResult::Failed
            && let Ok(host) = self.config.host(&job.host)
        {
            self.tell(failure(
                NoticeKind::BackupFailed,
                &host,
                self.config.notify_settings(),
                &record.detail,
                record.ended,
            ));
        }
        self.record(record);
    }

    /// The nightly maintenance, on its own thread: retention, GC, statistics, a sampled
    /// re-check of stored objects.
    fn nightly(&self) {
        let pool = self.pool.clone();
        let log = self.log.clone();
        let sample = self.config.server_settings().nightly_check_pct.unwrap_or(1);
        let policies: Vec<(String, RetentionPolicy)> = self
            .config
            .hosts()
            .filter_map(|name| {
                let host = self.config.host(name).ok()?;
                Some((name.to_string(), RetentionPolicy::of(&host)))
            })
            .collect();
        log.line("nightly maintenance started");
        let dispatcher = self.dispatcher.clone();
        let admin = admin_recipients(self.config.notify_settings());
        self.admin_summary();
        tokio::task::spawn_blocking(move || {
            let now = hoard_pool::Timestamp::now();
            for (host, policy) in &policies {
                match expire_host(&pool, host, policy, now, false) {
                    Ok(report) => {
                        for e in &report.expired {
                            log.line(format!(
                                "nightly: host {host}: backup #{} expired: {}",
                                e.number, e.reason
                            ));
                        }
                    }
                    Err(e) => log.line(format!("nightly: host {host}: retention failed: {e}")),
                }
            }
            match pool.gc(&GcOptions::default()) {
                Ok(r) => log.line(format!(
                    "nightly: gc swept {} objects ({} bytes), deleted {} packs",
                    r.swept_objects, r.swept_bytes, r.packs_deleted
                )),
                Err(e) => log.line(format!("nightly: gc failed: {e}")),
            }
            match pool.stats() {
                Ok(stats) => {
                    let path = pool.dir().join("stats.json");
                    let written = serde_json::to_vec_pretty(&stats)
                        .map_err(std::io::Error::other)
                        .and_then(|bytes| std::fs::write(&path, bytes));
                    match written {
                        Ok(()) => log.line(format!(
                            "nightly: pool statistics: {} packs, {} bytes",
                            stats.packs, stats.pack_bytes
                        )),
                        Err(e) => log.line(format!("nightly: cannot write statistics: {e}")),
                    }
                }
                Err(e) => log.line(format!("nightly: statistics failed: {e}")),
            }
            let options = FsckOptions {
                sample_percent: sample.min(100),
                check_snapshots: false,
            };
            match pool.fsck(&options) {
                Ok(r) if r.corrupt.is_empty() && r.missing.is_empty() => log.line(format!(
                    "nightly: re-checked {} objects ({sample}%): no damage",
                    r.objects_checked
                )),
                Ok(r) => {
                    let message = format!(
                        "nightly: re-check found damage: {} corrupt, {} missing objects",
                        r.corrupt.len(),
                        r.missing.len()
                    );
                    log.line(&message);
                    if let Some(dispatcher) = &dispatcher {
                        dispatcher.send(Notice {
                            kind: NoticeKind::PoolDamaged,
                            host: None,
                            time: now.seconds,
                            subject: "hoard: the pool is damaged".into(),
                            body: format!(
                                "{message}\nRun `hoard fsck` for the affected backups and paths.\n"
                            ),
                            recipients: admin.clone(),
                            facts: vec![
                                ("corrupt".into(), r.corrupt.len().to_string()),
                                ("missing".into(), r.missing.len().to_string()),
                            ],
                        });
                    }
                }
                Err(e) => log.line(format!("nightly: re-check failed: {e}")),
            }
        });
    }

    /// The admin's daily summary: failed backups of the last day and hosts without a recent
    /// backup; sent only when there is something to report.
    fn admin_summary(&self) {
        if self.dispatcher.is_none() {
            return;
        }
        let at = now();
        let settings = self.config.notify_settings();
        let old_days = settings.email_notify_old_backup_days.unwrap_or(7.0);
        let mut lines = Vec::new();
        let (mut failed, mut overdue) = (0, 0);
        for name in self.config.hosts() {
            let records = self.history.read(name).unwrap_or_default();
            for r in records
                .iter()
                .filter(|r| r.ended > at - 86_400 && r.result == JobResult::Failed)
            {
                failed += 1;
                lines.push(format!("{name}: {} backup failed: {}", r.kind, r.detail));
            }
            match self.hosts.get(name).and_then(|h| h.last_backup) {
                None => {
                    overdue += 1;
                    lines.push(format!("{name}: never backed up"));
                }
                Some(t) if (at - t) as f64 > old_days * 86_400.0 => {
                    overdue += 1;
                    lines.push(format!(
                        "{name}: last backup {:.1} days ago",
                        (at - t) as f64 / 86_400.0
                    ));
                }
                Some(_) => {}
            }
        }
        if lines.is_empty() {
            return;
        }
        self.tell(Notice {
            kind: NoticeKind::AdminSummary,
            host: None,
            time: at,
            subject: format!("hoard: {failed} failed backups, {overdue} hosts behind"),
            body: lines.join("\n") + "\n",
            recipients: admin_recipients(settings),
            facts: vec![
                ("failed-backups".into(), failed.to_string()),
                ("hosts-behind".into(), overdue.to_string()),
            ],
        });
    }

    fn reload(&mut self, load: &ConfigLoader, why: &str) {
        match load() {
            Ok(config) => {
                self.limits = ServerLimits::of(&config);
                self.config = config;
                self.load_histories();
                self.plan_wakeup();
                self.log.line(format!("config reloaded after {why}"));
            }
            Err(e) => self.log.line(format!(
                "config not reloaded after {why}; the config in force stays: {e}"
            )),
        }
    }

    fn handle(&mut self, request: Request) -> Answer {
        let refused = |message: String| Answer::Refused { message };
        match request {
            Request::Status => Answer::Status(self.status()),
            Request::Backup { host, full } => {
                let resolved = match self.config.host(&host) {
                    Ok(h) => h,
                    Err(e) => return refused(e.to_string()),
                };
                let policy = SchedulePolicy::of(&resolved);
                let history = self.hosts.get(&host).cloned().unwrap_or_default();
                let chosen = full.map(|f| {
                    if f {
                        BackupType::Full
                    } else {
                        BackupType::Incremental
                    }
                });
                let Some(kind) = requested(&policy, &history, now(), chosen) else {
                    return refused(format!("backups of {host} are off in its config"));
                };
                let job = QueuedJob {
                    host: host.clone(),
                    kind,
                    origin: Origin::User,
                };
                match self.queue.enqueue(job) {
                    Ok(()) => {
                        self.log
                            .line(format!("host {host}: {} backup requested", kind_name(kind)));
                        Answer::Done {
                            message: format!(
                                "{} backup of {host} queued in the server",
                                kind_name(kind)
                            ),
                        }
                    }
                    Err(e) => refused(e.to_string()),
                }
            }
            Request::Stop {
                host,
                backoff_hours,
            } => {
                let mut did = Vec::new();
                if let Some(running) = self.running.get(&host) {
                    running.cancel.cancel();
                    did.push("running backup asked to stop".to_string());
                }
                if self.queue.dequeue(&host).is_some() {
                    did.push("waiting backup dropped".to_string());
                }
                if backoff_hours > 0.0 {
                    let until = now() + (backoff_hours * 3600.0) as i64;
                    self.hosts.entry(host.clone()).or_default().backoff_until = Some(until);
                    did.push(format!("no scheduled backups for {backoff_hours} h"));
                }
                if did.is_empty() {
                    return refused(format!("{host} has no backup running or waiting"));
                }
                let message = format!("{host}: {}", did.join(", "));
                self.log.line(&message);
                Answer::Done { message }
            }
            Request::Dequeue { host } => match self.queue.dequeue(&host) {
                Some(job) => Answer::Done {
                    message: format!("{} backup of {host} dropped", kind_name(job.kind)),
                },
                None => refused(format!("{host} has no backup waiting")),
            },
        }
    }

    fn status(&self) -> ServerStatus {
        let hosts = self
            .config
            .hosts()
            .map(|name| {
                let history = self.hosts.get(name).cloned().unwrap_or_default();
                let last_event = self
                    .history
                    .read(name)
                    .ok()
                    .and_then(|records| records.into_iter().next_back())
                    .map(|r| {
                        let result = serde_json::to_value(r.result)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_string))
                            .unwrap_or_default();
                        if r.detail.is_empty() {
                            format!("{} {result}", r.kind)
                        } else {
                            format!("{} {result}: {}", r.kind, r.detail)
                        }
                    });
                HostState {
                    host: name.to_string(),
                    last_backup: history.last_backup,
                    last_full: history.last_full,
                    last_event,
                    backoff_until: history.backoff_until.filter(|t| *t > now()),
                }
            })
            .collect();
        ServerStatus {
            pid: std::process::id(),
            started: self.started,
            next_wakeup: self.next_wakeup.map(|w| w.at),
            running: self
                .running
                .values()
                .map(|r| RunningJob {
                    job: r.job.clone(),
                    started: r.started,
                    entries: r.progress.entries.load(Ordering::Relaxed),
                    bytes: r.progress.bytes.load(Ordering::Relaxed),
                })
                .collect(),
            waiting: self.queue.waiting().cloned().collect(),
            hosts,
        }
    }
}
