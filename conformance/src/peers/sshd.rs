//! An OpenSSH server on a free loopback port, with its own host key, client key and a pinned
//! `known_hosts`, for tests of everything that runs over ssh.
//!
//! The configuration follows the recipe proven in `peers.md` (section 1): keys live in a
//! temporary directory, so `StrictModes` is off; `UsePAM no`; one authorized-keys file per
//! user (`authorized_keys.%u`), readable by that user; as root, sshd needs its compiled-in
//! privilege-separation directory `/run/sshd`. Logins are by key only, as the user running
//! the tests (`root` when that is root, else only that user: an unprivileged sshd cannot
//! switch users).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::{
    PeerError, PeerProcess, current_user, free_port, generate_ed25519_key, require_binary, run,
};

const SSHD: &str = "/usr/sbin/sshd";

/// A running `sshd` on `127.0.0.1:port()`; stopped and its directory removed on drop.
#[derive(Debug)]
pub struct SshdPeer {
    // Field order matters: the process is stopped before the directory is removed.
    process: PeerProcess,
    dir: tempfile::TempDir,
    port: u16,
    user: String,
}

impl SshdPeer {
    /// Generates keys and config in a new temporary directory, starts sshd on a free
    /// loopback port and waits until it accepts connections.
    pub fn start() -> Result<SshdPeer, PeerError> {
        require_binary(SSHD, "openssh-server")?;
        let (uid, user) = current_user()?;
        let dir = tempfile::Builder::new()
            .prefix("hoard-sshd-")
            .tempdir()
            .map_err(PeerError::io("create the sshd peer directory"))?;
        let root = dir.path();

        generate_ed25519_key(&root.join("host_ed25519"), "hoard-peer-host")?;
        generate_ed25519_key(&root.join("client_ed25519"), "hoard-peer-client")?;
        let client_pub = read(&root.join("client_ed25519.pub"))?;
        let authorized = root.join(format!("authorized_keys.{user}"));
        write(&authorized, &client_pub)?;
        // sshd opens the file as the target user: it must be readable by that user.
        set_mode(&authorized, 0o644)?;

        let port = free_port()?;
        let host_pub = read(&root.join("host_ed25519.pub"))?;
        write(
            &root.join("known_hosts"),
            &format!("[127.0.0.1]:{port} {}\n", key_fields(&host_pub)),
        )?;

        let config = root.join("sshd_config");
        write(&config, &sshd_config(root, port, uid == 0))?;
        if uid == 0 {
            // The privilege-separation directory is compiled into sshd.
            fs::create_dir_all("/run/sshd").map_err(PeerError::io("create /run/sshd"))?;
        }
        run(Command::new(SSHD).arg("-t").arg("-f").arg(&config))?;

        let log_path = root.join("sshd.log");
        let log = fs::File::create(&log_path).map_err(PeerError::io("create sshd.log"))?;
        let child = Command::new(SSHD)
            .arg("-D")
            .arg("-e")
            .arg("-f")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(PeerError::io(format!("spawn {SSHD}")))?;
        let mut process = PeerProcess::new(child, "sshd", log_path);
        process.wait_for_port(port)?;
        tracing::debug!(port, pid = process.pid(), dir = %root.display(), "sshd peer up");
        Ok(SshdPeer {
            process,
            dir,
            port,
            user,
        })
    }

    /// The listening sshd's process id. Each session's sshd and the programs it ran are
    /// reaped by it, so their CPU time adds up in its children's counters
    /// (`/proc/PID/stat`): the client side's cost in a loopback benchmark.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// The address sshd listens on.
    pub fn address(&self) -> &'static str {
        "127.0.0.1"
    }

    /// The port sshd listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The user whose login the client key is authorized for.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The private key (OpenSSH format, no passphrase) that may log in as [`user`](Self::user).
    pub fn client_key(&self) -> PathBuf {
        self.dir.path().join("client_ed25519")
    }

    /// A `known_hosts` file holding exactly this server's host key for `[127.0.0.1]:port`.
    pub fn known_hosts(&self) -> PathBuf {
        self.dir.path().join("known_hosts")
    }

    /// The server's public host key, as the `ssh-ed25519 AAAA…` fields of a known_hosts line.
    pub fn host_key_line(&self) -> Result<String, PeerError> {
        Ok(key_fields(&read(
            &self.dir.path().join("host_ed25519.pub"),
        )?))
    }

    /// The peer's directory: keys, `sshd_config`, `sshd.log`.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The last lines of sshd's log, for diagnosing a failed test.
    pub fn log_tail(&self) -> String {
        self.process.log_tail()
    }
}

fn sshd_config(dir: &Path, port: u16, as_root: bool) -> String {
    let dir = dir.display();
    let root_login = if as_root {
        "PermitRootLogin prohibit-password\n"
    } else {
        ""
    };
    format!(
        "Port {port}
ListenAddress 127.0.0.1
HostKey {dir}/host_ed25519
PidFile {dir}/sshd.pid
AuthorizedKeysFile {dir}/authorized_keys.%u
# keys live in a temporary directory: StrictModes would reject the path
StrictModes no
{root_login}PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
X11Forwarding no
AllowTcpForwarding no
PrintMotd no
LogLevel VERBOSE
"
    )
}

/// `type base64` of an OpenSSH public key line, without its comment.
fn key_fields(public_key: &str) -> String {
    public_key
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

fn read(path: &Path) -> Result<String, PeerError> {
    fs::read_to_string(path).map_err(PeerError::io(format!("read {}", path.display())))
}

fn write(path: &Path, text: &str) -> Result<(), PeerError> {
    fs::write(path, text).map_err(PeerError::io(format!("write {}", path.display())))
}

fn set_mode(path: &Path, mode: u32) -> Result<(), PeerError> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(PeerError::io(format!("chmod {}", path.display())))
}
