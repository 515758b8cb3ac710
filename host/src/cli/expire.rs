//! `hoard expire [HOST...] [--dry-run] [--json]`: applies each host's retention policy now
//! and prints what was removed (or would be) and by which rule. `hoard gc` then reclaims
//! the space.

use clap::Args;

use super::Cli;
use super::context::Context;
use super::output::outln;
use crate::retention::{RetentionPolicy, expire_host};

/// Arguments of `hoard expire`.
#[derive(Debug, Args)]
pub struct ExpireArgs {
    /// The hosts; every configured host when none is given.
    pub hosts: Vec<String>,
    /// Only print what would be removed.
    #[arg(long)]
    pub dry_run: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs `hoard expire`.
pub fn run(cli: &Cli, args: &ExpireArgs) -> anyhow::Result<()> {
    let context = Context::open(cli)?;
    let hosts: Vec<String> = if args.hosts.is_empty() {
        context.config.hosts().map(str::to_string).collect()
    } else {
        args.hosts.clone()
    };
    let now = hoard_pool::Timestamp::now();
    let mut reports = Vec::new();
    for host in &hosts {
        let policy = RetentionPolicy::of(&context.host(host)?);
        reports.push(expire_host(
            &context.pool,
            host,
            &policy,
            now,
            args.dry_run,
        )?);
    }
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&reports)?);
        return Ok(());
    }
    for report in &reports {
        let verb = if report.dry_run {
            "would remove"
        } else {
            "removed"
        };
        if report.expired.is_empty() {
            outln!(
                "{}: nothing expires ({} backups)",
                report.host,
                report.before
            );
        }
        for e in &report.expired {
            outln!(
                "{}: {verb} #{} ({}, {}): {}",
                report.host,
                e.number,
                e.kind,
                super::list::format_time(e.started),
                e.reason
            );
        }
    }
    Ok(())
}
