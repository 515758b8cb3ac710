//! `hoard stop HOST [--backoff HOURS]` and `hoard dequeue HOST`: tell the running server to
//! stop a host's backup (and hold its scheduled ones back), or drop a waiting one.

use clap::Args;

use super::Cli;
use super::context::load_config;
use super::output::outln;
use crate::server::control::{Answer, Request, ask};

/// Arguments of `hoard stop`.
#[derive(Debug, Args)]
pub struct StopArgs {
    /// The host.
    pub host: String,
    /// Hours without scheduled backups of the host.
    #[arg(long, default_value_t = 0.0)]
    pub backoff: f64,
}

/// Arguments of `hoard dequeue`.
#[derive(Debug, Args)]
pub struct DequeueArgs {
    /// The host.
    pub host: String,
}

/// Runs `hoard stop`.
pub async fn stop(cli: &Cli, args: &StopArgs) -> anyhow::Result<()> {
    if !(args.backoff.is_finite() && args.backoff >= 0.0) {
        anyhow::bail!("--backoff must be a number of hours, 0 or more");
    }
    send(
        cli,
        Request::Stop {
            host: args.host.clone(),
            backoff_hours: args.backoff,
        },
    )
    .await
}

/// Runs `hoard dequeue`.
pub async fn dequeue(cli: &Cli, args: &DequeueArgs) -> anyhow::Result<()> {
    send(
        cli,
        Request::Dequeue {
            host: args.host.clone(),
        },
    )
    .await
}

async fn send(cli: &Cli, request: Request) -> anyhow::Result<()> {
    let config = load_config(cli)?;
    match ask(&config.control_socket(), &request).await? {
        Answer::Done { message } => {
            outln!("{message}");
            Ok(())
        }
        Answer::Refused { message } => anyhow::bail!("{message}"),
        Answer::Status(_) => anyhow::bail!("the server answered with its status"),
    }
}
