//! `hoard config check`: reads the config folder, resolves every host and prints one line per
//! host and `config OK`, or every error found (and fails).

use clap::Subcommand;

use super::Cli;
use super::output::outln;
use crate::config::{Config, ConfigCheck, ResolvedHost, user_pool_dir};

/// Config commands.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Read the config folder and report every host, or every error.
    Check {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Runs a config command.
pub async fn run(cli: &Cli, command: &ConfigCommand) -> anyhow::Result<()> {
    match command {
        ConfigCommand::Check { json } => check(cli, *json),
    }
}

fn check(cli: &Cli, json: bool) -> anyhow::Result<()> {
    let embedded = !cli.config.exists();
    let report = if embedded {
        match Config::embedded(user_pool_dir()) {
            Ok(config) => {
                let hosts = config
                    .hosts()
                    .filter_map(|name| config.host(name).ok())
                    .collect();
                ConfigCheck {
                    config: Some(config),
                    hosts,
                    errors: Vec::new(),
                }
            }
            Err(error) => ConfigCheck {
                config: None,
                hosts: Vec::new(),
                errors: error.into_list(),
            },
        }
    } else {
        Config::check(&cli.config)
    };
    let source = if embedded {
        format!(
            "built-in quick start ({} does not exist)",
            cli.config.display()
        )
    } else {
        cli.config.display().to_string()
    };

    if json {
        let value = serde_json::json!({
            "config": source,
            "ok": report.errors.is_empty(),
            "pool": report.config.as_ref().map(|c| c.pool().display().to_string()),
            "hosts": report.hosts.iter().map(host_json).collect::<Vec<_>>(),
            "errors": report.errors.iter().map(ToString::to_string).collect::<Vec<_>>(),
        });
        outln!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        eprintln!("config: {source}");
        for host in &report.hosts {
            outln!("{}", host_line(host));
        }
        for error in &report.errors {
            outln!("error: {error}");
        }
        if report.errors.is_empty() {
            outln!("config OK");
        }
    }
    match report.errors.len() {
        0 => Ok(()),
        1 => anyhow::bail!("the config has 1 error"),
        n => anyhow::bail!("the config has {n} errors"),
    }
}

/// `web1  10.0.0.5  tar  /home,/etc  ssh root@10.0.0.5:22`
fn host_line(host: &ResolvedHost) -> String {
    let shares: Vec<String> = host
        .shares
        .iter()
        .map(|s| s.display().to_string())
        .collect();
    format!(
        "{:<16} {:<20} {:<8} {:<30} {}{}",
        host.name,
        host.address,
        host.transport,
        shares.join(","),
        via(host),
        match host.backups {
            crate::config::BackupMode::Scheduled => String::new(),
            other => format!(" (backups {other})"),
        }
    )
}

fn via(host: &ResolvedHost) -> String {
    match &host.ssh {
        Some(ssh) => format!("ssh {}@{}:{}", ssh.user, ssh.address, ssh.port),
        None => "local".to_string(),
    }
}

fn host_json(host: &ResolvedHost) -> serde_json::Value {
    serde_json::json!({
        "name": host.name,
        "address": host.address,
        "transport": host.transport,
        "shares": host.shares,
        "via": if host.ssh.is_some() { "ssh" } else { "local" },
        "ssh": host.ssh.as_ref().map(|ssh| serde_json::json!({
            "user": ssh.user,
            "port": ssh.port,
            "private_key": ssh.private_key,
            "known_hosts": ssh.known_hosts,
            "accept_new_host_keys": ssh.accept_new_host_keys,
            "connect_timeout_seconds": ssh.connect_timeout.as_secs_f64(),
        })),
        "backups": host.backups,
        "full_period_seconds": host.full_period.as_secs_f64(),
        "incr_period_seconds": host.incr_period.as_secs_f64(),
    })
}
