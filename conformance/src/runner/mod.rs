//! The certification runner behind `hoard plugin test`: it brings up a real peer serving a
//! fixture tree, points a throw-away hoard config at it with the plugin under test as the
//! transport, drives the `hoard` binary through the matrix of cases and reports each case
//! as passed, failed or not applicable.
//!
//! The runner drives hoard from outside, as an admin would, so it certifies the whole path
//! (config, sandbox, plugin, pool, restore) and needs nothing from hoard's library.

mod cases;
mod hoard;
mod manifest;
mod report;
mod setup;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use manifest::Manifest;
pub use report::{CaseResult, Outcome, Report, row};
pub use setup::PeerKind;

use crate::fixture::FixtureOptions;
use crate::peers::PeerError;

/// The plugin to certify.
#[derive(Debug, Clone)]
pub enum PluginUnderTest {
    /// A plugin hoard has built in, by name.
    BuiltIn(String),
    /// A component file.
    File(PathBuf),
}

impl std::fmt::Display for PluginUnderTest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PluginUnderTest::BuiltIn(name) => write!(f, "built-in {name}"),
            PluginUnderTest::File(path) => write!(f, "{}", path.display()),
        }
    }
}

/// How to run a certification.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The `hoard` binary to drive.
    pub hoard: PathBuf,
    /// The plugin.
    pub plugin: PluginUnderTest,
    /// The peer.
    pub peer: PeerKind,
    /// Where compiled plugins are cached (shared with the admin's config saves compiling).
    pub cache_dir: PathBuf,
    /// How big the fixture is.
    pub fixture: FixtureOptions,
    /// Keep the work folder (pool, config, trees) here instead of a temporary one.
    pub keep_in: Option<PathBuf>,
    /// The longest one hoard command may run.
    pub command_limit: Duration,
}

/// Why a certification could not run at all (a case that fails is not an error).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A peer did not start.
    #[error(transparent)]
    Peer(#[from] PeerError),
    /// A file of the bench could not be made.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The plugin could not be loaded or described.
    #[error("the plugin does not load: {0}")]
    Load(String),
    /// The plugin cannot use the chosen peer.
    #[error("{0}")]
    Unusable(String),
}

impl RunError {
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> RunError {
        let what = what.into();
        move |source| RunError::Io { what, source }
    }
}

/// Certifies the plugin: every case runs (a failure does not stop the next one); `progress`
/// sees each result as it comes.
pub fn certify(
    options: &RunOptions,
    progress: &mut dyn FnMut(&CaseResult),
) -> Result<Report, RunError> {
    let temp = tempfile::Builder::new()
        .prefix("hoard-kit-")
        .tempdir()
        .map_err(RunError::io("make the work folder"))?;
    let work = match &options.keep_in {
        Some(dir) => {
            std::fs::create_dir_all(dir).map_err(RunError::io("make the work folder"))?;
            dir.clone()
        }
        None => temp.path().to_path_buf(),
    };
    let config = work.join("config");
    std::fs::create_dir_all(config.join("plugins"))
        .map_err(RunError::io("make the config folder"))?;
    // Enough config to load plugins; the bench writes the whole of it.
    std::fs::write(
        config.join("hoard.ron"),
        format!(
            "(pool: {:?}, cache_dir: {:?})\n",
            work.join("pool").display().to_string(),
            options.cache_dir.display().to_string()
        ),
    )
    .map_err(RunError::io("write hoard.ron"))?;
    let started = std::time::Instant::now();
    let (manifest, source) = load(options, &config)?;
    if let Some(reason) = options.peer.unusable_by(&manifest) {
        return Err(RunError::Unusable(reason));
    }
    let bench = setup::Bench::start(
        &work,
        options.peer,
        &manifest,
        options.fixture,
        &options.cache_dir,
    )?;
    let mut report = Report::new(
        manifest.clone(),
        source,
        options.peer.name().to_owned(),
        options.fixture,
        bench.holds,
    );
    let load_case = CaseResult {
        case: "sandbox: imports within manifest".into(),
        outcome: Outcome::Pass,
        detail: format!(
            "loaded; asks for {}",
            if manifest.capabilities.is_empty() {
                "nothing".to_owned()
            } else {
                manifest.capabilities.join(", ")
            }
        ),
        seconds: started.elapsed().as_secs_f64(),
    };
    progress(&load_case);
    report.cases.push(load_case);
    let hoard = hoard::Hoard::new(&options.hoard, &bench.config, options.command_limit);
    cases::Matrix::new(&hoard, &bench, &manifest, &mut report, progress).run();
    Ok(report)
}

/// Puts the plugin where the kit's config finds it and reads its description; the host
/// refuses at load a component whose imports go beyond its manifest.
fn load(options: &RunOptions, config: &Path) -> Result<(Manifest, String), RunError> {
    let inspect = |file: &Path| -> Result<Manifest, RunError> {
        let output = std::process::Command::new(&options.hoard)
            .arg("--config")
            .arg(config)
            .args(["plugin", "inspect", "--json"])
            .arg(file)
            .output()
            .map_err(RunError::io("run hoard plugin inspect"))?;
        let ran = hoard::ran(output);
        if !ran.success {
            return Err(RunError::Load(ran.tail()));
        }
        Manifest::from_json(&ran.json().map_err(RunError::Load)?).map_err(RunError::Load)
    };
    let manifest = match &options.plugin {
        PluginUnderTest::File(file) => {
            let manifest = inspect(file)?;
            let name = file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| format!("{}.wasm", manifest.name));
            std::fs::copy(file, config.join("plugins").join(name))
                .map_err(RunError::io(format!("copy {}", file.display())))?;
            manifest
        }
        PluginUnderTest::BuiltIn(name) => {
            let output = std::process::Command::new(&options.hoard)
                .arg("--config")
                .arg(config)
                .args(["plugin", "list", "--json"])
                .output()
                .map_err(RunError::io("run hoard plugin list"))?;
            let listed = hoard::ran(output).json().map_err(RunError::Load)?;
            let found = listed["plugins"]
                .as_array()
                .and_then(|all| all.iter().find(|p| p["name"] == name.as_str()))
                .ok_or_else(|| RunError::Load(format!("no plugin named {name}")))?;
            Manifest::from_json(found).map_err(RunError::Load)?
        }
    };
    if manifest.kind != "transport" {
        return Err(RunError::Unusable(format!(
            "{} is a {} plugin; the kit certifies transports",
            manifest.name, manifest.kind
        )));
    }
    Ok((manifest, options.plugin.to_string()))
}
