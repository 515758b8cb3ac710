//! An rsync daemon for transport tests: `rsync --daemon` (Debian's `rsync`) on a free
//! loopback port, serving one module, `data`, over a directory the test fills, with a user
//! and password required.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::{PeerError, PeerProcess, free_port, require_binary};

const RSYNC: &str = "/usr/bin/rsync";

/// The module's name.
pub const MODULE: &str = "data";

/// A running rsync daemon; stopped when dropped.
#[derive(Debug)]
pub struct RsyncdPeer {
    process: PeerProcess,
    dir: tempfile::TempDir,
    port: u16,
}

impl RsyncdPeer {
    /// Starts a daemon serving `tree` as module [`MODULE`], readable and writable by user
    /// `user` with `password` (transfers run as the daemon's own user).
    pub fn start(tree: &Path, user: &str, password: &str) -> Result<RsyncdPeer, PeerError> {
        require_binary(RSYNC, "rsync")?;
        let dir = tempfile::Builder::new()
            .prefix("hoard-rsyncd-")
            .tempdir()
            .map_err(PeerError::io("create the rsyncd peer's directory"))?;
        let root = dir.path();
        let port = free_port()?;
        let secrets = root.join("rsyncd.secrets");
        fs::write(&secrets, format!("{user}:{password}\n"))
            .map_err(PeerError::io("write rsyncd.secrets"))?;
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&secrets, fs::Permissions::from_mode(0o600))
            .map_err(PeerError::io("chmod rsyncd.secrets"))?;
        // As root, transfer as root (the default would be nobody), so every owner and mode
        // of a fixture survives, and chroot into the module: without a chroot the daemon
        // sanitizes what it receives (an absolute symlink target loses its leading `/`).
        let ids = if super::current_user()?.0 == 0 {
            "uid = root\ngid = root\nuse chroot = yes\n"
        } else {
            "use chroot = no\n"
        };
        let config = root.join("rsyncd.conf");
        fs::write(
            &config,
            format!(
                "port = {port}\naddress = 127.0.0.1\nlog file = {log}\npid file = {pid}\n{ids}\n[{MODULE}]\n    path = {path}\n    read only = no\n    list = yes\n    auth users = {user}\n    secrets file = {secrets}\n    strict modes = yes\n    munge symlinks = no\n    hosts allow = 127.0.0.1\n",
                log = root.join("rsyncd.log").display(),
                pid = root.join("rsyncd.pid").display(),
                path = tree.display(),
                secrets = secrets.display(),
            ),
        )
        .map_err(PeerError::io("write rsyncd.conf"))?;
        let log_path = root.join("rsyncd.log");
        let child = Command::new(RSYNC)
            .arg("--daemon")
            .arg("--no-detach")
            .arg(format!("--config={}", config.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(PeerError::io("spawn rsync --daemon"))?;
        let mut process = PeerProcess::new(child, "rsyncd", log_path);
        process.wait_for_port(port)?;
        Ok(RsyncdPeer { process, dir, port })
    }

    /// The port it listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The process id of the daemon.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// `rsync://USER@127.0.0.1:PORT/data/`.
    pub fn url(&self, user: &str) -> String {
        format!("rsync://{user}@127.0.0.1:{}/{MODULE}/", self.port)
    }

    /// The daemon's log file.
    pub fn log(&self) -> PathBuf {
        self.dir.path().join("rsyncd.log")
    }
}
