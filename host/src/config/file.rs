//! The config files as written: [`GlobalSettings`] is `hoard.ron`, [`HostSettings`] is one
//! `hosts/NAME.ron` (and the `defaults` in `hoard.ron`). Every struct refuses unknown keys, so
//! a typo is an error, and every value that has a form (paths, durations, sizes, the
//! compression level) checks it while parsing, so its error carries a line and column.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Deref;
use std::path::{Path, PathBuf};

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::units::{ByteSize, ConfigDuration};

/// `hoard.ron`: server-wide settings and the defaults of every host. Every key may be left
/// out.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GlobalSettings {
    /// Where the pool lives (default `/var/lib/hoard/pool`).
    pub pool: Option<AbsolutePath>,
    /// Where plugin components are loaded from (default `<config folder>/plugins`).
    pub plugin_dir: Option<AbsolutePath>,
    /// Where compiled plugins are cached (default `<pool>/../cache`).
    pub cache_dir: Option<AbsolutePath>,
    /// zstd level for the pool, 1 to 19 (default 3).
    pub compression_level: Option<CompressionLevel>,
    /// Memory one plugin instance may use (default 512 MiB).
    pub plugin_memory: Option<ByteSize>,
    /// Wall-clock limit of one plugin call (default 24 h).
    pub plugin_deadline: Option<ConfigDuration>,
    /// Program name → absolute path on clients, merged over the built-in table (`tar`,
    /// `rsync`, `cat`, `stat`, `head`).
    pub client_paths: BTreeMap<String, AbsolutePath>,
    /// Settings every host gets unless its own file says otherwise.
    pub defaults: HostSettings,
    /// The server's schedule and limits (`hoard serve`).
    pub server: ServerSettings,
    /// Who is told about trouble, and through which notifier plugins.
    pub notify: NotifySettings,
}

/// The `notify` section of `hoard.ron`: notifier plugins and the addresses they write to.
/// Defaults are BackupPC's.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NotifySettings {
    /// The notifier plugins events go through; none by default.
    pub notifiers: Vec<NotifierSettings>,
    /// Where the admin's messages go (`EMailAdminUserName`).
    pub admin_email: Option<String>,
    /// The sender of every message (`EMailFromUserName`, default `hoard@<host name>`).
    pub email_from: Option<String>,
    /// The domain added to owner names without one (`EMailUserDestDomain`).
    pub email_user_dest_domain: Option<String>,
    /// A host not backed up for this many days tells its owner
    /// (`EMailNotifyOldBackupDays`, 7).
    pub email_notify_old_backup_days: Option<f64>,
    /// At most one message of a kind per host per this many days (`EMailNotifyMinDays`,
    /// 2.5).
    pub email_notify_min_days: Option<f64>,
}

/// One notifier: a plugin and where it may send.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifierSettings {
    /// The plugin's name (`notify-email`, `notify-webhook`, or one in the plugin folder).
    pub plugin: String,
    /// `host:port` of its TCP endpoint (an SMTP relay).
    #[serde(default)]
    pub endpoint: Option<String>,
    /// The URL it POSTs to.
    #[serde(default)]
    pub url: Option<String>,
    /// Credentials for the relay (`AUTH`), granted as the plugin's `smtp` secret.
    #[serde(default)]
    pub secret: Option<SecretSettings>,
}

/// The `server` section of `hoard.ron`: when the scheduler wakes up and what limits it
/// keeps. Every key may be left out; the defaults are BackupPC's.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSettings {
    /// Hours of the day the scheduler wakes up, fractional allowed; the first one listed
    /// also runs the nightly maintenance (`WakeupSchedule`, default 1 to 23).
    pub wakeup_schedule: Option<Vec<f64>>,
    /// Scheduled backups running at once (`MaxBackups`, 4).
    pub max_backups: Option<usize>,
    /// Backups users asked for running at once (`MaxUserBackups`, 4).
    pub max_user_backups: Option<usize>,
    /// Scheduled backups are refused while the pool's disk is fuller than this percentage
    /// (`DfMaxUsagePct`, 95).
    pub df_max_usage_pct: Option<f64>,
    /// Longest round trip of the reachability check (`PingMaxMsec`, 20 ms; a TCP connect to
    /// the transport's port here).
    pub ping_max_rtt: Option<ConfigDuration>,
    /// The server's control socket (default `<pool>/control.sock`).
    pub control_socket: Option<AbsolutePath>,
    /// Percentage of stored objects the nightly maintenance re-reads and re-hashes
    /// (default 1).
    pub nightly_check_pct: Option<u8>,
}

