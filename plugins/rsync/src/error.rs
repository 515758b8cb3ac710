//! The contract's error type, and short constructors for the kinds this plugin reports.

pub use hoard_plugin_sdk::transport::hoard::plugin::types::Error;

/// The client broke the protocol (or sent something the plugin refuses).
pub fn protocol(message: impl Into<String>) -> Error {
    Error::Protocol(message.into())
}

/// The client or the connection failed.
pub fn client(message: impl Into<String>) -> Error {
    Error::Client(message.into())
}

/// Anything else (a setting that makes no sense).
pub fn other(message: impl Into<String>) -> Error {
    Error::Other(message.into())
}
