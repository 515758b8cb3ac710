//! How the host reaches a backup client: running a program on it and opening TCP to it.
//!
//! A [`ClientConnector`] is built from a host's config (the server itself for `localhost`,
//! or ssh with a key). It hands out [`RemoteProcess`]es whose stdio are plain async byte
//! streams: nothing is buffered whole, so a 20 GiB `tar` stream runs in constant memory.
//! Plugins never see this layer; `plugin::capability` wraps it behind the config's grants.

pub mod local;
pub mod ssh;
mod stderr;

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};

/// Why a client could not be reached or a program could not be run on it.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot connect to {address}: {source}")]
    Connect {
        address: String,
        source: std::io::Error,
    },
    #[error("ssh to {address}: {message}")]
    Ssh { address: String, message: String },
    #[error(
        "host key of {address} does not match {known_hosts}: possible man-in-the-middle, refusing"
    )]
    HostKeyChanged {
        address: String,
        known_hosts: String,
    },
    #[error("host key of {address} is not in {known_hosts} (set accept_new_host_keys to learn it)")]
    HostKeyUnknown {
        address: String,
        known_hosts: String,
    },
    #[error("ssh authentication as {user}@{address} with key {key} was refused")]
    AuthRefused {
        user: String,
        address: String,
        key: String,
    },
    #[error("cannot read ssh key {path}: {message}")]
    Key { path: String, message: String },
    #[error("cannot start {program}: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("{what} timed out after {after:?}")]
    Timeout { what: String, after: Duration },
}

/// How a finished remote program ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// It exited with this code.
    Code(i32),
    /// It was killed by this signal (number, when known, else 0).
    Signal(i32),
    /// The channel closed without an exit status.
    Unknown,
}

/// A program running on a client, with its three byte streams and its exit status.
pub struct RemoteProcess {
    /// Its standard input; dropping or shutting it down sends EOF.
    pub stdin: Box<dyn AsyncWrite + Send + Unpin>,
    /// Its standard output.
    pub stdout: Box<dyn AsyncRead + Send + Unpin>,
    /// Its standard error.
    pub stderr: Box<dyn AsyncRead + Send + Unpin>,
    /// Resolves once the program has ended; the value is its exit status.
    pub exit: tokio::sync::oneshot::Receiver<ExitStatus>,
    /// Dropping this kills the program (or closes its channel) if it is still running.
    pub kill_on_drop: Box<dyn Send + Sync>,
}

/// One way of reaching one client.
#[async_trait::async_trait]
pub trait ClientConnector: Send + Sync {
    /// Runs `argv` on the client. `argv[0]` is an absolute path the caller has already
    /// resolved and checked; nothing here goes through a shell on the local side, and over
    /// ssh every argument is quoted so the remote shell sees exactly these words.
    async fn exec(&self, argv: &[Vec<u8>]) -> Result<RemoteProcess, ClientError>;

    /// The address TCP connections to this client go to.
    fn address(&self) -> std::net::IpAddr;
}
