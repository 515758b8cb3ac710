//! The first complete path, end to end, as a user runs it: a RON config folder, `hoard
//! backup` of a client over ssh (a real sshd on loopback) with the built-in tar plugin, an
//! incremental after changes, `hoard list` and `hoard ls`, and restores into a directory, as a
//! tar stream and back to the client through the plugin — each compared with the source,
//! content and metadata.

mod common;

use std::path::Path;
use std::process::Command;

use hoard_conformance::fixture::{build_tree, describe_tree, differences, mutate_tree};
use hoard_conformance::peers::SshdPeer;

fn hoard(config: &Path, args: &[&str]) -> (String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_hoard"))
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .expect("run hoard");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        output.status.success(),
        "hoard {args:?} failed:\n{stdout}\n{stderr}"
    );
    (stdout, stderr)
}

fn write_config(dir: &Path, pool: &Path, peer: &SshdPeer, share: &Path) {
    common::write_global_config(dir, pool, "defaults: (transport: \"tar\")");
    std::fs::write(
        dir.join("hosts/client.ron"),
        format!(
            "(address: \"127.0.0.1\", ssh: (user: {:?}, port: {}, key: {:?}, known_hosts: {:?}), shares: [{:?}])",
            peer.user(),
            peer.port(),
            peer.client_key().display().to_string(),
            peer.known_hosts().display().to_string(),
            share.display().to_string(),
        ),
    )
    .expect("client.ron");
}

#[test]
fn full_incremental_and_restores_over_ssh() {
    let peer = SshdPeer::start().expect("sshd peer (run conformance/scripts/install-peers.sh)");
    let work = tempfile::tempdir().expect("tempdir");
    let source = work.path().join("client/data");
    build_tree(&source).expect("fixture tree");
    let config = work.path().join("config");
    write_config(&config, &work.path().join("pool"), &peer, &source);
    let share = source.display().to_string();

    // Full.
    let (out, _) = hoard(&config, &["backup", "client", "--full", "--json"]);
    let full: serde_json::Value = serde_json::from_str(&out).expect("json summary");
    assert_eq!(full["level"], "full");
    assert_eq!(full["number"], 0);
    assert_eq!(full["partial"], false, "{out}");

    // Incremental after modify, append, add, delete, rename, chmod.
    mutate_tree(&source).expect("mutate");
    let expected = describe_tree(&source).expect("describe source");
    let (out, _) = hoard(&config, &["backup", "client", "--incr", "--json"]);
    let incr: serde_json::Value = serde_json::from_str(&out).expect("json summary");
    assert_eq!(incr["level"], "incremental");
    assert_eq!(incr["number"], 1);

    let (out, _) = hoard(&config, &["list", "client", "--json"]);
    let list: serde_json::Value = serde_json::from_str(&out).expect("json list");
    assert_eq!(list.as_array().map(Vec::len), Some(2));
    assert_eq!(list[1]["type"], "incr");

    let (out, _) = hoard(&config, &["ls", "client", &share]);
    assert!(
        out.contains("sizes-renamed") && !out.contains(" sizes\n"),
        "{out}"
    );
    let (out, _) = hoard(&config, &["ls", "client:0", &format!("{share}/dup")]);
    assert!(
        out.contains("b.bin"),
        "the full still has the deleted file:\n{out}"
    );

    // Restore into a directory: the incremental browses exactly like the client now.
    let restored = work.path().join("restored");
    hoard(
        &config,
        &[
            "restore",
            "client",
            &share,
            "--to",
            restored.to_str().expect("utf-8"),
        ],
    );
    let actual = describe_tree(&restored).expect("describe restore");
    let diff = differences(&expected, &actual);
    assert!(
        diff.is_empty(),
        "restore differs from the source:\n{}",
        diff.join("\n")
    );

    // As a tar stream, extracted by GNU tar.
    let tar_file = work.path().join("restore.tar");
    hoard(
        &config,
        &[
            "restore",
            "client:1",
            &share,
            "--tar",
            tar_file.to_str().expect("utf-8"),
        ],
    );
    let untarred = work.path().join("untarred");
    std::fs::create_dir_all(&untarred).expect("dir");
    let status = Command::new("tar")
        .args(["-x", "-f"])
        .arg(&tar_file)
        .arg("-C")
        .arg(&untarred)
        .args(["--numeric-owner", "--same-permissions", "--xattrs"])
        .status()
        .expect("tar -x");
    assert!(status.success());
    let diff = differences(&expected, &describe_tree(&untarred).expect("describe"));
    assert!(diff.is_empty(), "tar restore differs:\n{}", diff.join("\n"));

    // Back to the client through the tar plugin, into another directory, over ssh.
    let elsewhere = work.path().join("client/elsewhere");
    std::fs::create_dir_all(&elsewhere).expect("dir");
    hoard(
        &config,
        &[
            "restore",
            "client",
            &share,
            "--to-host",
            &format!("client:{}", elsewhere.display()),
        ],
    );
    let diff = differences(&expected, &describe_tree(&elsewhere).expect("describe"));
    assert!(
        diff.is_empty(),
        "restore through the plugin differs:\n{}",
        diff.join("\n")
    );
}

/// A reader that stops early (`hoard plugin list | head -1`) ends the command quietly and
/// successfully, as with other Unix tools, rather than with a panic about a broken pipe.
#[test]
fn output_to_a_closed_pipe_ends_quietly() {
    let work = tempfile::tempdir().expect("tempdir");
    let config = work.path().join("config");
    common::write_global_config(&config, &work.path().join("pool"), "");
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let output = Command::new(env!("CARGO_BIN_EXE_hoard"))
        .arg("--config")
        .arg(&config)
        .args(["plugin", "list"])
        .stdout(writer)
        .output()
        .expect("run hoard");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{:?}: {stderr}", output.status);
    assert!(!stderr.contains("panicked"), "{stderr}");
}
