//! The rsync transport against this machine's stock rsync (run locally through `exec`):
//! protocols 31, 30 and 29 with each checksum they can agree on, a full and an incremental
//! after the fixture's mutation, each restored and compared with its source; the delta at
//! work (a 64-byte edit in a large file moves a few KiB); and hostile senders played by a
//! fake `rsync` that speaks the protocol and then lies: `..` and absolute names, an over-long
//! name, a truncated stream, an index never asked for, a wrong whole-file checksum, a
//! hard-link reference out of range.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};

use hoard_conformance::fixture::{Aspect, build_tree, compare, describe_tree, mutate_tree, noise};

fn hoard(config: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hoard"))
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .expect("run hoard")
}

fn ok(config: &Path, args: &[&str]) -> String {
    let output = hoard(config, args);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "hoard {args:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// A config folder whose host `client` is this machine, backed up with rsync.
fn config(work: &Path, share: &Path, settings: &str, rsync: &str) -> std::path::PathBuf {
    let dir = work.join("config");
    common::write_global_config(
        &dir,
        &work.join("pool"),
        &format!("client_paths: {{ \"rsync\": {rsync:?} }}, defaults: (transport: \"rsync\")"),
    );
    std::fs::write(
        dir.join("hosts/client.ron"),
        format!(
            "(address: \"127.0.0.1\", shares: [{:?}], plugin_settings: {{ {settings} }})",
            share.display().to_string()
        ),
    )
    .expect("client.ron");
    dir
}

/// The job log of backup `number` of `client`, as text.
fn job_log(work: &Path, number: u64) -> String {
    std::fs::read_to_string(work.join(format!("pool/logs/client/{number}.jsonl")))
        .unwrap_or_default()
}

fn restore_and_compare(
    config: &Path,
    work: &Path,
    number: u64,
    share: &Path,
    aspects: &BTreeSet<Aspect>,
) {
    restore_and_compare_except(config, work, number, share, aspects, &[]);
}

/// As [`restore_and_compare`], leaving out paths the protocol cannot carry.
fn restore_and_compare_except(
    config: &Path,
    work: &Path,
    number: u64,
    share: &Path,
    aspects: &BTreeSet<Aspect>,
    left_out: &[&str],
) {
    let mut expected = describe_tree(share).expect("describe source");
    let target = work.join(format!("restored-{number}"));
    ok(
        config,
        &[
            "restore",
            &format!("client:{number}"),
            share.to_str().expect("utf-8"),
            "--to",
            target.to_str().expect("utf-8"),
        ],
    );
    let mut got = describe_tree(&target).expect("describe restore");
    for path in left_out {
        expected.remove(path.as_bytes());
        got.remove(path.as_bytes());
    }
    let diff = compare(&expected, &got, aspects);
    assert!(diff.is_empty(), "backup {number}:\n{}", diff.join("\n"));
}

#[test]
fn every_protocol_and_checksum_backs_up_and_restores() {
    for (protocol, checksum, expect_in_log) in [
        ("31", "xxh128 md5", "checksum xxh128"),
        ("31", "xxh3", "checksum xxh3"),
        ("31", "md5", "checksum md5"),
        ("30", "xxh64", "checksum xxh64"),
        ("30", "md4", "checksum md4"),
        ("29", "md5", "checksum md4"),
    ] {
        let work = tempfile::tempdir().expect("tempdir");
        let share = work.path().join("data");
        build_tree(&share).expect("fixture");
        let settings = format!("\"protocol\": \"{protocol}\", \"checksum\": \"{checksum}\"");
        let config = config(work.path(), &share, &settings, "/usr/bin/rsync");
        // Protocols before 31 carry no nanoseconds, and 29 no xattrs.
        let mut aspects: BTreeSet<Aspect> = [
            Aspect::Core,
            Aspect::Permissions,
            Aspect::Owners,
            Aspect::Symlinks,
            Aspect::Hardlinks,
            Aspect::Devices,
            Aspect::Specials,
        ]
        .into();
        if protocol == "31" {
            aspects.insert(Aspect::MtimeNanoseconds);
        }
        if protocol != "29" {
            aspects.insert(Aspect::Xattrs);
        }
        // Protocol 29 sends mtimes as unsigned 32-bit seconds (as rsync 3 reads them): a
        // time before 1970 cannot cross it.
        let left_out: &[&str] = if protocol == "29" {
            &["times/before-1970"]
        } else {
            &[]
        };

        ok(&config, &["backup", "client", "--full", "--json"]);
        let log = job_log(work.path(), 0);
        assert!(
            log.contains(&format!("rsync protocol {protocol}")) && log.contains(expect_in_log),
            "protocol {protocol} / {checksum}:\n{log}"
        );
        restore_and_compare_except(&config, work.path(), 0, &share, &aspects, left_out);

        mutate_tree(&share).expect("mutate");
        ok(&config, &["backup", "client", "--incr", "--json"]);
        restore_and_compare_except(&config, work.path(), 1, &share, &aspects, left_out);
    }
}

/// The literal and matched byte counts of a backup's job log.
fn delta_counts(log: &str) -> (u64, u64) {
    let number_before = |marker: &str| -> u64 {
        log.split(marker)
            .next()
            .and_then(|head| head.rsplit(' ').next())
            .and_then(|n| n.trim_end_matches(',').parse().ok())
            .unwrap_or_else(|| panic!("no `{marker}` count in:\n{log}"))
    };
    (
        number_before(" bytes literal"),
        number_before(" matched from"),
    )
}

#[test]
fn a_small_edit_in_a_large_file_moves_a_small_delta() {
    let work = tempfile::tempdir().expect("tempdir");
    let share = work.path().join("data");
    std::fs::create_dir_all(&share).expect("share");
    let content = noise(8 << 20, 0x9e37_79b9_7f4a_7c15);
    std::fs::write(share.join("big.bin"), &content).expect("big file");
    let config = config(work.path(), &share, "", "/usr/bin/rsync");
    ok(&config, &["backup", "client", "--full", "--json"]);

    let mut edited = content.clone();
    edited[5_000_000..5_000_064].copy_from_slice(&[0x42; 64]);
    std::fs::write(share.join("big.bin"), &edited).expect("edit");
    ok(&config, &["backup", "client", "--incr", "--json"]);
    let (literal, matched) = delta_counts(&job_log(work.path(), 1));
    assert!(literal > 0 && literal <= 2 * 8192, "literal {literal}");
    assert_eq!(literal + matched, 8 << 20);
    let all: BTreeSet<Aspect> = Aspect::ALL
        .into_iter()
        .filter(|a| *a != Aspect::Sparse)
        .collect();
    restore_and_compare(&config, work.path(), 1, &share, &all);

    // A full checks every file by checksum: nothing changed, nothing literal.
    ok(&config, &["backup", "client", "--full", "--json"]);
    let (literal, matched) = delta_counts(&job_log(work.path(), 2));
    assert_eq!((literal, matched), (0, 8 << 20));
}

/// Backs up `client` from a fake rsync playing `scenario`; returns the command's output and
/// the work folder.
fn hostile(scenario: &str) -> (Output, tempfile::TempDir) {
    let work = tempfile::tempdir().expect("tempdir");
    let share = work.path().join("data");
    std::fs::create_dir_all(&share).expect("share");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/hostile_rsync.py");
    let fake = work.path().join("fake-rsync");
    std::fs::write(
        &fake,
        format!("#!/bin/sh\nexec /usr/bin/python3 {script} {scenario} \"$@\"\n"),
    )
    .expect("fake rsync");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let config = config(work.path(), &share, "", fake.to_str().expect("utf-8"));
    let output = hoard(&config, &["backup", "client", "--full", "--json"]);
    // Whatever happened, the pool is sound and nothing was written beside the share.
    ok(&config, &["fsck"]);
    let beside: Vec<_> = std::fs::read_dir(work.path())
        .expect("work dir")
        .filter_map(|e| e.ok().map(|e| e.file_name()))
        .filter(|n| {
            !["data", "config", "pool", "fake-rsync", "cache"].contains(&n.to_str().unwrap_or(""))
        })
        .collect();
    assert!(
        beside.is_empty(),
        "{scenario}: written beside the share: {beside:?}"
    );
    (output, work)
}

fn fails_with(scenario: &str, message: &str) {
    let (output, _work) = hostile(scenario);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{scenario}: the backup succeeded");
    assert!(
        stderr.contains(message),
        "{scenario}: expected {message:?} in:\n{stderr}"
    );
}

#[test]
fn hostile_senders_fail_cleanly() {
    fails_with("dotdot", "`..` in a file-list name: ../escape");
    fails_with("absolute", "absolute name in the file list: /etc/evil");
    fails_with("longname", "file-list name too long");
    fails_with("truncated", "truncated");
    fails_with("hardlink", "hard-link reference 5 out of range");
    fails_with("badindex", "file index 9999, which was not asked for");
}

#[test]
fn a_wrong_checksum_leaves_the_file_out_and_the_backup_partial() {
    let (output, work) = hostile("badsum");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let summary: serde_json::Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("{e}: {stdout}\n{}", String::from_utf8_lossy(&output.stderr)));
    assert_eq!(summary["partial"], true, "{summary}");
    let log = job_log(work.path(), 0);
    assert!(
        log.contains("a: checksum mismatch on a whole transfer; left out"),
        "{log}"
    );
}

