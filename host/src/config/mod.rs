//! The configuration: a folder holding `hoard.ron` (server-wide settings and the defaults of
//! every host) and `hosts/NAME.ron` (one file per client, named after it), read into a
//! [`Config`]; or, when there is no folder, the quick start built into the binary.
//!
//! - [`file`]: the files as written (every key optional, unknown keys refused).
//! - [`units`]: durations and sizes as people write them (`"6.97d"`, `"4GiB"`).
//! - [`resolve`]: one host's settings decided ([`ResolvedHost`]) and the built-in defaults.
//! - [`error`]: what can be wrong, always naming the file (and line:column when RON knows it).
//!
//! Whether a named plugin exists is not checked here: the caller knows the plugin catalog.

pub mod error;
pub mod file;
pub mod resolve;
pub mod units;

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use error::{ConfigError, Position, Problem};
pub use file::{
    AbsolutePath, BackupMode, CompressionLevel, GlobalSettings, GrantSettings, HostSettings,
    SecretSettings, SshOverrides,
};
pub use resolve::{ResolvedHost, SshSettings, builtin, is_local_address, is_valid_host_name};
pub use units::{ByteSize, ConfigDuration};

use crate::plugin::bindings::Capability;
use crate::plugin::grant::{CapabilityGrant, Secret};
use error::parse_ron;
use resolve::ResolveContext;

/// The quick start's `hoard.ron`, also `config-examples/quickstart/hoard.ron`.
const QUICKSTART_GLOBAL: &str = include_str!("../../../config-examples/quickstart/hoard.ron");
/// The quick start's one host, also `config-examples/quickstart/hosts/localhost.ron`.
const QUICKSTART_LOCALHOST: &str =
    include_str!("../../../config-examples/quickstart/hosts/localhost.ron");

/// The global file's name in the config folder.
pub const GLOBAL_FILE: &str = "hoard.ron";
/// The host folder's name in the config folder.
pub const HOSTS_DIR: &str = "hosts";

/// A loaded config: server-wide settings decided, and every host file parsed and checked (a
/// [`Config`] only exists when every host resolves).
#[derive(Debug, Clone)]
pub struct Config {
    /// The config folder (absolute); `None` for the embedded quick start.
    dir: Option<PathBuf>,
    /// The name errors give `hoard.ron`.
    global_file: PathBuf,
    global: GlobalSettings,
    pool: PathBuf,
    client_paths: BTreeMap<String, PathBuf>,
    hosts: BTreeMap<String, HostFile>,
}

/// One parsed host file.
#[derive(Debug, Clone)]
struct HostFile {
    /// Its name for errors (`hosts/web1.ron`).
    file: PathBuf,
    settings: HostSettings,
}

/// A config file's text before parsing.
struct Source {
    /// Its name for errors.
    file: PathBuf,
    text: String,
}

/// Everything `hoard config check` reports: the hosts that resolved and every error found.
#[derive(Debug)]
pub struct ConfigCheck {
    /// The config, when `hoard.ron` could be read (even if some hosts could not).
    pub config: Option<Config>,
    /// The hosts that resolved, by name.
    pub hosts: Vec<ResolvedHost>,
    /// Every error, in file order.
    pub errors: Vec<ConfigError>,
}

impl Config {
    /// Reads the config folder `dir`: `hoard.ron` (required) and every `hosts/*.ron`; fails
    /// with every error found ([`ConfigError::Several`] when there are more than one).
    pub fn load(dir: &Path) -> Result<Config, ConfigError> {
        let check = Config::check(dir);
        match (ConfigError::from_list(check.errors), check.config) {
            (Some(error), _) => Err(error),
            (None, Some(config)) => Ok(config),
            (None, None) => Err(ConfigError::Read {
                path: dir.join(GLOBAL_FILE),
                source: io::Error::other("not read"),
            }),
        }
    }

    /// Reads the config folder like [`Config::load`], but goes on past errors: every file is
    /// parsed and every host resolved, and what worked is returned with what did not.
    pub fn check(dir: &Path) -> ConfigCheck {
        let (global, hosts, mut errors) = read_folder(dir);
        let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
        match global {
            Some(global) => from_sources(Some(dir), global, hosts, errors),
            None => ConfigCheck {
                config: None,
                hosts: Vec::new(),
                errors: {
                    errors.sort_by_key(error_order);
                    errors
                },
            },
        }
    }

