//! `hoard:plugin/server-tools`: allowed programs on the server itself (e.g. `smbclient`),
//! with secrets handed over in files the plugin never reads.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;

use crate::client::ClientConnector;
use crate::client::local::LocalClient;
use crate::plugin::bindings::WitError;
use crate::plugin::bindings::transport::hoard::plugin::process::Spawned;
use crate::plugin::bindings::transport::hoard::plugin::server_tools::{Host, ToolArgument};
use crate::plugin::grant::Secret;
use crate::plugin::state::{JobState, LogLevel};

/// `smbclient -A` style credentials: `username`, `password`, `domain` lines.
fn credential_file_text(secret: &Secret) -> String {
    let mut text = format!(
        "username = {}\npassword = {}\n",
        secret.user, secret.password
    );
    if let Some(domain) = &secret.domain {
        text.push_str(&format!("domain = {domain}\n"));
    }
    text
}

impl JobState {
    fn write_secret_file(&mut self, name: &str) -> Result<Vec<u8>, WitError> {
        let secret = self
            .grant
            .secrets
            .get(name)
            .cloned()
            .ok_or_else(|| self.not_granted(format!("secret({name})")))?;
        let storage =
            |e: std::io::Error| WitError::Storage(format!("writing a credentials file: {e}"));
        let mut file = tempfile::Builder::new()
            .prefix("hoard-secret-")
            .permissions(std::fs::Permissions::from_mode(0o600))
            .tempfile()
            .map_err(storage)?;
        file.write_all(credential_file_text(&secret).as_bytes())
            .map_err(storage)?;
        file.flush().map_err(storage)?;
        let path = file.into_temp_path();
        let bytes = path.as_os_str().as_encoded_bytes().to_vec();
        self.temp_files.push(path);
        Ok(bytes)
    }
}

impl Host for JobState {
    async fn run(
        &mut self,
        tool: String,
        arguments: Vec<ToolArgument>,
    ) -> wasmtime::Result<Result<Spawned, WitError>> {
        let Some(path) = self.grant.server_tools.get(&tool).cloned() else {
            return Ok(Err(self.not_granted(format!("server-tool({tool})"))));
        };
        let mut argv = vec![path.into_os_string().into_encoded_bytes()];
        for argument in arguments {
            argv.push(match argument {
                ToolArgument::Literal(bytes) => bytes,
                ToolArgument::ClientAddress => match &self.client {
                    Some(client) => client.address().to_string().into_bytes(),
                    None => return Ok(Err(WitError::Protocol("this job has no client".into()))),
                },
                ToolArgument::SecretFile(name) => match self.write_secret_file(&name) {
                    Ok(path) => path,
                    Err(e) => return Ok(Err(e)),
                },
            });
        }
        if let Some(arg) = argv.iter().find(|a| a.contains(&0)) {
            return Ok(Err(WitError::Protocol(format!(
                "NUL byte in argument {:?}",
                String::from_utf8_lossy(arg)
            ))));
        }
        self.log_line(LogLevel::Debug, format!("server tool {tool}"));
        match LocalClient.exec(&argv).await {
            Ok(process) => Ok(Ok(self.spawned(format!("{tool} on the server"), process)?)),
            Err(e) => Ok(Err(WitError::Client(format!("{tool}: {e}")))),
        }
    }
}
