//! `hoard:plugin/client`: running a granted program on the job's client, and TCP to it on a
//! granted port.

use std::net::SocketAddr;

use crate::plugin::bindings::WitError;
use crate::plugin::bindings::transport::hoard::plugin::client::Host;
use crate::plugin::bindings::transport::hoard::plugin::net::Connection;
use crate::plugin::bindings::transport::hoard::plugin::process::Spawned;
use crate::plugin::grant::check_arguments;
use crate::plugin::state::{JobState, LogLevel};

use super::stream;

impl Host for JobState {
    async fn exec(&mut self, argv: Vec<Vec<u8>>) -> wasmtime::Result<Result<Spawned, WitError>> {
        let Some((name, args)) = argv.split_first() else {
            return Ok(Err(WitError::Protocol("exec with an empty argv".into())));
        };
        let name = String::from_utf8_lossy(name).into_owned();
        let Some(path) = self.grant.exec.get(&name).cloned() else {
            return Ok(Err(self.not_granted(format!("exec({name})"))));
        };
        if let Err(refused) = check_arguments(&name, args, self.direction) {
            let message = format!("plugin {}: {refused}", self.plugin);
            self.log_line(LogLevel::Error, message.clone());
            return Ok(Err(WitError::NotGranted(message)));
        }
        let Some(client) = self.client.clone() else {
            return Ok(Err(
                self.not_granted(format!("exec({name}) without a client"))
            ));
        };
        let mut resolved = Vec::with_capacity(argv.len());
        resolved.push(path.into_os_string().into_encoded_bytes());
        resolved.extend(args.iter().cloned());
        let label = format!("{name} on {}", self.host);
        self.log_line(LogLevel::Debug, format!("exec {}", render_argv(&resolved)));
        let connect_timeout = self.limits_config.connect_timeout;
        match tokio::time::timeout(connect_timeout, client.exec(&resolved)).await {
            Ok(Ok(process)) => Ok(Ok(self.spawned(label, process)?)),
            Ok(Err(e)) => Ok(Err(WitError::Client(format!("{label}: {e}")))),
            Err(_) => Ok(Err(WitError::Client(format!(
                "{label}: not started within {connect_timeout:?}"
            )))),
        }
    }

    async fn connect(&mut self, port: u16) -> wasmtime::Result<Result<Connection, WitError>> {
        if !self.grant.connect_ports.contains(&port) {
            return Ok(Err(self.not_granted(format!("connect({port})"))));
        }
        let Some(client) = self.client.clone() else {
            return Ok(Err(
                self.not_granted(format!("connect({port}) without a client"))
            ));
        };
        let address = SocketAddr::new(client.address(), port);
        let timeout = self.limits_config.connect_timeout;
        let tcp = match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(address)).await
        {
            Ok(Ok(tcp)) => tcp,
            Ok(Err(e)) => return Ok(Err(WitError::Client(format!("connect to {address}: {e}")))),
            Err(_) => {
                return Ok(Err(WitError::Client(format!(
                    "connect to {address}: timed out after {timeout:?}"
                ))));
            }
        };
        let (read, write) = tcp.into_split();
        let idle = self.limits_config.client_timeout;
        let input = self
            .table()
            .push(stream::input_stream(read, idle, "client connection"))?;
        let output = self
            .table()
            .push(stream::output_stream(write, idle, "client connection"))?;
        Ok(Ok(Connection { input, output }))
    }
}

/// An argv for the job log: words in quotes, bytes escaped.
pub(crate) fn render_argv(argv: &[Vec<u8>]) -> String {
    argv.iter()
        .map(|a| format!("{:?}", String::from_utf8_lossy(a)))
        .collect::<Vec<_>>()
        .join(" ")
}