    /// The quick start built into the binary (`config-examples/quickstart/`): one host,
    /// `localhost`, backed up with tar without ssh; its pool at `pool_dir`. Used when the
    /// config folder does not exist.
    pub fn embedded(pool_dir: PathBuf) -> Result<Config, ConfigError> {
        let label = Path::new("(built-in quick start)");
        let global = Source {
            file: label.join(GLOBAL_FILE),
            text: QUICKSTART_GLOBAL.to_string(),
        };
        let hosts = vec![(
            "localhost".to_string(),
            Source {
                file: label.join(HOSTS_DIR).join("localhost.ron"),
                text: QUICKSTART_LOCALHOST.to_string(),
            },
        )];
        let check = from_sources(None, global, hosts, Vec::new());
        match (ConfigError::from_list(check.errors), check.config) {
            (Some(error), _) => Err(error),
            (None, Some(mut config)) => {
                config.pool = pool_dir;
                Ok(config)
            }
            (None, None) => Err(ConfigError::Read {
                path: label.to_path_buf(),
                source: io::Error::other("not parsed"),
            }),
        }
    }

    /// The config folder; `None` for the embedded quick start.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// Where the pool lives.
    pub fn pool(&self) -> &Path {
        &self.pool
    }

    /// Where plugin components are loaded from: `plugin_dir`, else `<config folder>/plugins`;
    /// `None` for the embedded quick start (built-in plugins only).
    pub fn plugin_dir(&self) -> Option<PathBuf> {
        match (&self.global.plugin_dir, &self.dir) {
            (Some(dir), _) => Some(dir.to_path_buf()),
            (None, Some(config_dir)) => Some(config_dir.join("plugins")),
            (None, None) => None,
        }
    }

    /// Where compiled plugins are cached: `cache_dir`, else `cache` beside the pool, else
    /// `~/.cache/hoard`.
    pub fn cache_dir(&self) -> PathBuf {
        if let Some(dir) = &self.global.cache_dir {
            return dir.to_path_buf();
        }
        match self.pool.parent() {
            Some(parent) if parent != Path::new("") => parent.join("cache"),
            _ => std::env::var_os("HOME")
                .map(|home| PathBuf::from(home).join(".cache"))
                .unwrap_or_else(std::env::temp_dir)
                .join("hoard"),
        }
    }

    /// The `notify` section of `hoard.ron`.
    pub fn notify_settings(&self) -> &file::NotifySettings {
        &self.global.notify
    }

    /// The `server` section of `hoard.ron`.
    pub fn server_settings(&self) -> &file::ServerSettings {
        &self.global.server
    }

    /// Where the running server listens for the CLI.
    pub fn control_socket(&self) -> PathBuf {
        self.global
            .server
            .control_socket
            .as_ref()
            .map(|p| p.to_path_buf())
            .unwrap_or_else(|| self.pool().join("control.sock"))
    }

    /// Longest round trip of the reachability check.
    pub fn ping_max_rtt(&self) -> Duration {
        self.global
            .server
            .ping_max_rtt
            .map(ConfigDuration::get)
            .unwrap_or(builtin::PING_MAX_RTT)
    }

    /// The pool's zstd level, 1 to 19.
    pub fn compression_level(&self) -> i32 {
        self.global
            .compression_level
            .map(CompressionLevel::get)
            .unwrap_or(builtin::COMPRESSION_LEVEL)
    }

    /// Memory one plugin instance may use.
    pub fn plugin_memory(&self) -> ByteSize {
        self.global
            .plugin_memory
            .unwrap_or(ByteSize(builtin::PLUGIN_MEMORY))
    }

    /// Wall-clock limit of one plugin call.
    pub fn plugin_deadline(&self) -> Duration {
        self.global
            .plugin_deadline
            .map(ConfigDuration::get)
            .unwrap_or(builtin::PLUGIN_DEADLINE)
    }

    /// Program name → absolute path on clients: the built-in table with `client_paths` over it.
    pub fn client_paths(&self) -> &BTreeMap<String, PathBuf> {
        &self.client_paths
    }

