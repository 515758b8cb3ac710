//! The `hoard` command line: argument parsing and one module per verb. The library does the
//! work; these modules only turn its answers into text, tables or JSON.

pub mod config;
pub mod plugin;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// hoard: disk-to-disk backups of many machines, with sandboxed WebAssembly transports.
#[derive(Debug, Parser)]
#[command(name = "hoard", version, about)]
pub struct Cli {
    /// The config folder (`hoard.ron`, `hosts/`, `plugins/`).
    #[arg(long, global = true, default_value = "/etc/hoard", env = "HOARD_CONFIG")]
    pub config: PathBuf,

    /// Where compiled plugins are cached (default: `$XDG_CACHE_HOME/hoard` or `~/.cache/hoard`).
    #[arg(long, global = true, env = "HOARD_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The verbs.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Plugins: list the loaded ones, inspect a component.
    #[command(subcommand)]
    Plugin(plugin::PluginCommand),
    /// The config folder: check it.
    #[command(subcommand)]
    Config(config::ConfigCommand),
}

impl Cli {
    /// The plugin folder: `plugins/` in the config folder.
    pub fn plugin_dir(&self) -> PathBuf {
        self.config.join("plugins")
    }

    /// The compile cache folder.
    pub fn cache_dir(&self) -> PathBuf {
        if let Some(dir) = &self.cache_dir {
            return dir.clone();
        }
        let base = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
            .unwrap_or_else(std::env::temp_dir);
        base.join("hoard")
    }

    /// Runs the command.
    pub async fn run(self) -> anyhow::Result<()> {
        match &self.command {
            Command::Plugin(command) => plugin::run(&self, command).await,
            Command::Config(command) => config::run(&self, command).await,
        }
    }
}
