//! A Samba file server for SMB transport tests: `smbd` (Debian's `samba`) on a free loopback
//! port, serving one share, `share`, over a directory the test fills, to one user with a
//! password.
//!
//! The setup follows the recipe proven in `peers.md` (section 3). Everything Samba writes
//! (config, passdb, private, lock, state, cache and pid directories, logs) lives in a
//! temporary directory the peer owns, so `/var/lib/samba` is never touched. The only change
//! outside it is the unix user, which Samba requires to exist: it is created (without a home
//! and with no login shell) when missing, and kept. Files in the share are read and written as
//! that user, so the share must be readable by it (and writable, for restores). The peer
//! needs root.
//!
//! smbd runs in a process group of its own: on SIGTERM it signals its whole process group,
//! which would otherwise include the test runner.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{PeerError, PeerProcess, free_port, require_binary, run, run_with_input};

const SMBD: &str = "/usr/sbin/smbd";
const SMBPASSWD: &str = "/usr/bin/smbpasswd";
const USERADD: &str = "/usr/sbin/useradd";

/// The share's name.
const SHARE: &str = "share";

/// A running smbd on `127.0.0.1:port()` serving the share `share`; stopped (with the
/// `samba-dcerpcd` it may have started) and its directory removed on drop.
#[derive(Debug)]
pub struct SmbPeer {
    // An Option so that drop can stop smbd before samba-dcerpcd and the directory.
    process: Option<PeerProcess>,
    dir: tempfile::TempDir,
    port: u16,
    user: String,
    password: String,
}

