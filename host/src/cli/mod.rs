//! The `hoard` command line: argument parsing and one module per verb. The library does the
//! work; these modules only turn its answers into text, tables or JSON.

pub mod backup;
pub mod config;
pub mod context;
pub mod expire;
pub mod gc;
pub mod keep;
pub mod list;
pub mod ls;
pub mod notify;
pub mod output;
pub mod plugin;
pub mod plugin_test;
pub mod restore;
pub mod serve;
pub mod status;
pub mod stop;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Where the config folder is unless `--config` says otherwise.
pub const DEFAULT_CONFIG: &str = "/etc/hoard";

/// hoard: disk-to-disk backups of many machines, with sandboxed WebAssembly transports.
#[derive(Debug, Parser)]
#[command(name = "hoard", version, about)]
pub struct Cli {
    /// The config folder (`hoard.ron`, `hosts/`, `plugins/`).
    #[arg(long, global = true, default_value = DEFAULT_CONFIG, env = "HOARD_CONFIG")]
    pub config: PathBuf,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The verbs.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Back up a host now: queued into the running server, or in the foreground.
    Backup(backup::BackupArgs),
    /// Run the server: scheduler, job queue, nightly maintenance, control socket.
    Serve(serve::ServeArgs),
    /// What the running server is doing.
    Status(status::StatusArgs),
    /// Stop a host's backup in the running server (and hold its scheduled ones back).
    Stop(stop::StopArgs),
    /// Drop a host's waiting backup from the running server's queue.
    Dequeue(stop::DequeueArgs),
    /// A host's backups.
    List(list::ListArgs),
    /// Browse a backup.
    Ls(ls::LsArgs),
    /// Restore from a backup: into a directory, to a client, or as a tar stream.
    Restore(restore::RestoreArgs),
    /// Apply retention now: remove the backups each host's policy lets go.
    Expire(expire::ExpireArgs),
    /// Flag a backup so retention never removes it (`--off` clears the flag).
    Keep(keep::KeepArgs),
    /// Reclaim the space of removed backups.
    Gc(gc::GcArgs),
    /// Check the pool: re-hash objects and walk every backup.
    Fsck(gc::FsckArgs),
    /// Notifications: send a test message.
    #[command(subcommand)]
    Notify(notify::NotifyCommand),
    /// Plugins: list the loaded ones, inspect a component, certify a transport.
    #[command(subcommand)]
    Plugin(plugin::PluginCommand),
    /// The config folder: check it.
    #[command(subcommand)]
    Config(config::ConfigCommand),
}

impl Cli {
    /// Whether `--config` was left at its default (then a missing folder means the built-in
    /// quick start).
    pub fn config_is_default(&self) -> bool {
        self.config == std::path::Path::new(DEFAULT_CONFIG)
    }

    /// Runs the command.
    pub async fn run(self) -> anyhow::Result<()> {
        match &self.command {
            Command::Backup(args) => backup::run(&self, args).await,
            Command::Serve(args) => serve::run(&self, args).await,
            Command::Status(args) => status::run(&self, args).await,
            Command::Stop(args) => stop::stop(&self, args).await,
            Command::Dequeue(args) => stop::dequeue(&self, args).await,
            Command::List(args) => list::run(&self, args),
            Command::Expire(args) => expire::run(&self, args),
            Command::Notify(command) => notify::run(&self, command).await,
            Command::Keep(args) => keep::run(&self, args),
            Command::Gc(args) => gc::gc(&self, args),
            Command::Fsck(args) => gc::fsck(&self, args),
            Command::Ls(args) => ls::run(&self, args),
            Command::Restore(args) => restore::run(&self, args).await,
            Command::Plugin(command) => plugin::run(&self, command).await,
            Command::Config(command) => config::run(&self, command).await,
        }
    }
}
