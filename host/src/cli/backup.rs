//! `hoard backup HOST [--full|--incr]`: a backup in the foreground, with a progress bar and
//! a summary.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::bail;
use clap::Args;

use super::Cli;
use super::context::{Context, backup_plan, client_for, load_config};
use super::output::outln;
use crate::job::backup::{BackupResources, run_backup};
use crate::plugin::bindings::BackupLevel;
use crate::plugin::state::{CancelFlag, Progress};
use crate::server::control::{Answer, ControlError, Request, ask};

/// Arguments of `hoard backup`.
#[derive(Debug, Args)]
pub struct BackupArgs {
    /// The host, as named by its file in `hosts/`.
    pub host: String,
    /// A full backup, whatever the schedule says.
    #[arg(long, conflicts_with = "incr")]
    pub full: bool,
    /// An incremental backup (a full when there is nothing to be incremental to).
    #[arg(long)]
    pub incr: bool,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
    /// Run here even when a server runs (which then holds the pool, so this fails).
    #[arg(long)]
    pub foreground: bool,
}

/// Runs `hoard backup`.
pub async fn run(cli: &Cli, args: &BackupArgs) -> anyhow::Result<()> {
    if !args.foreground && queued_in_server(cli, args).await? {
        return Ok(());
    }
    let context = Context::open(cli)?;
    let host = context.host(&args.host)?;
    let catalog = Arc::new(context.catalog().await?);
    let (transport, grant) = context.transport(&catalog, &host)?;
    let client = client_for(&host).await?;
    let level = match (args.full, args.incr) {
        (true, _) => Some(BackupLevel::Full),
        (_, true) => Some(BackupLevel::Incremental),
        _ => None,
    };
    let plan = backup_plan(&host, level);
    let progress = Arc::new(Progress::default());
    let cancel = CancelFlag::default();
    let limits = context.limits(Some(&host));
    let started = Instant::now();

    let bar = progress_bar(&args.host, progress.clone(), args.json);
    let interrupt = {
        let cancel = cancel.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("interrupted: stopping the backup");
                cancel.cancel();
            }
        })
    };
    let outcome = run_backup(
        &plan,
        BackupResources {
            pool: &context.pool,
            engine: catalog.engine(),
            limits: &limits,
            transport,
            grant,
            client,
            progress: progress.clone(),
            cancel,
        },
    )
    .await;
    interrupt.abort();
    bar.abort();
    let outcome = outcome?;
    let elapsed = started.elapsed();

    if args.json {
        let summary = serde_json::json!({
            "host": args.host,
            "level": if outcome.level == BackupLevel::Full { "full" } else { "incremental" },
            "number": outcome.snapshot.as_ref().map(|s| s.id.number),
            "files": outcome.snapshot.as_ref().map(|s| s.file_count),
            "bytes": outcome.snapshot.as_ref().map(|s| s.bytes),
            "new_bytes": outcome.snapshot.as_ref().map(|s| s.new_bytes),
            "partial": outcome.snapshot.as_ref().map(|s| s.partial),
            "errors": outcome.snapshot.as_ref().map(|s| s.errors),
            "seconds": elapsed.as_secs_f64(),
            "failure": outcome.failure,
        });
        outln!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        eprint!("\r\x1b[2K");
        for line in outcome
            .log
            .lines()
            .iter()
            .filter(|l| l.level >= crate::plugin::state::LogLevel::Warning)
        {
            eprintln!("{:?}: {}", line.level, line.message);
        }
        match &outcome.snapshot {
            Some(s) => outln!(
                "{} backup #{} of {}: {} files, {} ({} new), {} errors{} in {:.1} s",
                if outcome.level == BackupLevel::Full {
                    "full"
                } else {
                    "incremental"
                },
                s.id.number,
                args.host,
                s.file_count,
                human_bytes(s.bytes),
                human_bytes(s.new_bytes),
                s.errors,
                if s.partial { ", partial" } else { "" },
                elapsed.as_secs_f64()
            ),
            None => outln!("backup of {} recorded nothing", args.host),
        }
    }
    if let Some(failure) = outcome.failure {
        let notice = crate::notify::notice::failure(
            crate::notify::NoticeKind::BackupFailed,
            &host,
            context.config.notify_settings(),
            &failure,
            chrono::Utc::now().timestamp(),
        );
        crate::notify::deliver::tell(&context.config, catalog.clone(), limits.clone(), notice)
            .await;
        bail!("backup of {}: {failure}", args.host);
    }
    Ok(())
}

/// Queues the backup into the running server, if one answers; `false` when none runs.
async fn queued_in_server(cli: &Cli, args: &BackupArgs) -> anyhow::Result<bool> {
    let config = load_config(cli)?;
    let full = match (args.full, args.incr) {
        (true, _) => Some(true),
        (_, true) => Some(false),
        _ => None,
    };
    let request = Request::Backup {
        host: args.host.clone(),
        full,
    };
    match ask(&config.control_socket(), &request).await {
        Ok(Answer::Done { message }) => {
            outln!("{message} (see `hoard status`)");
            Ok(true)
        }
        Ok(Answer::Refused { message }) => bail!("{message}"),
        Ok(Answer::Status(_)) => bail!("the server answered with its status"),
        Err(ControlError::NotRunning(_)) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// A live line of files and bytes, on a terminal only.
fn progress_bar(host: &str, progress: Arc<Progress>, quiet: bool) -> tokio::task::JoinHandle<()> {
    use std::io::IsTerminal;
    let host = host.to_string();
    tokio::spawn(async move {
        if quiet || !std::io::stderr().is_terminal() {
            return;
        }
        let bar = indicatif::ProgressBar::new_spinner();
        bar.enable_steady_tick(Duration::from_millis(120));
        let started = Instant::now();
        loop {
            let entries = progress.entries.load(Ordering::Relaxed);
            let bytes = progress.bytes.load(Ordering::Relaxed);
            let rate = bytes as f64 / started.elapsed().as_secs_f64().max(0.001);
            bar.set_message(format!(
                "{host}: {entries} entries, {} ({}/s)",
                human_bytes(bytes),
                human_bytes(rate as u64)
            ));
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
}

/// `1.5 GiB`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}