impl SmbPeer {
    /// Writes the config in a new temporary directory, creates the unix user `user` if it
    /// does not exist, sets its Samba password to `password`, starts smbd serving
    /// `share_dir` as `share` (read and write, for `user` only) on a free loopback port and
    /// waits until it accepts connections.
    pub fn start(share_dir: &Path, user: &str, password: &str) -> Result<SmbPeer, PeerError> {
        require_binary(SMBD, "samba")?;
        require_binary(SMBPASSWD, "samba")?;
        let share_dir = fs::canonicalize(share_dir).map_err(PeerError::io(format!(
            "resolve the share directory {}",
            share_dir.display()
        )))?;
        let dir = tempfile::Builder::new()
            .prefix("hoard-smb-")
            .tempdir()
            .map_err(PeerError::io("create the smb peer's directory"))?;
        let root = dir.path();
        for sub in ["private", "lock", "state", "cache", "run", "log"] {
            fs::create_dir(root.join(sub)).map_err(PeerError::io(format!("create {sub}/")))?;
        }
        fs::set_permissions(root.join("private"), fs::Permissions::from_mode(0o700))
            .map_err(PeerError::io("chmod private/"))?;

        let port = free_port()?;
        let config = root.join("smb.conf");
        fs::write(&config, smb_conf(root, port, &share_dir, user))
            .map_err(PeerError::io("write smb.conf"))?;

        ensure_unix_user(user)?;
        set_samba_password(&config, user, password)?;

        let log_path = root.join("smbd.log");
        let log = fs::File::create(&log_path).map_err(PeerError::io("create smbd.log"))?;
        let log_err = log
            .try_clone()
            .map_err(PeerError::io("duplicate smbd.log"))?;
        let child = Command::new(SMBD)
            .args(["--foreground", "--no-process-group", "--debug-stdout", "-s"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            // smbd signals its whole process group on SIGTERM: give it its own.
            .process_group(0)
            .spawn()
            .map_err(PeerError::io("spawn smbd"))?;
        let mut process = PeerProcess::new(child, "smbd", log_path);
        process.wait_for_port(port)?;
        Ok(SmbPeer {
            process: Some(process),
            dir,
            port,
            user: user.to_owned(),
            password: password.to_owned(),
        })
    }

    /// The port it listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The share's name, `share`: clients address it as `//127.0.0.1/share`.
    pub fn share(&self) -> &'static str {
        SHARE
    }

    /// The user allowed on the share.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The user's Samba password.
    pub fn password(&self) -> &str {
        &self.password
    }

    /// smbd's log (its standard output and error, at log level 1).
    pub fn log(&self) -> PathBuf {
        self.dir.path().join("smbd.log")
    }

    /// The process id of the main smbd.
    pub fn pid(&self) -> u32 {
        self.process.as_ref().map_or(0, PeerProcess::pid)
    }
}

impl Drop for SmbPeer {
    fn drop(&mut self) {
        // smbd first, so it cannot start another samba-dcerpcd.
        drop(self.process.take());
        // samba-dcerpcd is started on demand, detached from smbd, and survives it.
        let pid_file = self.dir.path().join("run").join("samba-dcerpcd.pid");
        let Ok(text) = fs::read_to_string(&pid_file) else {
            return;
        };
        let Ok(pid) = text.trim().parse::<libc::pid_t>() else {
            return;
        };
        if pid <= 1 || !is_our_dcerpcd(pid, self.dir.path()) {
            return;
        }
        // SAFETY: kill(2) on a live process checked above to be our samba-dcerpcd.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline && is_live(pid) {
            std::thread::sleep(Duration::from_millis(20));
        }
        if is_live(pid) {
            // SAFETY: as above; it ignored SIGTERM.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
    }
}

/// smb.conf for a standalone server on `127.0.0.1:port` with every state directory under
/// `root` and one share, `share`, over `share_dir` for `user`.
fn smb_conf(root: &Path, port: u16, share_dir: &Path, user: &str) -> String {
    let d = root.display();
    format!(
        "[global]
   workgroup = WORKGROUP
   server role = standalone server
   smb ports = {port}
   interfaces = 127.0.0.1/8
   bind interfaces only = yes
   disable netbios = yes
   private dir = {d}/private
   lock directory = {d}/lock
   state directory = {d}/state
   cache directory = {d}/cache
   pid directory = {d}/run
   ncalrpc dir = {d}/run/ncalrpc
   binddns dir = {d}/private/bind-dns
   log file = {d}/log/log.%m
   log level = 1
   passdb backend = tdbsam:{d}/private/passdb.tdb
   map to guest = never
   usershare path =
   load printers = no
   printing = bsd
   printcap name = /dev/null
   disable spoolss = yes

[{SHARE}]
   path = {share}
   read only = no
   valid users = {user}
   browseable = yes
   map archive = no
",
        share = share_dir.display(),
    )
}

/// Whether the unix user `user` exists.
fn unix_user_exists(user: &str) -> Result<bool, PeerError> {
    let status = Command::new("id")
        .args(["-u", user])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(PeerError::io("run `id -u`"))?;
    Ok(status.success())
}

/// Creates the unix user `user` (no home, no login shell) unless it exists; Samba users must.
fn ensure_unix_user(user: &str) -> Result<(), PeerError> {
    if unix_user_exists(user)? {
        return Ok(());
    }
    require_binary(USERADD, "passwd")?;
    let created = run(Command::new(USERADD).args(["-M", "-s", "/usr/sbin/nologin", user]));
    // Another peer may have created it in the meantime.
    match created {
        Err(_) if unix_user_exists(user)? => Ok(()),
        other => other,
    }
}

/// Adds `user` to the peer's passdb with `password` (`smbpasswd -s -a`, which reads the
/// password twice from standard input).
fn set_samba_password(config: &Path, user: &str, password: &str) -> Result<(), PeerError> {
    run_with_input(
        Command::new(SMBPASSWD)
            .arg("-c")
            .arg(config)
            .args(["-s", "-a", user]),
        format!("{password}\n{password}\n").as_bytes(),
    )
}

/// Whether `pid` is a process that has not exited (zombies count as exited); the NFS peer
/// uses it too.
pub(super) fn is_live(pid: libc::pid_t) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name, which is in parentheses.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next())
            .is_some_and(|state| state != 'Z' && state != 'X'),
        Err(_) => false,
    }
}

/// Whether `pid` is a live samba-dcerpcd of the peer whose directory is `root` (its command
/// line names the peer's smb.conf), so a recycled PID is never signalled.
fn is_our_dcerpcd(pid: libc::pid_t, root: &Path) -> bool {
    if !is_live(pid) {
        return false;
    }
    let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let cmdline = String::from_utf8_lossy(&cmdline);
    comm.starts_with("samba-dcerpcd") && cmdline.contains(&*root.to_string_lossy())
}
