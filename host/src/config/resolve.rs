//! One host's settings resolved: its file over the `defaults` of `hoard.ron` over the built-in
//! defaults, into [`ResolvedHost`], whose fields are never optional. Owns the built-in
//! defaults and the checks that need more than one setting (a remote host needs ssh, an
//! exclude list must name a share the host has, ...).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::error::{ConfigError, Problem};
use super::file::{AbsolutePath, BackupMode, GrantSettings, HostSettings, SshOverrides};

/// Built-in defaults, used when neither the host file nor `defaults` in `hoard.ron` sets a key.
pub mod builtin {
    use std::time::Duration;

    /// `client_timeout`: BackupPC's `ClientTimeout` (72000 s).
    pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(72_000);
    /// `full_period`: BackupPC's `FullPeriod` (6.97 days).
    pub const FULL_PERIOD: Duration = Duration::from_secs(602_208);
    /// `incr_period`: BackupPC's `IncrPeriod` (0.97 days).
    pub const INCR_PERIOD: Duration = Duration::from_secs(83_808);
    /// `blackout_good_count`: BackupPC's `BlackoutGoodCnt`.
    pub const BLACKOUT_GOOD_COUNT: u32 = 7;
    /// `blackout_bad_count`: BackupPC's `BlackoutBadCnt`.
    pub const BLACKOUT_BAD_COUNT: u32 = 3;
    /// `server.max_backups`: BackupPC's `MaxBackups`.
    pub const MAX_BACKUPS: usize = 4;
    /// `server.max_user_backups`: BackupPC's `MaxUserBackups`.
    pub const MAX_USER_BACKUPS: usize = 4;
    /// `server.df_max_usage_pct`: BackupPC's `DfMaxUsagePct`.
    pub const DF_MAX_USAGE_PCT: f64 = 95.0;
    /// `server.ping_max_rtt`: BackupPC's `PingMaxMsec`.
    pub const PING_MAX_RTT: Duration = Duration::from_millis(20);
    /// `one_file_system`: BackupPC's tar and rsync commands pass `--one-file-system`.
    pub const ONE_FILE_SYSTEM: bool = true;
    /// `ssh.user`.
    pub const SSH_USER: &str = "root";
    /// `ssh.port`.
    pub const SSH_PORT: u16 = 22;
    /// `ssh.key`, in the config folder.
    pub const SSH_KEY_FILE: &str = "id_ed25519";
    /// `ssh.known_hosts`, in the config folder.
    pub const SSH_KNOWN_HOSTS_FILE: &str = "known_hosts";
    /// `ssh.connect_timeout`.
    pub const SSH_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
    /// `pool`.
    pub const POOL: &str = "/var/lib/hoard/pool";
    /// The config folder assumed for defaults that live in it, when there is no folder (the
    /// embedded quick start).
    pub const CONFIG_DIR: &str = "/etc/hoard";
    /// `compression_level`.
    pub const COMPRESSION_LEVEL: i32 = 3;
    /// `plugin_memory`: 512 MiB.
    pub const PLUGIN_MEMORY: u64 = 512 << 20;
    /// `plugin_deadline`: 24 h.
    pub const PLUGIN_DEADLINE: Duration = Duration::from_secs(86_400);
    /// `client_paths`: where common programs live on clients.
    pub const CLIENT_PATHS: [(&str, &str); 5] = [
        ("cat", "/bin/cat"),
        ("head", "/usr/bin/head"),
        ("rsync", "/usr/bin/rsync"),
        ("stat", "/usr/bin/stat"),
        ("tar", "/bin/tar"),
    ];
}

/// Everything needed to reach one host over ssh: the ssh client's own settings.
pub use crate::client::ssh::SshSettings;