/// One host's settings as written (`hosts/NAME.ron`), or the `defaults` of `hoard.ron`. A key
/// left out is taken from the defaults, then from the built-in defaults; a key written
/// replaces the default as a whole, except `ssh`, whose keys are merged one by one.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HostSettings {
    /// Network address (default: the host's name).
    pub address: Option<String>,
    /// The transport plugin's name.
    pub transport: Option<String>,
    /// How to reach the host: `None` here means "run programs on the server itself", a
    /// struct means ssh; left out, the default applies.
    #[serde(deserialize_with = "written")]
    pub ssh: Option<Option<SshOverrides>>,
    /// Absolute paths to back up.
    pub shares: Option<Vec<AbsolutePath>>,
    /// Per share (or `"*"` for every share): what to back up inside it.
    pub includes: Option<BTreeMap<String, Vec<String>>>,
    /// Per share (or `"*"` for every share): what to leave out.
    pub excludes: Option<BTreeMap<String, Vec<String>>>,
    /// Stay on the share's file system.
    pub one_file_system: Option<bool>,
    /// A backup with no progress for this long is stopped.
    pub client_timeout: Option<ConfigDuration>,
    /// What the transport plugin may do: `None` here means "what its manifest declares, for
    /// programs in `client_paths`, no secrets and no server tools"; left out, the default
    /// applies.
    #[serde(deserialize_with = "written")]
    pub grants: Option<Option<GrantSettings>>,
    /// Text settings handed to the plugin.
    pub plugin_settings: Option<BTreeMap<String, String>>,
    /// Whether backups run on schedule, only on request, or not at all.
    pub backups: Option<BackupMode>,
    /// The user who owns the host (sees its backups, gets its e-mail).
    #[serde(deserialize_with = "written")]
    pub owner: Option<Option<String>>,
    /// Other users who may see and restore its backups.
    pub more_users: Option<Vec<String>>,
    /// Time between full backups.
    pub full_period: Option<ConfigDuration>,
    /// Time between incremental backups.
    pub incr_period: Option<ConfigDuration>,
    /// When this host, once usually up, is not backed up on schedule (`BlackoutPeriods`).
    pub blackout_periods: Option<Vec<crate::schedule::BlackoutPeriod>>,
    /// Times in a row the host must be seen up before blackouts apply (`BlackoutGoodCnt`, 7).
    pub blackout_good_count: Option<u32>,
    /// Times in a row the host must be seen down before that count restarts
    /// (`BlackoutBadCnt`, 3).
    pub blackout_bad_count: Option<u32>,
    /// Fulls kept: entry n is how many at an interval of 2^n full periods, not counting the
    /// newest backup (`FullKeepCnt`, `[1]`).
    pub full_keep: Option<Vec<u32>>,
    /// Fulls kept however old (`FullKeepCntMin`, 1).
    pub full_keep_min: Option<u32>,
    /// Fulls older than this may expire beyond `full_keep_min` (`FullAgeMax`, `"180d"`).
    pub full_age_max: Option<ConfigDuration>,
    /// Incrementals kept (`IncrKeepCnt`, 6).
    pub incr_keep: Option<u32>,
    /// Commands run around backups and restores (`DumpPreUserCmd` and the like).
    pub hooks: Option<crate::hooks::Hooks>,
    /// Incrementals kept however old (`IncrKeepCntMin`, 1).
    pub incr_keep_min: Option<u32>,
    /// Incrementals older than this may expire beyond `incr_keep_min` (`IncrAgeMax`,
    /// `"30d"`).
    pub incr_age_max: Option<ConfigDuration>,
}

/// The `ssh` settings of a host or of the defaults, every key optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SshOverrides {
    /// The user to log in as (default `root`).
    pub user: Option<String>,
    /// The port (default 22).
    pub port: Option<u16>,
    /// The private key (default `<config folder>/id_ed25519`).
    pub key: Option<AbsolutePath>,
    /// The known-hosts file (default `<config folder>/known_hosts`).
    pub known_hosts: Option<AbsolutePath>,
    /// Trust and record a host key seen for the first time (default false).
    pub accept_new_host_keys: Option<bool>,
    /// How long to wait for the connection (default 30 s).
    pub connect_timeout: Option<ConfigDuration>,
}

/// What a host's transport plugin may do, beyond computing: the programs it may run on the
/// client, the client ports it may connect to, the server tools it may run and the secrets
/// it may use. Anything not listed is refused.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct GrantSettings {
    /// Programs, by name; each must be in `client_paths`.
    pub exec: Vec<String>,
    /// TCP ports of the client.
    pub connect: Vec<u16>,
    /// Tools on the server: name → absolute path.
    pub server_tools: BTreeMap<String, AbsolutePath>,
    /// Secrets, by the name the plugin asks for.
    pub secrets: BTreeMap<String, SecretSettings>,
}

