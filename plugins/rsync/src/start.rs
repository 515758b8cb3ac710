//! From a job to a running session: the settings the admin gave, the connection (an exec'd
//! `rsync --server` or an rsync daemon), the session setup, and the remote rsync's exit
//! status at the end.
//!
//! Settings (all optional): `port` (an rsync daemon on this port; the share is then
//! `MODULE/PATH`), `daemon` (`true`: a daemon on port 873), `secret` (the name of the
//! daemon secret the host holds, default `rsyncd`), `protocol` (29, 30 or 31, default 31),
//! `checksum` (the checksums to offer, most preferred first, e.g. `md5`), `xattrs`
//! (`false`: leave extended attributes out).

use hoard_plugin_sdk::transport::hoard::plugin::client;
use hoard_plugin_sdk::transport::hoard::plugin::job;
use hoard_plugin_sdk::transport::hoard::plugin::process::{ExitStatus, Process};
use hoard_plugin_sdk::transport::hoard::plugin::types::{BackupJob, Error, JobSummary, Setting};

use crate::checksum::Algorithm;
use crate::conn::Conn;
use crate::error::{client as client_error, other};
use crate::session::{NEWEST_PROTOCOL, OLDEST_PROTOCOL, Session, Wanted, setup};

/// The secret a daemon password is held under unless `secret` names another.
pub const DEFAULT_SECRET: &str = "rsyncd";

/// The admin's settings for this plugin.
#[derive(Debug, Clone)]
pub struct Settings {
    /// A daemon's port, when the client runs an rsync daemon.
    pub daemon_port: Option<u16>,
    /// The daemon secret's name.
    pub secret: String,
    /// What to ask of the session.
    pub wanted: Wanted,
}

fn setting<'a>(settings: &'a [Setting], name: &str) -> Option<&'a str> {
    settings
        .iter()
        .find(|s| s.name == name)
        .map(|s| s.value.as_str())
}

impl Settings {
    /// Reads the settings; a value that makes no sense is an error naming it.
    pub fn parse(settings: &[Setting], one_file_system: bool) -> Result<Settings, Error> {
        let daemon_port = match (setting(settings, "port"), setting(settings, "daemon")) {
            (Some(port), _) => Some(
                port.parse::<u16>()
                    .map_err(|_| other(format!("rsync setting port = {port:?}: not a port")))?,
            ),
            (None, Some("true")) => Some(873),
            (None, Some("false") | None) => None,
            (None, Some(v)) => {
                return Err(other(format!(
                    "rsync setting daemon = {v:?}: true or false"
                )));
            }
        };
        let protocol = match setting(settings, "protocol") {
            None => NEWEST_PROTOCOL,
            Some(v) => v
                .parse::<i32>()
                .ok()
                .filter(|p| (OLDEST_PROTOCOL..=NEWEST_PROTOCOL).contains(p))
                .ok_or_else(|| {
                    other(format!(
                        "rsync setting protocol = {v:?}: {OLDEST_PROTOCOL} to {NEWEST_PROTOCOL}"
                    ))
                })?,
        };
        let checksums = match setting(settings, "checksum") {
            None => Algorithm::PREFERENCE.to_vec(),
            Some(list) => list
                .split([' ', ','])
                .filter(|n| !n.is_empty())
                .map(|n| {
                    Algorithm::by_name(n)
                        .ok_or_else(|| other(format!("rsync setting checksum: unknown {n:?}")))
                })
                .collect::<Result<Vec<_>, _>>()?,
        };
        if checksums.is_empty() {
            return Err(other("rsync setting checksum is empty"));
        }
        let xattrs = setting(settings, "xattrs") != Some("false");
        Ok(Settings {
            daemon_port,
            secret: setting(settings, "secret")
                .unwrap_or(DEFAULT_SECRET)
                .to_owned(),
            wanted: Wanted {
                protocol,
                checksums,
                xattrs,
                one_file_system,
            },
        })
    }
}

/// A session and, over ssh, the remote rsync process.
pub struct Started {
    /// The set-up session.
    pub session: Session,
    /// The remote `rsync --server` (none for a daemon).
    pub process: Option<Process>,
}