#[test]
fn a_missing_share_fails_with_a_clear_error() {
    let work = tempfile::tempdir().expect("tempdir");
    let config = config(
        work.path(),
        &work.path().join("no-such-share"),
        "",
        "/usr/bin/rsync",
    );
    let output = hoard(&config, &["backup", "client", "--full"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("empty file list: the share is missing or unreadable"),
        "{stderr}"
    );
}

#[test]
fn a_daemon_refuses_a_wrong_password_and_takes_the_right_one() {
    use hoard_conformance::peers::RsyncdPeer;
    let work = tempfile::tempdir().expect("tempdir");
    let served = work.path().join("served");
    build_tree(&served.join("tree")).expect("fixture");
    let peer = RsyncdPeer::start(&served, "hoard", "right-password").expect("rsyncd peer");
    let dir = work.path().join("config");
    common::write_global_config(
        &dir,
        &work.path().join("pool"),
        "defaults: (transport: \"rsync\")",
    );
    let secret = work.path().join("secret");
    let host = |password: &str| {
        std::fs::write(&secret, password).expect("secret");
        std::fs::write(
            dir.join("hosts/client.ron"),
            format!(
                "(address: \"127.0.0.1\", shares: [\"/data/tree\"], plugin_settings: {{ \"port\": \"{}\" }}, grants: (connect: [{}], secrets: {{ \"rsyncd\": (user: \"hoard\", password_file: {:?}) }}))",
                peer.port(),
                peer.port(),
                secret.display().to_string()
            ),
        )
        .expect("client.ron");
    };
    host("wrong-password");
    let output = hoard(&dir, &["backup", "client", "--full"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("rsync daemon: auth failed on module data"),
        "{stderr}"
    );

    host("right-password");
    ok(&dir, &["backup", "client", "--full", "--json"]);
    let all: BTreeSet<Aspect> = Aspect::ALL
        .into_iter()
        .filter(|a| *a != Aspect::Sparse)
        .collect();
    let target = work.path().join("restored");
    ok(
        &dir,
        &[
            "restore",
            "client:0",
            "/data/tree",
            "--to",
            target.to_str().expect("utf-8"),
        ],
    );
    let expected = describe_tree(&served.join("tree")).expect("describe source");
    let got = describe_tree(&target).expect("describe restore");
    let diff = compare(&expected, &got, &all);
    assert!(diff.is_empty(), "{}", diff.join("\n"));
}
