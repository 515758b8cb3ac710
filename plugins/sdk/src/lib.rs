//! The hoard plugin SDK: everything a transport or notifier author needs besides their
//! protocol.
//!
//! - [`transport`] and [`notifier`]: the bindings of the two WIT worlds of
//!   `hoard:plugin@0.1.0`, with [`export_transport!`] and [`export_notifier!`] to export an
//!   implementation.
//! - [`io`]: `std::io::Read` / `Write` over the host's byte streams, so protocol code can use
//!   ordinary readers and writers (and poll both directions when it must).
//! - [`entry`]: building entries (paths as bytes, timestamps, modes) without boilerplate.
//! - [`path`]: share-relative paths: parent, join, is-under.
//!
//! The smallest complete transport is `plugins/example` (see `docs/plugin-guide.md`).

pub mod entry;
pub mod io;
pub mod path;

/// Bindings of the `transport` world (generated code: lints about its shape do not apply). Implement [`transport::Guest`] and export it with
/// [`export_transport!`].
#[allow(clippy::too_many_arguments)]
pub mod transport {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "hoard:plugin/transport",
        pub_export_macro: true,
        export_macro_name: "export_transport",
        default_bindings_module: "hoard_plugin_sdk::transport",
        generate_all,
    });
}

/// Bindings of the `notifier` world. Implement [`notifier::Guest`] and export it with
/// [`export_notifier!`].
#[allow(clippy::too_many_arguments)]
pub mod notifier {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "hoard:plugin/notifier",
        pub_export_macro: true,
        export_macro_name: "export_notifier",
        default_bindings_module: "hoard_plugin_sdk::notifier",
        generate_all,
    });
}

pub use notifier::export_notifier;
pub use transport::export_transport;

/// The contract version this SDK was built from; report it in `describe()`.
pub const CONTRACT_VERSION: &str = "0.1.0";