/// Opens the connection and sets up the session. `server_args` are the arguments after
/// `rsync` (`--server`, ...), `path` the share path as the server names it.
pub fn open(settings: &Settings, server_args: &[Vec<u8>], share: &[u8]) -> Result<Started, Error> {
    match settings.daemon_port {
        None => {
            let mut argv = vec![b"rsync".to_vec()];
            argv.extend(server_args.iter().cloned());
            argv.push(b".".to_vec());
            argv.push(with_slash(share));
            let spawned = client::exec(&argv)?;
            let conn = Conn::new(spawned.stdout, spawned.stdin, Some(spawned.stderr));
            let session = setup(conn, &settings.wanted, None)?;
            Ok(Started {
                session,
                process: Some(spawned.process),
            })
        }
        Some(port) => {
            let connection = client::connect(port)?;
            let mut conn = Conn::new(connection.input, connection.output, None);
            let share_text = String::from_utf8_lossy(share).into_owned();
            let trimmed = share_text.trim_start_matches('/');
            let module = trimmed.split('/').next().unwrap_or("");
            if module.is_empty() {
                return Err(other(format!(
                    "share {share_text:?}: an rsync daemon share is MODULE or MODULE/PATH"
                )));
            }
            let mut args = server_args.to_vec();
            args.push(b".".to_vec());
            args.push(with_slash(trimmed.as_bytes()));
            let remote = crate::daemon::open_module(
                &mut conn,
                module,
                &settings.secret,
                settings.wanted.protocol,
                &args,
            )?;
            let session = setup(conn, &settings.wanted, Some(remote))?;
            Ok(Started {
                session,
                process: None,
            })
        }
    }
}

fn with_slash(path: &[u8]) -> Vec<u8> {
    let mut out = path.to_vec();
    if !out.ends_with(b"/") {
        out.push(b'/');
    }
    out
}

/// How the remote rsync ended: 0 is success, 23 and 24 (some files could not be read, or
/// vanished) make the backup partial, anything else fails it.
pub fn judge_exit(process: Option<Process>, summary: &mut JobSummary) -> Result<(), Error> {
    let Some(process) = process else {
        return Ok(());
    };
    match process.wait()? {
        ExitStatus::Exited(0) => Ok(()),
        ExitStatus::Exited(code @ (23 | 24)) => {
            job::log(
                job::Level::Warning,
                &format!("the client's rsync exited with {code}: some files could not be read"),
            );
            summary.partial = true;
            Ok(())
        }
        ExitStatus::Exited(code) => Err(client_error(format!(
            "the client's rsync exited with code {code} (see the job log)"
        ))),
        ExitStatus::Killed(signal) => Err(client_error(format!(
            "the client's rsync was killed by signal {signal}"
        ))),
        ExitStatus::Unknown => Err(client_error(
            "the client's rsync ended without an exit status",
        )),
    }
}

/// A backup job from start to end.
pub fn backup(job: BackupJob) -> Result<JobSummary, Error> {
    let settings = Settings::parse(&job.settings, job.one_file_system)?;
    let args = vec![
        b"--server".to_vec(),
        b"--sender".to_vec(),
        settings.wanted.option_cluster(),
    ];
    let rules = crate::filter::rules(&job.includes, &job.excludes);
    let started = open(&settings, &args, &job.share)?;
    let mut session = started.session;
    let result = crate::backup::receive(&mut session, job.level, job.has_reference, &rules);
    let (mut summary, counts) = match result {
        Ok(done) => done,
        Err(e) => {
            // Whatever the remote rsync said last explains more than the protocol error.
            drop(session);
            if let Some(process) = started.process {
                let _ = process.wait();
            }
            return Err(e);
        }
    };
    job::log(
        job::Level::Info,
        &format!(
            "rsync: {} bytes received from the client, {} sent; {} bytes literal, {} matched from the reference, {} files unchanged",
            session.conn.bytes_in,
            session.conn.bytes_out,
            counts.literal,
            counts.matched,
            counts.kept
        ),
    );
    drop(session);
    judge_exit(started.process, &mut summary)?;
    Ok(summary)
}
