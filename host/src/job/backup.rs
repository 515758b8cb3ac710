//! One backup of one host: choose full or incremental and the reference, run the transport
//! plugin once per share into one pool snapshot, commit it (partial when a share failed after
//! storing something), and keep the job's log beside the pool.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use hoard_pool::{BackupType, CommitInfo, Pool, SnapshotInfo, SnapshotWriter, Timestamp};

use super::log_store::JobLogStore;
use super::share::{ShareSink, ShareSource};
use super::{PoolSink, PoolSource};
use crate::client::ClientConnector;
use crate::hooks::{self, HookVars, Hooks};
use crate::plugin::bindings::{BackupJob, BackupLevel, Setting};
use crate::plugin::imports::sink::BackupSink;
use crate::plugin::imports::snapshot::SnapshotSource;
use crate::plugin::state::{CancelFlag, JobLog, LogLevel, Progress};
use crate::plugin::{CapabilityGrant, JobContext, LoadedPlugin, PluginEngine, RuntimeLimits};

/// One share to back up.
#[derive(Debug, Clone)]
pub struct SharePlan {
    /// Its path (or name, for SMB) on the client.
    pub path: Vec<u8>,
    /// Paths under it to back up; empty for all.
    pub includes: Vec<Vec<u8>>,
    /// Patterns to leave out.
    pub excludes: Vec<Vec<u8>>,
}

/// What to back up, from the host's config.
#[derive(Debug, Clone)]
pub struct BackupPlan {
    /// The host's name.
    pub host: String,
    /// Its address.
    pub address: String,
    /// Its shares, in order.
    pub shares: Vec<SharePlan>,
    /// Stay on one file system per share.
    pub one_file_system: bool,
    /// Plugin settings from the config.
    pub settings: Vec<(String, String)>,
    /// `Some` to force full or incremental; `None` chooses (incremental when there is a
    /// reference and the plugin can do it).
    pub level: Option<BackupLevel>,
    /// Commands run before and after the backup and each share.
    pub hooks: Hooks,
    /// Wall-time limit of each hook command.
    pub hook_limit: std::time::Duration,
}

/// What a backup needs beyond its plan.
pub struct BackupResources<'a> {
    /// The pool.
    pub pool: &'a Pool,
    /// The plugin engine.
    pub engine: &'a PluginEngine,
    /// Limits for the plugin.
    pub limits: &'a RuntimeLimits,
    /// The transport.
    pub transport: Arc<LoadedPlugin>,
    /// What the config grants it for this host.
    pub grant: CapabilityGrant,
    /// How to reach the client.
    pub client: Arc<dyn ClientConnector>,
    /// Live progress, for a bar or the web UI.
    pub progress: Arc<Progress>,
    /// Cancellation.
    pub cancel: CancelFlag,
}

/// How a backup ended.
#[derive(Debug)]
pub struct BackupOutcome {
    /// The committed snapshot, if one was committed.
    pub snapshot: Option<SnapshotInfo>,
    /// Full or incremental.
    pub level: BackupLevel,
    /// Why it failed (no snapshot, or a partial one).
    pub failure: Option<String>,
    /// Entries and bytes the plugin reported.
    pub entries: u64,
    /// Content bytes moved.
    pub bytes: u64,
    /// The job log.
    pub log: JobLog,
}

