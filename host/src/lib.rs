//! hoard's server library: how the host reaches backup clients ([`client`]); the plugin
//! runtime, jobs, scheduling and the rest join here.

pub mod client;