    /// The host names, sorted.
    pub fn hosts(&self) -> impl Iterator<Item = &str> {
        self.hosts.keys().map(String::as_str)
    }

    /// One host, its settings resolved.
    pub fn host(&self, name: &str) -> Result<ResolvedHost, ConfigError> {
        let host = self
            .hosts
            .get(name)
            .ok_or_else(|| ConfigError::UnknownHost {
                name: name.to_string(),
            })?;
        let config_dir = self
            .dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(builtin::CONFIG_DIR));
        let context = ResolveContext {
            host_file: &host.file,
            global_file: &self.global_file,
            config_dir: &config_dir,
            client_paths: &self.client_paths,
        };
        resolve::resolve(name, &host.settings, &self.global.defaults, &context).map_err(|errors| {
            ConfigError::from_list(errors).unwrap_or_else(|| ConfigError::UnknownHost {
                name: name.to_string(),
            })
        })
    }

    /// What `host`'s transport plugin may do, given what its manifest declares. With
    /// `grants` in the config: those, limited to the manifest, programs resolved through
    /// `client_paths` and secrets read from their files now. Without: the manifest's
    /// programs that `client_paths` knows and its ports; no server tools, no secrets.
    pub fn capability_grant(
        &self,
        host: &ResolvedHost,
        manifest: &[Capability],
    ) -> Result<CapabilityGrant, ConfigError> {
        let Some(grants) = &host.grants else {
            let mut grant = CapabilityGrant::default();
            for capability in manifest {
                match capability {
                    Capability::Exec(program) => {
                        if let Some(path) = self.client_paths.get(program) {
                            grant.exec.insert(program.clone(), path.clone());
                        }
                    }
                    Capability::Connect(port) => {
                        grant.connect_ports.insert(*port);
                    }
                    _ => {}
                }
            }
            return Ok(grant);
        };
        let mut grant = CapabilityGrant {
            exec: grants
                .exec
                .iter()
                .filter_map(|program| {
                    Some((program.clone(), self.client_paths.get(program)?.clone()))
                })
                .collect(),
            connect_ports: grants.connect.iter().copied().collect(),
            server_tools: grants
                .server_tools
                .iter()
                .map(|(name, path)| (name.clone(), path.to_path_buf()))
                .collect(),
            ..CapabilityGrant::default()
        };
        let declared = |name: &str| {
            manifest
                .iter()
                .any(|c| matches!(c, Capability::Secret(s) if s == name))
        };
        for (name, secret) in &grants.secrets {
            if declared(name) {
                grant.secrets.insert(name.clone(), secret.read(name)?);
            }
        }
        Ok(grant.restricted_to(manifest))
    }
}

impl SecretSettings {
    /// Reads the password file now (a trailing newline is dropped). `name` is the secret's
    /// name, for the error.
    pub fn read(&self, name: &str) -> Result<Secret, ConfigError> {
        let text = std::fs::read_to_string(&*self.password_file).map_err(|source| {
            ConfigError::SecretUnreadable {
                name: name.to_string(),
                path: self.password_file.to_path_buf(),
                source,
            }
        })?;
        let password = text.strip_suffix('\n').unwrap_or(&text);
        let password = password.strip_suffix('\r').unwrap_or(password);
        Ok(Secret {
            user: self.user.clone(),
            password: password.to_string(),
            domain: self.domain.clone(),
        })
    }
}

/// Where a server keeps its pool when it runs without a config folder:
/// `$XDG_DATA_HOME/hoard/pool`, else `~/.local/share/hoard/pool`.
pub fn user_pool_dir() -> PathBuf {
    std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".local/share")))
        .unwrap_or_else(std::env::temp_dir)
        .join("hoard/pool")
}

