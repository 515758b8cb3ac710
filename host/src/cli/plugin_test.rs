//! `hoard plugin test PLUGIN [--peer ssh|rsyncd|smb|nfs]`: runs the conformance kit on a
//! transport plugin, prints each case as it ends, writes the JSON report, and fails when a
//! case failed.

use std::path::PathBuf;

use anyhow::{Context as _, bail};
use clap::Args;
use hoard_conformance::fixture::FixtureOptions;
use hoard_conformance::runner::{self, PeerKind, PluginUnderTest, RunOptions};

use crate::config::Config;
use crate::config::units::ConfigDuration;

use super::output::outln;

/// Width of the case column.
const CASE_WIDTH: usize = 32;

/// Arguments of `hoard plugin test`.
#[derive(Debug, Args)]
pub struct TestArgs {
    /// A `.wasm` component file, or the name of a built-in plugin (`tar`).
    pub plugin: String,
    /// The real server to run against: ssh, rsyncd, smb or nfs.
    #[arg(long, default_value = "ssh", value_parser = parse_peer)]
    pub peer: PeerKind,
    /// Where the JSON report goes (default: `hoard-conformance-NAME-PEER.json` here).
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Keep the work folder (pool, config, fixture, restores) in this folder.
    #[arg(long)]
    pub keep: Option<PathBuf>,
    /// A smaller fixture (200 entries instead of 20,000, a 4 MiB large file) for a quick run.
    #[arg(long)]
    pub compact: bool,
    /// The longest one backup or restore may run.
    #[arg(long, default_value = "10m")]
    pub command_limit: ConfigDuration,
}

fn parse_peer(text: &str) -> Result<PeerKind, String> {
    text.parse()
}

/// Runs the kit.
pub async fn run(config: &Config, args: &TestArgs) -> anyhow::Result<()> {
    let plugin = if args.plugin.ends_with(".wasm") || args.plugin.contains('/') {
        let path = PathBuf::from(&args.plugin);
        if !path.is_file() {
            bail!("{}: no such component file", path.display());
        }
        PluginUnderTest::File(std::fs::canonicalize(&path)?)
    } else {
        PluginUnderTest::BuiltIn(args.plugin.clone())
    };
    let options = RunOptions {
        hoard: std::env::current_exe().context("find the hoard binary")?,
        plugin,
        peer: args.peer,
        cache_dir: config.cache_dir(),
        fixture: if args.compact {
            FixtureOptions::COMPACT
        } else {
            FixtureOptions::KIT
        },
        keep_in: args.keep.clone(),
        command_limit: args.command_limit.get(),
    };
    outln!(
        "{:<CASE_WIDTH$}  {:<6} {:>7}  DETAIL",
        "CASE",
        "RESULT",
        "SECONDS"
    );
    let report = tokio::task::spawn_blocking(move || {
        runner::certify(&options, &mut |case| {
            outln!("{}", runner::row(case, CASE_WIDTH));
        })
    })
    .await??;
    let (pass, fail, na) = report.counts();
    outln!(
        "{} {} against {}: {pass} passed, {fail} failed, {na} not applicable",
        report.plugin.name,
        report.plugin.version,
        report.peer
    );
    let path = args.report.clone().unwrap_or_else(|| {
        PathBuf::from(format!(
            "hoard-conformance-{}-{}.json",
            report.plugin.name, report.peer
        ))
    });
    report
        .write_json(&path)
        .with_context(|| format!("write the report {}", path.display()))?;
    outln!("report: {}", path.display());
    if !report.passed() {
        bail!("{fail} conformance cases failed");
    }
    Ok(())
}
