//! Arbitrary bytes as an rsync file list, under every protocol and flag encoding this side
//! reads: decoding must end in a list or an error, never a panic or a runaway allocation.
#![no_main]

use hoard_plugin_rsync::flist::{ListOptions, read_file_list};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let protocol = 29 + i32::from(selector % 3);
    let options = ListOptions {
        protocol,
        varint_flags: protocol >= 30 && selector & 0x10 != 0,
        safe_flist: true,
        owners: selector & 0x20 != 0,
        devices: true,
        links: true,
        hard_links: true,
        xattrs: protocol >= 30 && selector & 0x40 != 0,
        id_names: selector & 0x80 != 0,
    };
    let _ = read_file_list(&mut &rest[..], &options);
});
