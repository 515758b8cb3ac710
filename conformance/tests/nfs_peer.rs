//! The NFS peer comes up and serves its export to libnfs's command-line client: a recursive
//! listing over NFSv3 shows the files, and each file read over NFSv3 and over NFSv4 equals
//! the original byte for byte.

use std::fs;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Instant;

use hoard_conformance::peers::NfsPeer;

/// 300 kB that do not compress: a simple xorshift stream.
fn blob() -> Vec<u8> {
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    (0..300_000)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[0]
        })
        .collect()
}

const HELLO: &[u8] = b"hello over nfs\n";

fn build_export(export: &Path) {
    fs::create_dir_all(export.join("sub")).expect("mkdir");
    fs::write(export.join("hello.txt"), HELLO).expect("write");
    fs::write(export.join("sub").join("blob.bin"), blob()).expect("write");
}

fn nfs(tool: &str, url: &str) -> Output {
    let mut command = Command::new(tool);
    if tool == "nfs-ls" {
        command.arg("-R");
    }
    command
        .arg(url)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run {tool}: {e}"))
}

fn text(output: &Output) -> String {
    format!(
        "{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn serves_the_export_over_v3_and_v4() {
    let work = tempfile::tempdir().expect("tempdir");
    let export = work.path().join("export");
    build_export(&export);

    let started = Instant::now();
    let peer = NfsPeer::start(&export).expect("nfs peer");
    eprintln!(
        "ganesha up on 127.0.0.1:{} (mount {}) in {:?}",
        peer.nfs_port(),
        peer.mount_port(),
        started.elapsed()
    );
    let log = || fs::read_to_string(peer.log()).unwrap_or_default();

    let listing = nfs("nfs-ls", &peer.url(""));
    let listed = String::from_utf8_lossy(&listing.stdout).into_owned();
    assert!(
        listing.status.success(),
        "{}\n{listed}\nlog:\n{}",
        text(&listing),
        log()
    );
    for name in ["hello.txt", "sub", "blob.bin"] {
        assert!(listed.contains(name), "{name} missing from:\n{listed}");
    }

    let expected: [(&str, Vec<u8>); 2] =
        [("/hello.txt", HELLO.to_vec()), ("/sub/blob.bin", blob())];
    for (path, content) in &expected {
        for url in [peer.url(path), peer.url_v4(path)] {
            let read = nfs("nfs-cat", &url);
            assert!(
                read.status.success(),
                "{url}: {}\nlog:\n{}",
                text(&read),
                log()
            );
            assert!(
                read.stdout == *content,
                "{url}: {} bytes differ",
                read.stdout.len()
            );
        }
    }
}