/// A secret the host holds for a plugin. The password stays in its file until a job needs
/// it ([`SecretSettings::read`]), so it is never part of the config in memory.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SecretSettings {
    /// The user name.
    pub user: String,
    /// The file holding the password (one line; a trailing newline is dropped).
    pub password_file: AbsolutePath,
    /// A domain or workgroup, for protocols that have one.
    #[serde(default)]
    pub domain: Option<String>,
}

/// BackupPC's `BackupsDisable`: 0, 1, 2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BackupMode {
    /// Backed up on schedule, and on request (`BackupsDisable = 0`).
    #[default]
    Scheduled,
    /// Backed up only on request (`BackupsDisable = 1`).
    Manual,
    /// Never backed up; its old backups stay browsable (`BackupsDisable = 2`).
    Off,
}

impl BackupMode {
    const NAMES: [(&'static str, BackupMode); 3] = [
        ("scheduled", BackupMode::Scheduled),
        ("manual", BackupMode::Manual),
        ("off", BackupMode::Off),
    ];

    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            BackupMode::Scheduled => "scheduled",
            BackupMode::Manual => "manual",
            BackupMode::Off => "off",
        }
    }
}

impl fmt::Display for BackupMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for BackupMode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for BackupMode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ModeVisitor;
        impl Visitor<'_> for ModeVisitor {
            type Value = BackupMode;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("one of \"scheduled\", \"manual\", \"off\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                BackupMode::NAMES
                    .iter()
                    .find(|(name, _)| *name == v)
                    .map(|(_, mode)| *mode)
                    .ok_or_else(|| {
                        E::custom(format!(
                            "expected \"scheduled\", \"manual\" or \"off\", found {v:?}"
                        ))
                    })
            }
        }
        deserializer.deserialize_str(ModeVisitor)
    }
}

/// A path that must be absolute (share paths, keys, the pool): a relative one is refused
/// where it is written, since what it would be relative to is a guess.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AbsolutePath(PathBuf);

impl AbsolutePath {
    /// `path`, if it is absolute.
    pub fn new(path: impl Into<PathBuf>) -> Option<AbsolutePath> {
        let path = path.into();
        path.is_absolute().then_some(AbsolutePath(path))
    }

    /// The path.
    pub fn into_path_buf(self) -> PathBuf {
        self.0
    }
}

impl Deref for AbsolutePath {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for AbsolutePath {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Serialize for AbsolutePath {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for AbsolutePath {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PathVisitor;
        impl Visitor<'_> for PathVisitor {
            type Value = AbsolutePath;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an absolute path like \"/etc/hoard/id_ed25519\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                AbsolutePath::new(v).ok_or_else(|| {
                    E::custom(format!(
                        "expected an absolute path (starting with `/`), found {v:?}"
                    ))
                })
            }
        }
        deserializer.deserialize_str(PathVisitor)
    }
}

/// A zstd compression level, 1 to 19.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompressionLevel(i32);

impl CompressionLevel {
    /// The lowest level.
    pub const MIN: i32 = 1;
    /// The highest level (zstd's `--ultra` levels are not offered).
    pub const MAX: i32 = 19;

    /// `level`, if it is in range.
    pub fn new(level: i32) -> Option<CompressionLevel> {
        (Self::MIN..=Self::MAX)
            .contains(&level)
            .then_some(CompressionLevel(level))
    }

    /// The level.
    pub fn get(self) -> i32 {
        self.0
    }
}

impl Default for CompressionLevel {
    fn default() -> Self {
        CompressionLevel(3)
    }
}

impl<'de> Deserialize<'de> for CompressionLevel {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct LevelVisitor;
        impl LevelVisitor {
            fn refuse<E: de::Error>(found: impl fmt::Display) -> E {
                E::custom(format!(
                    "expected a compression level from {} to {}, found {found}",
                    CompressionLevel::MIN,
                    CompressionLevel::MAX
                ))
            }
        }
        impl Visitor<'_> for LevelVisitor {
            type Value = CompressionLevel;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a compression level from 1 to 19")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                i32::try_from(v)
                    .ok()
                    .and_then(CompressionLevel::new)
                    .ok_or_else(|| Self::refuse(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                i32::try_from(v)
                    .ok()
                    .and_then(CompressionLevel::new)
                    .ok_or_else(|| Self::refuse(v))
            }
        }
        deserializer.deserialize_i32(LevelVisitor)
    }
}

/// For a setting whose `None` means something (`ssh: None` is "run locally"): a key written
/// is `Some(value)`, `None` included; a key left out stays `None` (through `#[serde(default)]`).
fn written<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}
