//! hoard's conformance kit: real test peers on loopback ([`peers`]), fixture trees with the
//! hard cases of backup ([`fixture`]), and the runner that certifies a transport plugin
//! against them ([`runner`], behind `hoard plugin test`).

pub mod fixture;
pub mod peers;
pub mod runner;
