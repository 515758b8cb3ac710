//! `hoard status`: what the running server is doing: running and waiting backups, and each
//! host's last backups and last event.

use clap::Args;

use super::Cli;
use super::context::load_config;
use super::output::{out, outln};
use crate::server::control::{Answer, Request, ServerStatus, ask};

/// Arguments of `hoard status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Print the status as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs `hoard status`.
pub async fn run(cli: &Cli, args: &StatusArgs) -> anyhow::Result<()> {
    let config = load_config(cli)?;
    let status = match ask(&config.control_socket(), &Request::Status).await? {
        Answer::Status(status) => status,
        Answer::Done { message } | Answer::Refused { message } => anyhow::bail!("{message}"),
    };
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&status)?);
    } else {
        out!("{}", render(&status));
    }
    Ok(())
}

fn when(t: Option<i64>) -> String {
    t.and_then(|t| chrono::DateTime::from_timestamp(t, 0))
        .map(|t| {
            t.with_timezone(&chrono::Local)
                .format("%Y-%m-%d %H:%M")
                .to_string()
        })
        .unwrap_or_else(|| "-".into())
}

fn render(status: &ServerStatus) -> String {
    let mut out = format!(
        "server pid {}, up since {}, next wakeup {}\n",
        status.pid,
        when(Some(status.started)),
        when(status.next_wakeup)
    );
    for r in &status.running {
        out += &format!(
            "running  {:<20} {:<12} since {}  {} entries, {} bytes\n",
            r.job.host,
            format!("{:?}", r.job.kind).to_lowercase(),
            when(Some(r.started)),
            r.entries,
            r.bytes
        );
    }
    for j in &status.waiting {
        out += &format!(
            "waiting  {:<20} {:<12} ({:?})\n",
            j.host,
            format!("{:?}", j.kind).to_lowercase(),
            j.origin
        );
    }
    out += &format!(
        "{:<20} {:<17} {:<17} {}\n",
        "HOST", "LAST BACKUP", "LAST FULL", "LAST EVENT"
    );
    for h in &status.hosts {
        out += &format!(
            "{:<20} {:<17} {:<17} {}{}\n",
            h.host,
            when(h.last_backup),
            when(h.last_full),
            h.last_event.as_deref().unwrap_or("-"),
            h.backoff_until
                .map(|t| format!(" (backed off until {})", when(Some(t))))
                .unwrap_or_default()
        );
    }
    out
}
