//! hoard's conformance kit: real test peers on loopback ([`peers`]) and fixture trees with the
//! hard cases of backup ([`fixture`]); the runner that certifies a transport plugin comes next.

pub mod fixture;
pub mod peers;