/// Reads `hoard.ron` and `hosts/*.ron` of a folder into texts. Host files are taken in name
/// order; files not ending in `.ron` and hidden files are skipped.
fn read_folder(dir: &Path) -> (Option<Source>, Vec<(String, Source)>, Vec<ConfigError>) {
    let mut errors = Vec::new();
    let global = match std::fs::read_to_string(dir.join(GLOBAL_FILE)) {
        Ok(text) => Some(Source {
            file: PathBuf::from(GLOBAL_FILE),
            text,
        }),
        Err(source) => {
            errors.push(ConfigError::Read {
                path: dir.join(GLOBAL_FILE),
                source,
            });
            None
        }
    };
    let hosts_dir = dir.join(HOSTS_DIR);
    let mut names: Vec<std::ffi::OsString> = match std::fs::read_dir(&hosts_dir) {
        Ok(entries) => entries
            .filter_map(|entry| match entry {
                Ok(entry) => Some(entry.file_name()),
                Err(source) => {
                    errors.push(ConfigError::Read {
                        path: hosts_dir.clone(),
                        source,
                    });
                    None
                }
            })
            .collect(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(source) => {
            errors.push(ConfigError::Read {
                path: hosts_dir.clone(),
                source,
            });
            Vec::new()
        }
    };
    names.sort();
    let mut hosts = Vec::new();
    for file_name in names {
        let label = Path::new(HOSTS_DIR).join(&file_name);
        let path = Path::new(&file_name);
        if path.extension().is_none_or(|ext| ext != "ron")
            || file_name.to_string_lossy().starts_with('.')
        {
            continue;
        }
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        if path.file_stem().and_then(|s| s.to_str()).is_none() || !is_valid_host_name(&name) {
            errors.push(ConfigError::Invalid {
                file: label,
                problem: Problem::InvalidHostName { name },
            });
            continue;
        }
        match std::fs::read_to_string(hosts_dir.join(&file_name)) {
            Ok(text) => hosts.push((name, Source { file: label, text })),
            Err(source) => errors.push(ConfigError::Read {
                path: hosts_dir.join(&file_name),
                source,
            }),
        }
    }
    (global, hosts, errors)
}

/// Parses the texts of a config and resolves every host: the one code path for folders and
/// for the embedded quick start.
fn from_sources(
    dir: Option<PathBuf>,
    global: Source,
    host_sources: Vec<(String, Source)>,
    mut errors: Vec<ConfigError>,
) -> ConfigCheck {
    let global_settings =
        parse_ron::<GlobalSettings>(&global.file, &global.text).map_err(|e| errors.push(e));
    let mut hosts = BTreeMap::new();
    for (name, source) in host_sources {
        match parse_ron::<HostSettings>(&source.file, &source.text) {
            Ok(settings) => {
                hosts.insert(
                    name,
                    HostFile {
                        file: source.file,
                        settings,
                    },
                );
            }
            Err(error) => errors.push(error),
        }
    }
    let Ok(global_settings) = global_settings else {
        errors.sort_by_key(error_order);
        return ConfigCheck {
            config: None,
            hosts: Vec::new(),
            errors,
        };
    };
    let mut client_paths: BTreeMap<String, PathBuf> = builtin::CLIENT_PATHS
        .iter()
        .map(|(name, path)| (name.to_string(), PathBuf::from(path)))
        .collect();
    client_paths.extend(
        global_settings
            .client_paths
            .iter()
            .map(|(name, path)| (name.clone(), path.to_path_buf())),
    );
    let config = Config {
        dir,
        global_file: global.file,
        pool: global_settings
            .pool
            .as_ref()
            .map(|p| p.to_path_buf())
            .unwrap_or_else(|| PathBuf::from(builtin::POOL)),
        global: global_settings,
        client_paths,
        hosts,
    };
    let mut resolved = Vec::new();
    for name in config.hosts() {
        match config.host(name) {
            Ok(host) => resolved.push(host),
            Err(error) => errors.extend(error.into_list()),
        }
    }
    errors.sort_by_key(error_order);
    ConfigCheck {
        config: Some(config),
        hosts: resolved,
        errors,
    }
}

/// Errors sorted by file, then position: `hoard.ron` first, then the hosts.
fn error_order(error: &ConfigError) -> (u8, PathBuf, Option<Position>) {
    match error {
        ConfigError::Read { path, .. } => (0, path.clone(), None),
        ConfigError::Parse { file, position, .. } => (
            1 + u8::from(file.starts_with(HOSTS_DIR)),
            file.clone(),
            Some(*position),
        ),
        ConfigError::Invalid { file, .. } => (
            1 + u8::from(file.starts_with(HOSTS_DIR)),
            file.clone(),
            None,
        ),
        _ => (3, PathBuf::new(), None),
    }
}