/// One host, every setting decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedHost {
    /// The host's name (its file name without `.ron`).
    pub name: String,
    /// Where it is on the network.
    pub address: String,
    /// The transport plugin's name (whether it exists is the caller's check).
    pub transport: String,
    /// How to reach it; `None` runs programs on the server itself (only for a local address).
    pub ssh: Option<SshSettings>,
    /// What to back up: absolute paths on the client.
    pub shares: Vec<PathBuf>,
    /// Include lists by share (`"*"`: every share), as written.
    pub includes: BTreeMap<String, Vec<String>>,
    /// Exclude lists by share (`"*"`: every share), as written.
    pub excludes: BTreeMap<String, Vec<String>>,
    /// Stay on each share's file system.
    pub one_file_system: bool,
    /// A backup with no progress for this long is stopped.
    pub client_timeout: Duration,
    /// What the plugin may do; `None`: what its manifest declares, for programs in
    /// `client_paths`, no secrets, no server tools (see [`super::Config::capability_grant`]).
    pub grants: Option<GrantSettings>,
    /// Text settings handed to the plugin.
    pub plugin_settings: BTreeMap<String, String>,
    /// Scheduled, manual or off.
    pub backups: BackupMode,
    /// The user who owns the host.
    pub owner: Option<String>,
    /// Other users who may see its backups.
    pub more_users: Vec<String>,
    /// Time between full backups.
    pub full_period: Duration,
    /// Time between incremental backups.
    pub incr_period: Duration,
    /// Periods without scheduled backups once the host is usually up.
    pub blackout_periods: Vec<crate::schedule::BlackoutPeriod>,
    /// Times seen up in a row before blackouts apply.
    pub blackout_good_count: u32,
    /// Times seen down in a row before that count restarts.
    pub blackout_bad_count: u32,
    /// Which backups expire.
    pub retention: crate::retention::RetentionPolicy,
    /// Commands run around its backups and restores.
    pub hooks: crate::hooks::Hooks,
}

impl ResolvedHost {
    /// The include patterns for one share: those for every share (`"*"`), then its own.
    /// Empty means "everything".
    pub fn includes_for(&self, share: &Path) -> Vec<&str> {
        patterns_for(&self.includes, share)
    }

    /// The exclude patterns for one share: those for every share (`"*"`), then its own.
    pub fn excludes_for(&self, share: &Path) -> Vec<&str> {
        patterns_for(&self.excludes, share)
    }

    /// Whether programs run on the server itself rather than over ssh.
    pub fn is_local(&self) -> bool {
        self.ssh.is_none()
    }
}

fn patterns_for<'a>(lists: &'a BTreeMap<String, Vec<String>>, share: &Path) -> Vec<&'a str> {
    let every = lists.get("*").into_iter().flatten();
    let own = lists
        .iter()
        .filter(|(key, _)| key.as_str() != "*" && Path::new(key) == share)
        .flat_map(|(_, list)| list);
    every.chain(own).map(String::as_str).collect()
}

/// Whether an address is this machine: `localhost` or a loopback IP address.
pub fn is_local_address(address: &str) -> bool {
    address.eq_ignore_ascii_case("localhost")
        || address
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Whether `name` may name a host: letters, digits, `-`, `_`, `.`, starting with a letter or
/// digit, at most 253 characters.
pub fn is_valid_host_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= 253
        && chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// What resolving needs besides the two [`HostSettings`].
pub(crate) struct ResolveContext<'a> {
    /// The host file's name for errors (`hosts/web1.ron`).
    pub host_file: &'a Path,
    /// `hoard.ron`'s name for errors.
    pub global_file: &'a Path,
    /// The config folder, for defaults that live in it.
    pub config_dir: &'a Path,
    /// Program names known on clients.
    pub client_paths: &'a BTreeMap<String, PathBuf>,
}

