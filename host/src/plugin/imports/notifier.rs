//! `hoard:plugin/endpoint` and `hoard:plugin/http`: the only ways out for a notifier, each to
//! the one destination its config names.

use crate::plugin::bindings::WitError;
use crate::plugin::bindings::notifier::hoard::plugin::{endpoint, http};
use crate::plugin::bindings::transport::hoard::plugin::net::Connection;
use crate::plugin::state::JobState;

use super::stream;

/// Where a notifier may send, from its config.
#[derive(Debug, Clone, Default)]
pub struct NotifierTarget {
    /// `host:port` of its TCP endpoint (an SMTP relay).
    pub endpoint: Option<String>,
    /// The URL of its HTTP requests.
    pub url: Option<String>,
}

impl endpoint::Host for JobState {
    async fn connect(&mut self) -> wasmtime::Result<Result<Connection, WitError>> {
        let Some(address) = self
            .notifier_target
            .endpoint
            .clone()
            .filter(|_| self.grant.endpoint)
        else {
            return Ok(Err(self.not_granted("endpoint")));
        };
        let timeout = self.limits_config.connect_timeout;
        let tcp = match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(&address))
            .await
        {
            Ok(Ok(tcp)) => tcp,
            Ok(Err(e)) => return Ok(Err(WitError::Client(format!("connect to {address}: {e}")))),
            Err(_) => {
                return Ok(Err(WitError::Client(format!(
                    "connect to {address}: timed out"
                ))));
            }
        };
        let (read, write) = tcp.into_split();
        let idle = self.limits_config.short_deadline;
        let input = self
            .table()
            .push(stream::input_stream(read, idle, "endpoint"))?;
        let output = self
            .table()
            .push(stream::output_stream(write, idle, "endpoint"))?;
        Ok(Ok(Connection { input, output }))
    }
}

impl http::Host for JobState {
    async fn post(
        &mut self,
        content_type: String,
        body: Vec<u8>,
    ) -> wasmtime::Result<Result<http::Response, WitError>> {
        let Some(url) = self.notifier_target.url.clone().filter(|_| self.grant.http) else {
            return Ok(Err(self.not_granted("http")));
        };
        let limit = self.limits_config.short_deadline;
        Ok(
            match super::http_post::post(&url, &content_type, &body, limit).await {
                Ok((status, body)) => Ok(http::Response { status, body }),
                Err(e) => Err(WitError::Client(e.to_string())),
            },
        )
    }
}
