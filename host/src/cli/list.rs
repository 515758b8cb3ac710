//! `hoard list HOST`: a host's backups.

use clap::Args;

use super::Cli;
use super::backup::human_bytes;
use super::context::Context;
use super::output::outln;
use hoard_pool::BackupType;

/// Arguments of `hoard list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// The host.
    pub host: String,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs `hoard list`.
pub fn run(cli: &Cli, args: &ListArgs) -> anyhow::Result<()> {
    let context = Context::open(cli)?;
    let snapshots = context.pool.snapshots(&args.host)?;
    if args.json {
        let list: Vec<_> = snapshots
            .iter()
            .map(|s| {
                serde_json::json!({
                    "number": s.id.number,
                    "type": type_name(s.backup_type),
                    "started": s.started.seconds,
                    "ended": s.ended.seconds,
                    "duration": s.ended.seconds - s.started.seconds,
                    "files": s.file_count,
                    "bytes": s.bytes,
                    "new_bytes": s.new_bytes,
                    "errors": s.errors,
                    "status": status(s),
                    "keep": s.keep,
                    "comment": s.comment,
                })
            })
            .collect();
        outln!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(());
    }
    if snapshots.is_empty() {
        outln!("{}: no backups", args.host);
        return Ok(());
    }
    outln!(
        "{:>4} {:<5} {:<20} {:>8} {:>9} {:>10} {:>10} STATUS",
        "#",
        "TYPE",
        "START",
        "DURATION",
        "FILES",
        "BYTES",
        "NEW"
    );
    for s in &snapshots {
        outln!(
            "{:>4} {:<5} {:<20} {:>7}s {:>9} {:>10} {:>10} {}",
            s.id.number,
            type_name(s.backup_type),
            format_time(s.started.seconds),
            s.ended.seconds - s.started.seconds,
            s.file_count,
            human_bytes(s.bytes),
            human_bytes(s.new_bytes),
            status(s)
        );
    }
    Ok(())
}

fn type_name(t: BackupType) -> &'static str {
    match t {
        BackupType::Full => "full",
        BackupType::Incremental => "incr",
    }
}

fn status(s: &hoard_pool::SnapshotInfo) -> String {
    let mut status = if s.partial {
        "partial".to_string()
    } else {
        "ok".to_string()
    };
    if s.errors > 0 {
        status.push_str(&format!(" ({} errors)", s.errors));
    }
    if s.keep {
        status.push_str(" keep");
    }
    status
}

/// UTC `YYYY-MM-DD HH:MM:SS`.
pub fn format_time(seconds: i64) -> String {
    let days = seconds.div_euclid(86_400);
    let rest = seconds.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm, public domain).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}
