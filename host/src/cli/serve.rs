//! `hoard serve`: runs the server in the foreground until SIGTERM or SIGINT (run it under
//! systemd or another supervisor).

use clap::Args;

use super::Cli;
use crate::config::{Config, user_pool_dir};
use crate::server::serve;

/// Arguments of `hoard serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {}

/// Runs `hoard serve`.
pub async fn run(cli: &Cli, _args: &ServeArgs) -> anyhow::Result<()> {
    let dir = cli.config.clone();
    let embedded = !dir.exists() && cli.config_is_default();
    let watched = (!embedded).then(|| dir.clone());
    let load = Box::new(move || {
        if embedded {
            Config::embedded(user_pool_dir())
        } else {
            Config::load(&dir)
        }
    });
    Ok(serve(watched, load).await?)
}
