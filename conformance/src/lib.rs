//! hoard's conformance kit: real test peers on loopback ([`peers`]), and later the fixture
//! trees with the hard cases and the runner that certifies a transport plugin.

pub mod peers;
