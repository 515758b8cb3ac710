//! Running programs on the server's own machine, for a client named `localhost`.
//!
//! No shell is involved: `argv[0]` is an absolute path the capability layer resolved and
//! checked against the grant, and the child gets an empty environment but for `PATH` and
//! `LANG=C`, so a plugin cannot steer it through variables.

use std::ffi::OsString;
use std::net::{IpAddr, Ipv4Addr};
use std::os::unix::ffi::OsStringExt;
use std::process::Stdio;

use tokio::process::Command;

use super::{ClientConnector, ClientError, ExitStatus, RemoteProcess};

/// Capacity asked for the pipe of a child's standard output (the kernel default is 64 KiB):
/// an archive then arrives in reads of up to 1 MiB rather than 64 KiB, with a sixteenth of the
/// wake-ups on both sides. Best effort: a system whose `fs.pipe-max-size` is lower keeps
/// the default.
const STDOUT_PIPE_BYTES: usize = 1 << 20;

/// Runs programs as child processes of the server.
#[derive(Debug, Default, Clone)]
pub struct LocalClient;

#[async_trait::async_trait]
impl ClientConnector for LocalClient {
    async fn exec(&self, argv: &[Vec<u8>]) -> Result<RemoteProcess, ClientError> {
        let (program, args) = argv.split_first().ok_or_else(|| ClientError::Spawn {
            program: String::new(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "empty argv"),
        })?;
        let program = OsString::from_vec(program.clone());
        let mut child = Command::new(&program)
            .args(args.iter().map(|a| OsString::from_vec(a.clone())))
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
            .env("LANG", "C")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| ClientError::Spawn {
                program: program.to_string_lossy().into_owned(),
                source,
            })?;
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(ClientError::Spawn {
                program: program.to_string_lossy().into_owned(),
                source: std::io::Error::other("child stdio was not piped"),
            });
        };
        if let Err(e) = rustix::pipe::fcntl_setpipe_size(&stdout, STDOUT_PIPE_BYTES) {
            tracing::debug!(error = %e, "stdout pipe left at its default size");
        }
        let (exit_tx, exit) = tokio::sync::oneshot::channel();
        let (kill_tx, kill_rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let status = tokio::select! {
                status = child.wait() => status.ok(),
                _ = kill_rx => {
                    let _ = child.start_kill();
                    child.wait().await.ok()
                }
            };
            let _ = exit_tx.send(status.map_or(ExitStatus::Unknown, to_exit_status));
        });
        Ok(RemoteProcess {
            stdin: Box::new(stdin),
            stdout: Box::new(stdout),
            // Drained all the time, into a capped buffer: a child blocked on a full stderr
            // pipe would stop writing stdout, which its reader may be waiting for.
            stderr: Box::new(super::stderr::drained(stderr)),
            exit,
            kill_on_drop: Box::new(KillOnDrop(Some(kill_tx))),
        })
    }

    fn address(&self) -> IpAddr {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    }
}

fn to_exit_status(status: std::process::ExitStatus) -> ExitStatus {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => ExitStatus::Code(code),
        (None, Some(signal)) => ExitStatus::Signal(signal),
        (None, None) => ExitStatus::Unknown,
    }
}

/// Kills the child when the process handle is dropped before it exited.
struct KillOnDrop(Option<tokio::sync::oneshot::Sender<()>>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(tx) = self.0.take() {
            let _ = tx.send(());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::AsyncReadExt;

    use super::LocalClient;
    use crate::client::ClientConnector;

    /// A child that writes far more to stderr than a pipe holds before its stdout ends: its
    /// reader takes stdout to the end without touching stderr, as a plugin does inside a
    /// host-side copy of a file's content. Without the stderr drain the child blocks on its
    /// full stderr pipe and stdout never ends.
    #[tokio::test]
    async fn unread_stderr_never_holds_back_stdout() {
        let argv: Vec<Vec<u8>> = ["/bin/sh", "-c", "head -c 1000000 /dev/zero >&2; echo done"]
            .iter()
            .map(|a| a.as_bytes().to_vec())
            .collect();
        let mut process = LocalClient.exec(&argv).await.expect("spawn");
        let mut out = Vec::new();
        tokio::time::timeout(
            Duration::from_secs(20),
            process.stdout.read_to_end(&mut out),
        )
        .await
        .expect("stdout ended in time: unread stderr must not hold it back")
        .expect("read stdout");
        assert_eq!(out, b"done\n");
        let mut err = Vec::new();
        process.stderr.read_to_end(&mut err).await.expect("stderr");
        assert_eq!(err.len(), 1_000_000);
    }
}
