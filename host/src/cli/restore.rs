//! `hoard restore HOST[:N] PATH (--to DIR | --to-host HOST[:PATH] | --tar FILE|-)`.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{anyhow, bail};
use clap::Args;

use super::Cli;
use super::context::{Context, HostSpec, client_for};
use crate::hooks::HookVars;
use crate::job::archive_tar::write_tar;
use crate::job::restore_local::restore_to_directory;
use crate::job::restore_remote::{RemoteRestore, restore_to_client};
use crate::job::share::share_prefix;
use crate::plugin::state::Progress;

/// Arguments of `hoard restore`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["to", "to_host", "tar"])))]
pub struct RestoreArgs {
    /// `HOST` (latest backup) or `HOST:N`.
    pub spec: HostSpec,
    /// What to restore, as a path on the client (`/` for everything).
    pub path: String,
    /// Into this directory of the server (created if missing; nothing is written outside it).
    #[arg(long)]
    pub to: Option<PathBuf>,
    /// To a client through its transport: `HOST` (the original place) or `HOST:DIR`.
    #[arg(long = "to-host")]
    pub to_host: Option<String>,
    /// As a tar stream into FILE, or `-` for standard output.
    #[arg(long)]
    pub tar: Option<String>,
}

/// Runs `hoard restore`.
pub async fn run(cli: &Cli, args: &RestoreArgs) -> anyhow::Result<()> {
    let context = Context::open(cli)?;
    let id = context.resolve_spec(&args.spec)?;
    let reader = context.pool.snapshot(&id)?;
    let source = args
        .path
        .trim_start_matches('/')
        .trim_end_matches('/')
        .as_bytes()
        .to_vec();
    if reader.lookup(&source)?.is_none() {
        bail!(
            "{} is not in backup #{} of {}",
            args.path,
            id.number,
            id.host
        );
    }
    if let Some(dir) = &args.to {
        let summary = tokio::task::block_in_place(|| {
            restore_to_directory(&reader, &source, dir, |problem| {
                eprintln!("warning: {problem}")
            })
        })?;
        eprintln!(
            "restored {} entries, {} bytes of {}:{} into {}{}",
            summary.entries,
            summary.bytes,
            id.host,
            args.path,
            dir.display(),
            if summary.errors > 0 {
                format!(", {} errors", summary.errors)
            } else {
                String::new()
            }
        );
        if summary.errors > 0 {
            bail!("{} entries could not be restored", summary.errors);
        }
        return Ok(());
    }
    if let Some(file) = &args.tar {
        let summary = if file == "-" {
            let stdout = std::io::stdout().lock();
            tokio::task::block_in_place(|| {
                write_tar(&reader, &source, std::io::BufWriter::new(stdout))
            })?
        } else {
            let out = std::fs::File::create(file).map_err(|e| anyhow!("{file}: {e}"))?;
            tokio::task::block_in_place(|| {
                write_tar(&reader, &source, std::io::BufWriter::new(out))
            })?
        };
        eprintln!(
            "wrote {} entries, {} bytes as tar",
            summary.entries, summary.bytes
        );
        return Ok(());
    }
    let Some(to_host) = &args.to_host else {
        bail!("say where to restore: --to DIR, --to-host HOST[:DIR] or --tar FILE");
    };
    let (target_name, target_dir) = match to_host.split_once(':') {
        Some((h, d)) => (h.to_string(), Some(d.to_string())),
        None => (to_host.clone(), None),
    };
    let origin = context.host(&id.host)?;
    let share = origin
        .shares
        .iter()
        .map(|s| s.as_os_str().as_encoded_bytes().to_vec())
        .filter(|s| {
            let prefix = share_prefix(s);
            prefix.is_empty()
                || source == prefix
                || source.starts_with(&[prefix.as_slice(), b"/"].concat())
        })
        .max_by_key(|s| share_prefix(s).len())
        .ok_or_else(|| anyhow!("{} is in none of {}'s shares", args.path, id.host))?;
    let prefix = share_prefix(&share);
    let inside = source.strip_prefix(prefix.as_slice()).unwrap_or(&source);
    let inside = inside.strip_prefix(b"/").unwrap_or(inside).to_vec();
    let target = context.host(&target_name)?;
    let catalog = Arc::new(context.catalog().await?);
    let (transport, grant) = context.transport(&catalog, &target)?;
    let client = client_for(&target).await?;
    let request = RemoteRestore {
        host: target.name.clone(),
        address: target.address.clone(),
        share: share.clone(),
        source: inside,
        destination: target_dir.map(String::into_bytes).unwrap_or(share),
        settings: target
            .plugin_settings
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    };
    let limits = context.limits(Some(&target));
    let vars = |xfer_ok| HookVars {
        host: target.name.clone(),
        share: String::from_utf8_lossy(&request.destination).into_owned(),
        kind: "restore".into(),
        xfer_ok,
    };
    restore_hook(&target, target.hooks.restore_pre.as_ref(), vars(None)).await?;
    let (result, log) = restore_to_client(
        &request,
        reader,
        catalog.engine(),
        &limits,
        transport,
        grant,
        client,
        Arc::new(Progress::default()),
    )
    .await;
    for line in log
        .lines()
        .iter()
        .filter(|l| l.level >= crate::plugin::state::LogLevel::Warning)
    {
        eprintln!("{:?}: {}", line.level, line.message);
    }
    restore_hook(
        &target,
        target.hooks.restore_post.as_ref(),
        vars(Some(result.is_ok())),
    )
    .await?;
    let summary = match result {
        Ok(summary) => summary,
        Err(e) => {
            let notice = crate::notify::notice::failure(
                crate::notify::NoticeKind::RestoreFailed,
                &target,
                context.config.notify_settings(),
                &e.to_string(),
                chrono::Utc::now().timestamp(),
            );
            crate::notify::deliver::tell(&context.config, catalog.clone(), limits.clone(), notice)
                .await;
            return Err(e.into());
        }
    };
    eprintln!(
        "restored {} entries, {} bytes to {}:{}",
        summary.entries,
        summary.bytes,
        target.name,
        String::from_utf8_lossy(&request.destination)
    );
    Ok(())
}

/// Runs a restore hook of `host`; an error only when it failed and the host checks status.
async fn restore_hook(
    host: &crate::config::ResolvedHost,
    argv: Option<&Vec<String>>,
    vars: HookVars,
) -> anyhow::Result<()> {
    let Some(argv) = argv else {
        return Ok(());
    };
    let ran = crate::hooks::run(argv, &vars, host.client_timeout).await;
    for line in &ran.output {
        eprintln!("hook: {line}");
    }
    match ran.result {
        Ok(()) => Ok(()),
        Err(e) if host.hooks.check_status => bail!("{e}"),
        Err(e) => {
            eprintln!("warning: {e} (ignored: hooks.check_status is off)");
            Ok(())
        }
    }
}
