//! The host side of each WIT interface a plugin imports. One file per interface; each checks
//! the job's grant before doing anything and maps failures to the WIT `error` variant, naming
//! the plugin, the capability and the host.

pub mod client;
pub mod credentials;
pub mod http_post;
pub mod job;
pub mod notifier;
pub mod process;
pub mod server_tools;
pub mod sink;
pub mod snapshot;
pub mod stream;

use super::bindings::WitError;
use super::state::JobState;

impl JobState {
    /// The error a plugin gets for a capability its grant lacks.
    pub(crate) fn not_granted(&self, capability: impl std::fmt::Display) -> WitError {
        let message = format!(
            "plugin {}: capability {capability} is not granted for host {}",
            self.plugin,
            if self.host.is_empty() {
                "(none)"
            } else {
                &self.host
            }
        );
        self.log_line(super::state::LogLevel::Error, message.clone());
        WitError::NotGranted(message)
    }
}

// Interfaces that only define types.
impl super::bindings::transport::hoard::plugin::types::Host for JobState {}
impl super::bindings::transport::hoard::plugin::manifest::Host for JobState {}
impl super::bindings::transport::hoard::plugin::net::Host for JobState {}
impl super::bindings::notifier::hoard::plugin::events::Host for JobState {}
