//! Real servers on loopback for tests: the one place every hoard test gets its peers from.
//!
//! Each kind of peer ([`SshdPeer`], [`RsyncdPeer`], [`SmtpPeer`], [`HttpSinkPeer`],
//! [`SmbPeer`], [`NfsPeer`]) lives in its own submodule and is built from the small shared
//! part here: a free loopback port ([`free_port`]), a check that the binaries a peer needs are
//! installed ([`require_binary`]), a wait until the server accepts connections
//! ([`wait_for_port`]) and a guard that stops the server process by its PID when the peer is
//! dropped ([`PeerProcess`]).
//!
//! A peer owns a temporary directory with everything it generated (keys, config, log); the
//! directory is removed when the peer is dropped, after the process has been stopped.

mod http;
mod nfs;
mod rsyncd;
mod smb;
mod smtp;
mod sshd;

pub use http::{HttpSinkPeer, ReceivedRequest};
pub use nfs::NfsPeer;
pub use rsyncd::{MODULE as RSYNCD_MODULE, RsyncdPeer};
pub use smb::SmbPeer;
pub use smtp::SmtpPeer;
pub use sshd::SshdPeer;

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// The script that installs every Debian package the peers need.
pub const INSTALL_SCRIPT: &str = "conformance/scripts/install-peers.sh";

/// How long a peer may take from spawn until it accepts connections.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a test peer could not be started.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    /// A program the peer needs is not installed.
    #[error("{binary} not found: install the Debian package `{package}` (or run {INSTALL_SCRIPT})")]
    MissingBinary {
        /// The program looked for.
        binary: String,
        /// The Debian package that provides it.
        package: String,
    },
    /// A file or directory of the peer could not be prepared.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A helper program (such as `ssh-keygen` or `sshd -t`) failed.
    #[error("`{command}` failed: {detail}")]
    Command {
        /// The command line that failed.
        command: String,
        /// Its exit status and standard error.
        detail: String,
    },
    /// The server was spawned but did not accept connections in time.
    #[error("{peer} did not come up on 127.0.0.1:{port}: {detail}")]
    NotReady {
        /// Which peer.
        peer: String,
        /// The port it was meant to listen on.
        port: u16,
        /// What was observed (exit status, last log lines).
        detail: String,
    },
}

impl PeerError {
    /// Wraps an I/O error with a description of the step that failed.
    pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> PeerError {
        let what = what.into();
        move |source| PeerError::Io { what, source }
    }
}

/// Returns a loopback TCP port that was free a moment ago (the OS picks it).
///
/// There is a short window in which another process could take it; peers bind it right
/// after, and a collision shows as [`PeerError::NotReady`].
pub fn free_port() -> Result<u16, PeerError> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .map_err(PeerError::io("bind a free loopback port"))?;
    let port = listener
        .local_addr()
        .map_err(PeerError::io("read the free port"))?
        .port();
    Ok(port)
}

/// Fails with [`PeerError::MissingBinary`] unless `binary` (an absolute path) exists.
pub fn require_binary(binary: &str, package: &str) -> Result<(), PeerError> {
    if Path::new(binary).is_file() {
        Ok(())
    } else {
        Err(PeerError::MissingBinary {
            binary: binary.to_owned(),
            package: package.to_owned(),
        })
    }
}

/// Runs a helper program to completion and fails with its stderr if it does not succeed.
pub fn run(command: &mut Command) -> Result<(), PeerError> {
    run_with_input(command, &[])
}

/// Runs a helper program with `input` on its standard input (none when empty), to
/// completion, and fails with its stderr if it does not succeed.
pub fn run_with_input(command: &mut Command, input: &[u8]) -> Result<(), PeerError> {
    use std::io::Write as _;
    use std::process::Stdio;
    let line = format!("{command:?}");
    let mut child = command
        .stdin(if input.is_empty() {
            Stdio::null()
        } else {
            Stdio::piped()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(PeerError::io(format!("run {line}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input)
            .map_err(PeerError::io(format!("write the input of {line}")))?;
    }
    let output = child
        .wait_with_output()
        .map_err(PeerError::io(format!("wait for {line}")))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(PeerError::Command {
            command: line,
            detail: format!(
                "{}: {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            ),
        })
    }
}

/// Generates a new ed25519 key pair without passphrase at `path` (and `path.pub`).
pub fn generate_ed25519_key(path: &Path, comment: &str) -> Result<(), PeerError> {
    require_binary("/usr/bin/ssh-keygen", "openssh-client")?;
    run(Command::new("/usr/bin/ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
        .arg(path))
}

/// A server process started by a peer, stopped (SIGTERM, then SIGKILL) and reaped on drop.
#[derive(Debug)]
pub struct PeerProcess {
    child: Child,
    name: String,
    log: PathBuf,
}

impl PeerProcess {
    /// Takes charge of a spawned server; `log` is where its output goes (used in errors).
    pub fn new(child: Child, name: impl Into<String>, log: PathBuf) -> Self {
        Self {
            child,
            name: name.into(),
            log,
        }
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until the server accepts TCP connections on `127.0.0.1:port`, failing early if
    /// the process exits, and after [`READY_TIMEOUT`] otherwise.
    pub fn wait_for_port(&mut self, port: u16) -> Result<(), PeerError> {
        let started = Instant::now();
        loop {
            if wait_for_port(port, Duration::from_millis(50)) {
                return Ok(());
            }
            let exited = self
                .child
                .try_wait()
                .map_err(PeerError::io(format!("poll {}", self.name)))?;
            if exited.is_some() || started.elapsed() > READY_TIMEOUT {
                let status = exited.map_or_else(
                    || format!("still not listening after {READY_TIMEOUT:?}"),
                    |s| format!("exited with {s}"),
                );
                return Err(PeerError::NotReady {
                    peer: self.name.clone(),
                    port,
                    detail: format!("{status}; log {}:\n{}", self.log.display(), self.log_tail()),
                });
            }
        }
    }

    /// The last lines of the server's log, for error messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for PeerProcess {
    fn drop(&mut self) {
        let pid = self.child.id();
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        if let Ok(pid) = libc::pid_t::try_from(pid) {
            // SAFETY: kill(2) with a PID we spawned ourselves and have not reaped yet.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            match self.child.try_wait() {
                Ok(Some(_)) | Err(_) => return,
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `127.0.0.1:port` until a TCP connect succeeds; false after `timeout`.
pub fn wait_for_port(port: u16, timeout: Duration) -> bool {
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let started = Instant::now();
    loop {
        if TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok() {
            return true;
        }
        if started.elapsed() >= timeout {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The effective user id of this process and its name.
pub fn current_user() -> Result<(u32, String), PeerError> {
    // SAFETY: geteuid(2) has no preconditions and cannot fail.
    let uid = unsafe { libc::geteuid() };
    let output = Command::new("id")
        .arg("-un")
        .output()
        .map_err(PeerError::io("run `id -un`"))?;
    let name = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    if !output.status.success() || name.is_empty() {
        return Err(PeerError::Command {
            command: "id -un".into(),
            detail: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        });
    }
    Ok((uid, name))
}
