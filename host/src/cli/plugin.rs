//! `hoard plugin list | inspect FILE | test PLUGIN`.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Subcommand;

use super::Cli;
use super::context::{load_catalog, load_config};
use super::output::outln;
use crate::plugin::bindings::{Capability, Metadata, PluginInfo};
use crate::plugin::catalog::{LoadedPlugin, PluginSource};

/// Plugin commands.
#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// The loaded plugins: built-in, then the config's plugin folder.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Load one component file and show what it is and asks for.
    Inspect {
        /// The `.wasm` component.
        file: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Certify a transport plugin against a real server on loopback (the conformance kit):
    /// full, incremental, second full, restores, one check per claimed metadata aspect,
    /// sandbox checks. Exits non-zero when a case fails.
    Test(super::plugin_test::TestArgs),
}

/// Runs a plugin command.
pub async fn run(cli: &Cli, command: &PluginCommand) -> anyhow::Result<()> {
    let config = load_config(cli)?;
    match command {
        PluginCommand::List { json } => {
            let catalog = load_catalog(&config, true).await?;
            let plugins: Vec<&Arc<LoadedPlugin>> = catalog.plugins().collect();
            if *json {
                let list: Vec<_> = plugins.iter().map(|p| plugin_json(p)).collect();
                let problems: Vec<_> = catalog
                    .problems()
                    .iter()
                    .map(|p| serde_json::json!({"path": p.path, "error": p.error.to_string()}))
                    .collect();
                outln!(
                    "{}",
                    serde_json::to_string_pretty(
                        &serde_json::json!({"plugins": list, "problems": problems})
                    )?
                );
            } else {
                outln!(
                    "{:<10} {:<10} {:<8} {:<10} {:<34} DESCRIPTION",
                    "NAME",
                    "KIND",
                    "VERSION",
                    "SOURCE",
                    "CAPABILITIES"
                );
                for p in &plugins {
                    let source = match &p.source {
                        PluginSource::BuiltIn => "built-in".to_string(),
                        PluginSource::File(path) => path
                            .file_name()
                            .map(|n| n.to_string_lossy().into_owned())
                            .unwrap_or_default(),
                    };
                    outln!(
                        "{:<10} {:<10} {:<8} {:<10} {:<34} {}",
                        p.info.name,
                        p.kind.as_str(),
                        p.info.version,
                        source,
                        capabilities(&p.info).join(", "),
                        p.info.description
                    );
                }
                for problem in catalog.problems() {
                    eprintln!("not loaded: {}", problem.error);
                }
                if plugins.is_empty() {
                    outln!("(no plugins)");
                }
                match config.plugin_dir() {
                    Some(dir) => eprintln!("plugin folder: {}", dir.display()),
                    None => eprintln!("plugin folder: none (built-in quick start)"),
                }
            }
        }
        PluginCommand::Inspect { file, json } => {
            let catalog = load_catalog(&config, false).await?;
            let plugin = catalog.load_file(file).await?;
            if *json {
                outln!("{}", serde_json::to_string_pretty(&plugin_json(&plugin))?);
            } else {
                let info = &plugin.info;
                outln!("name:         {}", info.name);
                outln!("kind:         {}", plugin.kind.as_str());
                outln!("version:      {}", info.version);
                outln!("contract:     {}", info.contract);
                outln!("description:  {}", info.description);
                outln!("capabilities: {}", capabilities(info).join(", "));
                outln!("features:     {}", features(info).join(", "));
                outln!(
                    "metadata:     {}",
                    metadata(info.features.metadata).join(", ")
                );
                outln!("blake3:       {}", plugin.digest);
            }
        }
        PluginCommand::Test(args) => super::plugin_test::run(&config, args).await?,
    }
    Ok(())
}

fn capabilities(info: &PluginInfo) -> Vec<String> {
    info.capabilities
        .iter()
        .map(|c| match c {
            Capability::Exec(p) => format!("exec({p})"),
            Capability::Connect(port) => format!("connect({port})"),
            Capability::ServerTool(t) => format!("server-tool({t})"),
            Capability::Secret(s) => format!("secret({s})"),
            Capability::Endpoint => "endpoint".into(),
            Capability::Http => "http".into(),
        })
        .collect()
}

fn features(info: &PluginInfo) -> Vec<&'static str> {
    let f = &info.features;
    [
        (f.incremental, "incremental"),
        (f.restore, "restore"),
        (f.delta, "delta"),
    ]
    .into_iter()
    .filter_map(|(on, name)| on.then_some(name))
    .collect()
}

fn metadata(m: Metadata) -> Vec<&'static str> {
    [
        (Metadata::OWNER_IDS, "owner-ids"),
        (Metadata::OWNER_NAMES, "owner-names"),
        (Metadata::PERMISSIONS, "permissions"),
        (Metadata::MTIME_NANOSECONDS, "mtime-nanoseconds"),
        (Metadata::SYMLINKS, "symlinks"),
        (Metadata::HARDLINKS, "hardlinks"),
        (Metadata::DEVICES, "devices"),
        (Metadata::SPECIALS, "specials"),
        (Metadata::XATTRS, "xattrs"),
        (Metadata::SPARSE, "sparse"),
    ]
    .into_iter()
    .filter_map(|(flag, name)| m.contains(flag).then_some(name))
    .collect()
}

fn plugin_json(p: &LoadedPlugin) -> serde_json::Value {
    serde_json::json!({
        "name": p.info.name,
        "kind": p.kind.as_str(),
        "version": p.info.version,
        "contract": p.info.contract,
        "description": p.info.description,
        "source": p.source.to_string(),
        "capabilities": capabilities(&p.info),
        "features": features(&p.info),
        "metadata": metadata(p.info.features.metadata),
        "blake3": p.digest,
    })
}
