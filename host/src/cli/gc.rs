//! `hoard gc [--dry-run] [--json]` and `hoard fsck [--sample PCT] [--json]`: the pool's
//! garbage collection and consistency check, by hand (the server runs both nightly).

use clap::Args;
use hoard_pool::{FsckOptions, GcOptions};

use super::Cli;
use super::backup::human_bytes;
use super::context::Context;
use super::output::outln;

/// Arguments of `hoard gc`.
#[derive(Debug, Args)]
pub struct GcArgs {
    /// Only report what would be reclaimed.
    #[arg(long)]
    pub dry_run: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `hoard fsck`.
#[derive(Debug, Args)]
pub struct FsckArgs {
    /// Percentage of objects to re-read and re-hash.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u8).range(0..=100))]
    pub sample: u8,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs `hoard gc`.
pub fn gc(cli: &Cli, args: &GcArgs) -> anyhow::Result<()> {
    let context = Context::open(cli)?;
    let report = context.pool.gc(&GcOptions {
        dry_run: args.dry_run,
        ..GcOptions::default()
    })?;
    if args.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "dry_run": args.dry_run,
                "snapshots": report.snapshots,
                "live_objects": report.live_objects,
                "swept_objects": report.swept_objects,
                "swept_bytes": report.swept_bytes,
                "packs_deleted": report.packs_deleted,
            }))?
        );
    } else {
        outln!(
            "{} {} objects ({}), {} packs deleted; {} live objects in {} backups",
            if args.dry_run { "would sweep" } else { "swept" },
            report.swept_objects,
            human_bytes(report.swept_bytes),
            report.packs_deleted,
            report.live_objects,
            report.snapshots
        );
    }
    Ok(())
}

/// Runs `hoard fsck`; fails when it finds damage.
pub fn fsck(cli: &Cli, args: &FsckArgs) -> anyhow::Result<()> {
    let context = Context::open(cli)?;
    let report = context.pool.fsck(&FsckOptions {
        sample_percent: args.sample,
        check_snapshots: true,
    })?;
    let damaged = !report.corrupt.is_empty()
        || !report.missing.is_empty()
        || !report.damaged_snapshots.is_empty()
        || !report.catalog_errors.is_empty();
    if args.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "objects_checked": report.objects_checked,
                "bytes_checked": report.bytes_checked,
                "snapshots_checked": report.snapshots_checked,
                "corrupt": report.corrupt.len(),
                "missing": report.missing.len(),
                "damaged_snapshots": report.damaged_snapshots.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
                "catalog_errors": report.catalog_errors,
                "unreferenced_objects": report.unreferenced_objects,
            }))?
        );
    } else {
        outln!(
            "checked {} objects ({}), {} backups: {} corrupt, {} missing, {} damaged backups",
            report.objects_checked,
            human_bytes(report.bytes_checked),
            report.snapshots_checked,
            report.corrupt.len(),
            report.missing.len(),
            report.damaged_snapshots.len()
        );
        for path in &report.damaged_paths {
            outln!("  damaged: {path:?}");
        }
    }
    if damaged {
        anyhow::bail!("the pool is damaged");
    }
    Ok(())
}