/// Resolves one host, returning every problem found rather than the first.
pub(crate) fn resolve(
    name: &str,
    host: &HostSettings,
    defaults: &HostSettings,
    context: &ResolveContext<'_>,
) -> Result<ResolvedHost, Vec<ConfigError>> {
    let mut problems: Vec<ConfigError> = Vec::new();
    // The file a setting came from: the host's when it sets it, else hoard.ron.
    let origin = |set_here: bool| {
        if set_here {
            context.host_file
        } else {
            context.global_file
        }
    };
    let mut report = |file: &Path, problem: Problem| {
        problems.push(ConfigError::Invalid {
            file: file.to_path_buf(),
            problem,
        })
    };

    let address = host
        .address
        .clone()
        .or_else(|| defaults.address.clone())
        .unwrap_or_else(|| name.to_string());
    if address.trim().is_empty() {
        report(
            origin(host.address.is_some()),
            Problem::Empty { setting: "address" },
        );
    }

    let transport = match host.transport.as_ref().or(defaults.transport.as_ref()) {
        Some(t) if t.trim().is_empty() => {
            report(origin(host.transport.is_some()), Problem::EmptyTransport);
            String::new()
        }
        Some(t) => t.clone(),
        None => {
            report(context.host_file, Problem::NoTransport);
            String::new()
        }
    };

    // ssh: the host's `None` means local; its struct merges key by key over the defaults'.
    let ssh = match (&host.ssh, &defaults.ssh) {
        (Some(None), _) | (None, Some(None)) | (None, None) => None,
        (Some(Some(own)), Some(Some(base))) => {
            Some(ssh_settings(&address, own, base, context.config_dir))
        }
        (Some(Some(own)), _) => Some(ssh_settings(
            &address,
            own,
            &SshOverrides::default(),
            context.config_dir,
        )),
        (None, Some(Some(base))) => Some(ssh_settings(
            &address,
            &SshOverrides::default(),
            base,
            context.config_dir,
        )),
    };
    if let Some(ssh) = &ssh
        && ssh.user.trim().is_empty()
    {
        report(
            origin(matches!(&host.ssh, Some(Some(o)) if o.user.is_some())),
            Problem::Empty {
                setting: "ssh.user",
            },
        );
    }
    if ssh.is_none() && !address.trim().is_empty() && !is_local_address(&address) {
        report(
            context.host_file,
            Problem::RemoteWithoutSsh {
                address: address.clone(),
            },
        );
    }

    let shares: Vec<PathBuf> = host
        .shares
        .as_ref()
        .or(defaults.shares.as_ref())
        .map(|list| list.iter().map(|p| p.to_path_buf()).collect())
        .unwrap_or_default();
    let backups = host.backups.or(defaults.backups).unwrap_or_default();
    if shares.is_empty() && backups != BackupMode::Off {
        report(
            origin(host.shares.is_some() || defaults.shares.is_none()),
            Problem::NoShares,
        );
    }

    let blackout_periods = host
        .blackout_periods
        .as_ref()
        .or(defaults.blackout_periods.as_ref())
        .cloned()
        .unwrap_or_else(|| vec![crate::schedule::BlackoutPeriod::office_hours()]);
    for period in &blackout_periods {
        if let Some(reason) = period.invalid() {
            report(
                origin(host.blackout_periods.is_some()),
                Problem::InvalidBlackout { reason },
            );
        }
    }

    let hooks = host
        .hooks
        .as_ref()
        .or(defaults.hooks.as_ref())
        .cloned()
        .unwrap_or_default();
    if let Some(hook) = hooks.invalid() {
        report(origin(host.hooks.is_some()), Problem::EmptyHook { hook });
    }
    let retention_defaults = crate::retention::RetentionPolicy::default();
    let full_keep = host
        .full_keep
        .as_ref()
        .or(defaults.full_keep.as_ref())
        .cloned()
        .unwrap_or(retention_defaults.full_keep);
    if full_keep.is_empty() {
        report(origin(host.full_keep.is_some()), Problem::EmptyFullKeep);
    }
    let full_period = duration(host.full_period, defaults.full_period, builtin::FULL_PERIOD);
    let retention = crate::retention::RetentionPolicy {
        full_keep,
        full_keep_min: host
            .full_keep_min
            .or(defaults.full_keep_min)
            .unwrap_or(retention_defaults.full_keep_min),
        full_age_max: duration(
            host.full_age_max,
            defaults.full_age_max,
            retention_defaults.full_age_max,
        ),
        incr_keep: host
            .incr_keep
            .or(defaults.incr_keep)
            .unwrap_or(retention_defaults.incr_keep),
        incr_keep_min: host
            .incr_keep_min
            .or(defaults.incr_keep_min)
            .unwrap_or(retention_defaults.incr_keep_min),
        incr_age_max: duration(
            host.incr_age_max,
            defaults.incr_age_max,
            retention_defaults.incr_age_max,
        ),
        full_period,
    };

    let includes = host
        .includes
        .as_ref()
        .or(defaults.includes.as_ref())
        .cloned()
        .unwrap_or_default();
    let excludes = host
        .excludes
        .as_ref()
        .or(defaults.excludes.as_ref())
        .cloned()
        .unwrap_or_default();
    for (setting, lists, set_here) in [
        ("includes", &includes, host.includes.is_some()),
        ("excludes", &excludes, host.excludes.is_some()),
    ] {
        for share in lists.keys() {
            if share != "*" && !shares.iter().any(|s| s == Path::new(share)) {
                report(
                    origin(set_here),
                    Problem::UnknownShare {
                        setting,
                        share: share.clone(),
                    },
                );
            }
        }
    }

    let grants = match (&host.grants, &defaults.grants) {
        (Some(own), _) => own.clone(),
        (None, Some(base)) => base.clone(),
        (None, None) => None,
    };
    if let Some(grants) = &grants {
        let file = origin(host.grants.is_some());
        for program in &grants.exec {
            if !context.client_paths.contains_key(program) {
                report(
                    file,
                    Problem::UnknownProgram {
                        program: program.clone(),
                    },
                );
            }
        }
        if grants.connect.contains(&0) {
            report(file, Problem::PortZero);
        }
    }

    let owner = match (&host.owner, &defaults.owner) {
        (Some(own), _) => own.clone(),
        (None, Some(base)) => base.clone(),
        (None, None) => None,
    };

    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(ResolvedHost {
        name: name.to_string(),
        address,
        transport,
        ssh,
        shares,
        includes,
        excludes,
        one_file_system: host
            .one_file_system
            .or(defaults.one_file_system)
            .unwrap_or(builtin::ONE_FILE_SYSTEM),
        client_timeout: duration(
            host.client_timeout,
            defaults.client_timeout,
            builtin::CLIENT_TIMEOUT,
        ),
        grants,
        plugin_settings: host
            .plugin_settings
            .as_ref()
            .or(defaults.plugin_settings.as_ref())
            .cloned()
            .unwrap_or_default(),
        backups,
        owner,
        more_users: host
            .more_users
            .as_ref()
            .or(defaults.more_users.as_ref())
            .cloned()
            .unwrap_or_default(),
        full_period,
        incr_period: duration(host.incr_period, defaults.incr_period, builtin::INCR_PERIOD),
        blackout_periods,
        blackout_good_count: host
            .blackout_good_count
            .or(defaults.blackout_good_count)
            .unwrap_or(builtin::BLACKOUT_GOOD_COUNT),
        blackout_bad_count: host
            .blackout_bad_count
            .or(defaults.blackout_bad_count)
            .unwrap_or(builtin::BLACKOUT_BAD_COUNT),
        retention,
        hooks,
    })
}

