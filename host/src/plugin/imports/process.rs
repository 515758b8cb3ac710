//! `hoard:plugin/process`: a program started for a plugin, its streams and its exit status.

use wasmtime::component::Resource;

use super::stream;
use crate::client::{ExitStatus as ClientExit, RemoteProcess};
use crate::plugin::bindings::WitError;
use crate::plugin::bindings::transport::hoard::plugin::process::{
    ExitStatus, Host, HostProcess, Spawned,
};
use crate::plugin::state::JobState;

/// A running program as the plugin holds it.
pub struct ProcessHandle {
    /// What was started, for messages.
    pub label: String,
    exit: Option<tokio::sync::oneshot::Receiver<ClientExit>>,
    status: Option<ClientExit>,
    _kill_on_drop: Box<dyn Send + Sync>,
}

impl JobState {
    /// Puts a started program and its three streams into the table, for the plugin.
    pub(crate) fn spawned(
        &mut self,
        label: String,
        process: RemoteProcess,
    ) -> wasmtime::Result<Spawned> {
        let idle = self.limits_config.client_timeout;
        let table = self.table();
        let stdin = table.push(stream::output_stream(process.stdin, idle, "client stdin"))?;
        let stdout = table.push(stream::input_stream(process.stdout, idle, "client stdout"))?;
        let stderr = table.push(stream::input_stream(process.stderr, idle, "client stderr"))?;
        let process = table.push(ProcessHandle {
            label,
            exit: Some(process.exit),
            status: None,
            _kill_on_drop: process.kill_on_drop,
        })?;
        Ok(Spawned {
            process,
            stdin,
            stdout,
            stderr,
        })
    }
}

impl Host for JobState {}

impl HostProcess for JobState {
    async fn wait(
        &mut self,
        this: Resource<ProcessHandle>,
    ) -> wasmtime::Result<Result<ExitStatus, WitError>> {
        let timeout = self.limits_config.client_timeout;
        let handle = self.table().get_mut(&this)?;
        if let Some(status) = handle.status {
            return Ok(Ok(to_wit(status)));
        }
        let Some(exit) = handle.exit.take() else {
            return Ok(Err(WitError::Other("wait after a failed wait".into())));
        };
        let status = match tokio::time::timeout(timeout, exit).await {
            Ok(Ok(status)) => status,
            Ok(Err(_)) => ClientExit::Unknown,
            Err(_) => {
                let label = handle.label.clone();
                return Ok(Err(WitError::Client(format!(
                    "{label} did not exit within {timeout:?}"
                ))));
            }
        };
        handle.status = Some(status);
        Ok(Ok(to_wit(status)))
    }

    async fn drop(&mut self, this: Resource<ProcessHandle>) -> wasmtime::Result<()> {
        self.table().delete(this)?;
        Ok(())
    }
}

fn to_wit(status: ClientExit) -> ExitStatus {
    match status {
        ClientExit::Code(code) => ExitStatus::Exited(code),
        ClientExit::Signal(signal) => ExitStatus::Killed(signal),
        ClientExit::Unknown => ExitStatus::Unknown,
    }
}