/// Why a backup could not start.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// The pool refused.
    #[error("pool: {0}")]
    Pool(#[from] hoard_pool::PoolError),
    /// The writer thread could not start.
    #[error("cannot start the pool writer: {0}")]
    Thread(#[from] std::io::Error),
}

/// Runs one backup to the end.
pub async fn run_backup(
    plan: &BackupPlan,
    resources: BackupResources<'_>,
) -> Result<BackupOutcome, BackupError> {
    let log = JobLog::default();
    let plugin_name = resources.transport.info.name.clone();
    let note = |level, message: String| log.push(&plugin_name, level, message);
    let pool = resources.pool;

    let reference_info = pool.latest(&plan.host)?;
    let supports_incremental = resources.transport.info.features.incremental;
    let level = match (plan.level, &reference_info) {
        (Some(BackupLevel::Incremental), None) => {
            note(
                LogLevel::Warning,
                "no earlier backup to be incremental to: running a full".into(),
            );
            BackupLevel::Full
        }
        (Some(BackupLevel::Incremental), Some(_)) if !supports_incremental => {
            note(
                LogLevel::Warning,
                format!("transport {plugin_name} cannot do incrementals: running a full"),
            );
            BackupLevel::Full
        }
        (Some(level), _) => level,
        (None, Some(_)) if supports_incremental => BackupLevel::Incremental,
        (None, _) => BackupLevel::Full,
    };
    let backup_type = match level {
        BackupLevel::Full => BackupType::Full,
        BackupLevel::Incremental => BackupType::Incremental,
    };
    let vars = |share: &[u8], xfer_ok: Option<bool>| HookVars {
        host: plan.host.clone(),
        share: String::from_utf8_lossy(share).into_owned(),
        kind: match level {
            BackupLevel::Full => "full".into(),
            BackupLevel::Incremental => "incr".into(),
        },
        xfer_ok,
    };
    if let Err(e) = run_hook(plan, plan.hooks.backup_pre.as_ref(), vars(b"", None), &log).await {
        save_log(pool, &plan.host, None, &log);
        return Ok(BackupOutcome {
            snapshot: None,
            level,
            failure: Some(e),
            entries: 0,
            bytes: 0,
            log,
        });
    }
    let reference_id = reference_info.as_ref().map(|i| i.id.clone());
    let reference: Option<Arc<dyn SnapshotSource>> = match &reference_id {
        Some(id) => Some(Arc::new(PoolSource::new(pool.snapshot(id)?))),
        None => None,
    };
    let writer: SnapshotWriter =
        pool.begin_snapshot(&plan.host, backup_type, reference_id.as_ref())?;
    let started = writer.started();
    note(
        LogLevel::Info,
        format!(
            "{} backup of {} with {plugin_name}{}",
            if level == BackupLevel::Full {
                "full"
            } else {
                "incremental"
            },
            plan.host,
            reference_id
                .as_ref()
                .map(|r| format!(", reference #{}", r.number))
                .unwrap_or_default()
        ),
    );
    let mut sink: Box<dyn BackupSink> = Box::new(PoolSink::new(writer)?);

    let mut settings: Vec<Setting> = plan
        .settings
        .iter()
        .map(|(name, value)| Setting {
            name: name.clone(),
            value: value.clone(),
        })
        .collect();
    if let Some(info) = &reference_info {
        settings.push(Setting {
            name: "reference-started".into(),
            value: info.started.seconds.to_string(),
        });
    }

    let (mut entries, mut bytes, mut errors, mut partial) = (0u64, 0u64, 0u64, false);
    let mut failure = None;
    for share in &plan.shares {
        if resources.cancel.is_cancelled() {
            failure = Some("cancelled".to_string());
            partial = true;
            break;
        }
        if let Err(e) = run_hook(
            plan,
            plan.hooks.share_pre.as_ref(),
            vars(&share.path, None),
            &log,
        )
        .await
        {
            failure = Some(format!(
                "share {}: {e}",
                String::from_utf8_lossy(&share.path)
            ));
            partial = true;
            break;
        }
        let job = BackupJob {
            host: plan.host.clone(),
            address: plan.address.clone(),
            share: share.path.clone(),
            level,
            has_reference: reference.is_some(),
            includes: share.includes.clone(),
            excludes: share.excludes.clone(),
            one_file_system: plan.one_file_system,
            settings: settings.clone(),
        };
        let context = JobContext {
            host: plan.host.clone(),
            grant: resources.grant.clone(),
            client: Some(resources.client.clone()),
            sink: Some(Box::new(ShareSink::new(&share.path, sink))),
            reference: reference.as_ref().map(|r| {
                Arc::new(ShareSource::new(&share.path, r.clone())) as Arc<dyn SnapshotSource>
            }),
            log: log.clone(),
            progress: resources.progress.clone(),
            cancel: resources.cancel.clone(),
            ..JobContext::default()
        };
        let share_name = String::from_utf8_lossy(&share.path).into_owned();
        let run = resources
            .transport
            .backup(resources.engine, resources.limits, job, context)
            .await;
        sink = match run.sink.map(|s| s.into_any().downcast::<ShareSink>()) {
            Some(Ok(share_sink)) => share_sink.into_inner(),
            _ => {
                failure = Some(format!("share {share_name}: the sink was lost"));
                return Ok(BackupOutcome {
                    snapshot: None,
                    level,
                    failure,
                    entries,
                    bytes,
                    log,
                });
            }
        };
        let share_ok = run.result.is_ok();
        if let Err(e) = run_hook(
            plan,
            plan.hooks.share_post.as_ref(),
            vars(&share.path, Some(share_ok)),
            &log,
        )
        .await
        {
            failure.get_or_insert(format!("share {share_name}: {e}"));
            partial = true;
        }
        match run.result {
            Ok(summary) => {
                entries += summary.entries;
                bytes += summary.bytes;
                errors += summary.errors;
                partial |= summary.partial;
            }
            Err(e) => {
                errors += 1;
                partial = true;
                failure = Some(format!("share {share_name}: {e}"));
                break;
            }
        }
    }

    if let Err(e) = run_hook(
        plan,
        plan.hooks.backup_post.as_ref(),
        vars(b"", Some(failure.is_none())),
        &log,
    )
    .await
    {
        failure.get_or_insert(e);
        partial = true;
    }
    let stored = resources.progress.entries.load(Ordering::Relaxed);
    if failure.is_some() && stored == 0 {
        note(
            LogLevel::Error,
            "nothing was stored: no backup recorded".into(),
        );
        drop(sink);
        save_log(pool, &plan.host, None, &log);
        return Ok(BackupOutcome {
            snapshot: None,
            level,
            failure,
            entries,
            bytes,
            log,
        });
    }
    let pool_sink = match sink.into_any().downcast::<PoolSink>() {
        Ok(pool_sink) => pool_sink,
        Err(_) => {
            return Ok(BackupOutcome {
                snapshot: None,
                level,
                failure: Some("the pool sink was lost".into()),
                entries,
                bytes,
                log,
            });
        }
    };
    let commit = CommitInfo {
        ended: Some(Timestamp::now()),
        errors,
        partial,
        comment: failure.clone().unwrap_or_default(),
        keep: false,
    };
    let snapshot = match tokio::task::block_in_place(|| pool_sink.commit(commit)) {
        Ok(info) => Some(info),
        Err(e) => {
            failure = Some(format!("commit: {e}"));
            None
        }
    };
    if let Some(info) = &snapshot {
        let seconds = info.ended.seconds - started.seconds;
        note(
            LogLevel::Info,
            format!(
                "backup #{} committed: {} files, {} bytes ({} new) in {seconds} s{}",
                info.id.number,
                info.file_count,
                info.bytes,
                info.new_bytes,
                if info.partial { ", partial" } else { "" }
            ),
        );
    }
    save_log(
        pool,
        &plan.host,
        snapshot.as_ref().map(|s| s.id.number),
        &log,
    );
    Ok(BackupOutcome {
        snapshot,
        level,
        failure,
        entries,
        bytes,
        log,
    })
}

/// Runs one hook, its output into the job log; `Err` only when it failed and the host's
/// hooks check status.
async fn run_hook(
    plan: &BackupPlan,
    argv: Option<&Vec<String>>,
    vars: HookVars,
    log: &JobLog,
) -> Result<(), String> {
    let Some(argv) = argv else {
        return Ok(());
    };
    let ran = hooks::run(argv, &vars, plan.hook_limit).await;
    for line in &ran.output {
        log.push("hook", LogLevel::Info, line.clone());
    }
    match ran.result {
        Ok(()) => Ok(()),
        Err(e) if plan.hooks.check_status => {
            log.push("hook", LogLevel::Error, e.to_string());
            Err(e.to_string())
        }
        Err(e) => {
            log.push(
                "hook",
                LogLevel::Warning,
                format!("{e} (ignored: hooks.check_status is off)"),
            );
            Ok(())
        }
    }
}

fn save_log(pool: &Pool, host: &str, number: Option<u64>, log: &JobLog) {
    if let Err(e) = JobLogStore::new(pool.dir()).save(host, number, &log.lines()) {
        tracing::error!("cannot save the job log of {host}: {e}");
    }
}