fn duration(
    own: Option<super::units::ConfigDuration>,
    base: Option<super::units::ConfigDuration>,
    builtin: Duration,
) -> Duration {
    own.or(base).map(|d| d.get()).unwrap_or(builtin)
}

fn ssh_settings(
    address: &str,
    own: &SshOverrides,
    base: &SshOverrides,
    config_dir: &Path,
) -> SshSettings {
    let path = |own: &Option<AbsolutePath>, base: &Option<AbsolutePath>, file: &str| {
        own.as_ref()
            .or(base.as_ref())
            .map(|p| p.to_path_buf())
            .unwrap_or_else(|| config_dir.join(file))
    };
    SshSettings {
        address: address.to_string(),
        port: own.port.or(base.port).unwrap_or(builtin::SSH_PORT),
        user: own
            .user
            .clone()
            .or_else(|| base.user.clone())
            .unwrap_or_else(|| builtin::SSH_USER.to_string()),
        private_key: path(&own.key, &base.key, builtin::SSH_KEY_FILE),
        known_hosts: path(
            &own.known_hosts,
            &base.known_hosts,
            builtin::SSH_KNOWN_HOSTS_FILE,
        ),
        accept_new_host_keys: own
            .accept_new_host_keys
            .or(base.accept_new_host_keys)
            .unwrap_or(false),
        connect_timeout: duration(
            own.connect_timeout,
            base.connect_timeout,
            builtin::SSH_CONNECT_TIMEOUT,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_addresses() {
        for local in [
            "localhost",
            "LOCALHOST",
            "127.0.0.1",
            "127.0.1.1",
            "::1",
            "[::1]",
        ] {
            assert!(is_local_address(local), "{local}");
        }
        for remote in ["10.0.0.5", "web1", "localhost.example.com", "::2", ""] {
            assert!(!is_local_address(remote), "{remote}");
        }
    }

    #[test]
    fn host_names() {
        for good in ["web1", "db-2.example.com", "a", "x_y", "1host"] {
            assert!(is_valid_host_name(good), "{good}");
        }
        for bad in [
            "",
            "-web",
            ".hidden",
            "web 1",
            "wéb",
            "a/b",
            &"x".repeat(254),
        ] {
            assert!(!is_valid_host_name(bad), "{bad}");
        }
    }
}
