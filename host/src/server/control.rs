//! The control socket: how the CLI talks to a running server. A Unix socket (mode 0600, so
//! only the server's user and root may use it) carrying one JSON request line and one JSON
//! answer line per connection.

use std::path::Path;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::schedule::QueuedJob;
use crate::schedule::calendar::UnixTime;

/// Longest request or answer line accepted.
const MAX_LINE: u64 = 1 << 20;

/// What the CLI asks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "request", rename_all = "kebab-case")]
pub enum Request {
    /// What runs, what waits, and each host's state.
    Status,
    /// Queue a backup of `host` as a user's request.
    Backup {
        /// The host.
        host: String,
        /// `Some(true)` full, `Some(false)` incremental, `None` what is due.
        full: Option<bool>,
    },
    /// Stop `host`'s running backup, drop its waiting one, and hold scheduled backups back
    /// for `backoff_hours`.
    Stop {
        /// The host.
        host: String,
        /// Hours without scheduled backups (0 for none).
        backoff_hours: f64,
    },
    /// Drop `host`'s waiting backup.
    Dequeue {
        /// The host.
        host: String,
    },
}

/// A job running now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunningJob {
    /// The job.
    pub job: QueuedJob,
    /// When it started.
    pub started: UnixTime,
    /// Entries stored so far.
    pub entries: u64,
    /// Content bytes moved so far.
    pub bytes: u64,
}

/// One host as the server sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostState {
    /// The host.
    pub host: String,
    /// Start of its newest complete backup.
    pub last_backup: Option<UnixTime>,
    /// Start of its newest complete full.
    pub last_full: Option<UnixTime>,
    /// What happened last (result and detail of its newest history line).
    pub last_event: Option<String>,
    /// Scheduled backups held back until then.
    pub backoff_until: Option<UnixTime>,
}

/// The server's state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerStatus {
    /// The server's process id.
    pub pid: u32,
    /// When it started.
    pub started: UnixTime,
    /// The next wakeup.
    pub next_wakeup: Option<UnixTime>,
    /// Jobs running.
    pub running: Vec<RunningJob>,
    /// Jobs waiting, in the order they will start.
    pub waiting: Vec<QueuedJob>,
    /// Every configured host.
    pub hosts: Vec<HostState>,
}

/// The server's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "answer", rename_all = "kebab-case")]
pub enum Answer {
    /// The status.
    Status(ServerStatus),
    /// Done; what was done.
    Done {
        /// A sentence for the user.
        message: String,
    },
    /// Refused; why.
    Refused {
        /// A sentence for the user.
        message: String,
    },
}

/// Why the control socket could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// No server listens there.
    #[error("no server is running (nothing answers on {0})")]
    NotRunning(String),
    /// The socket failed mid-conversation.
    #[error("control socket {path}: {source}")]
    Io {
        /// The socket.
        path: String,
        /// What failed.
        source: std::io::Error,
    },
    /// The other side sent something that is not an answer.
    #[error("control socket {path}: unreadable answer: {reason}")]
    Protocol {
        /// The socket.
        path: String,
        /// What was wrong.
        reason: String,
    },
}

/// Sends `request` to the server listening on `socket` and returns its answer.
pub async fn ask(socket: &Path, request: &Request) -> Result<Answer, ControlError> {
    let name = socket.display().to_string();
    let io = |source| ControlError::Io {
        path: name.clone(),
        source,
    };
    let stream = match tokio::net::UnixStream::connect(socket).await {
        Ok(stream) => stream,
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            ) =>
        {
            return Err(ControlError::NotRunning(name));
        }
        Err(e) => return Err(io(e)),
    };
    let (read, mut write) = stream.into_split();
    let mut line = serde_json::to_vec(request).map_err(|e| ControlError::Protocol {
        path: name.clone(),
        reason: e.to_string(),
    })?;
    line.push(b'\n');
    write.write_all(&line).await.map_err(io)?;
    write.shutdown().await.map_err(io)?;
    let answer = read_line(read).await.map_err(io)?;
    serde_json::from_str(&answer).map_err(|e| ControlError::Protocol {
        path: name.clone(),
        reason: e.to_string(),
    })
}

/// Reads one line of at most [`MAX_LINE`] bytes.
pub(crate) async fn read_line(read: impl tokio::io::AsyncRead + Unpin) -> std::io::Result<String> {
    let mut reader = BufReader::new(tokio::io::AsyncReadExt::take(read, MAX_LINE));
    let mut line = String::new();
    reader.read_line(&mut line).await?;
    Ok(line)
}

/// Binds the control socket at `socket`. A socket file nobody answers on (left by a server
/// that died) is replaced; one a live server answers on is not.
pub async fn listen(socket: &Path) -> std::io::Result<tokio::net::UnixListener> {
    if socket.exists() {
        if tokio::net::UnixStream::connect(socket).await.is_ok() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AddrInUse,
                format!("a server already answers on {}", socket.display()),
            ));
        }
        std::fs::remove_file(socket)?;
    }
    if let Some(dir) = socket.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let listener = tokio::net::UnixListener::bind(socket)?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// Answers one connection: reads its request, lets `handle` answer it, writes the answer.
pub(crate) async fn serve_one<F>(stream: tokio::net::UnixStream, handle: F) -> std::io::Result<()>
where
    F: AsyncFnOnce(Request) -> Answer,
{
    let (read, mut write) = stream.into_split();
    let line = read_line(read).await?;
    let answer = match serde_json::from_str::<Request>(&line) {
        Ok(request) => handle(request).await,
        Err(e) => Answer::Refused {
            message: format!("not a request: {e}"),
        },
    };
    let mut out = serde_json::to_vec(&answer).map_err(std::io::Error::other)?;
    out.push(b'\n');
    write.write_all(&out).await?;
    write.shutdown().await
}
