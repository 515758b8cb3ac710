//! The conformance kit run the way a plugin author runs it, on every built-in transport:
//! `hoard plugin test` on the tar and rsync components against a real sshd (the full
//! fixture: 20,000 entries, every hard case), and rsync against a real rsync daemon, pass
//! every case they claim; a plugin that does not back up fails the kit with a non-zero exit;
//! a peer the plugin cannot use is refused up front.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn hoard_plugin_test(work: &Path, args: &[&str]) -> Output {
    let config = work.join("config");
    common::write_global_config(&config, &work.join("pool"), "");
    Command::new(env!("CARGO_BIN_EXE_hoard"))
        .arg("--config")
        .arg(&config)
        .args(["plugin", "test"])
        .args(args)
        .output()
        .expect("run hoard plugin test")
}

fn report(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).expect("report written")).expect("report JSON")
}

fn outcome<'a>(report: &'a serde_json::Value, case: &str) -> &'a str {
    report["cases"]
        .as_array()
        .and_then(|cases| cases.iter().find(|c| c["case"] == case))
        .and_then(|c| c["outcome"].as_str())
        .unwrap_or_else(|| panic!("no case {case} in {report:#}"))
}

/// Runs the kit on a built-in component and checks it passed; returns the report and what
/// the kit printed.
fn certify(plugin: &str, peer: &str, compact: bool) -> (serde_json::Value, String) {
    let work = tempfile::tempdir().expect("tempdir");
    let component = PathBuf::from(env!("HOARD_BUILTIN_PLUGIN_DIR")).join(format!("{plugin}.wasm"));
    let report_path = work.path().join("report.json");
    let mut args = vec![
        component.to_str().expect("utf-8 path"),
        "--peer",
        peer,
        "--report",
        report_path.to_str().expect("utf-8 path"),
    ];
    if compact {
        args.push("--compact");
    }
    let output = hoard_plugin_test(work.path(), &args);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report = report(&report_path);
    assert_eq!(report["passed"], true, "{stdout}");
    assert_eq!(report["plugin"]["name"], plugin);
    (report, stdout.into_owned())
}

/// The cases every built-in transport passes.
const PASSED_BY_ALL: [&str; 14] = [
    "sandbox: imports within manifest",
    "full",
    "incremental after mutation",
    "second full",
    "feature: permissions",
    "feature: owners",
    "feature: mtime-nanoseconds",
    "feature: symlinks",
    "feature: hardlinks",
    "feature: xattrs",
    "restore into an empty tree",
    "restore over a changed tree",
    "sandbox: refused capability",
    "pool check (fsck)",
];

#[test]
fn the_tar_transport_passes_the_kit_over_ssh() {
    let (report, stdout) = certify("tar", "ssh", false);
    assert_eq!(report["fixture_entries_in_many"], 20_000);
    for case in PASSED_BY_ALL {
        assert_eq!(outcome(&report, case), "pass", "{case}:\n{stdout}");
    }
    // Not claimed by tar: shown as not applicable, never as passed.
    assert_eq!(outcome(&report, "feature: sparse"), "not-applicable");
    assert!(
        stdout.contains("feature: sparse") && stdout.contains("n/a"),
        "{stdout}"
    );
}

#[test]
fn the_rsync_transport_passes_the_kit_over_ssh() {
    let (report, stdout) = certify("rsync", "ssh", false);
    assert_eq!(report["fixture_entries_in_many"], 20_000);
    for case in PASSED_BY_ALL
        .iter()
        .chain(&["feature: specials", "feature: devices"])
    {
        assert_eq!(outcome(&report, case), "pass", "{case}:\n{stdout}");
    }
}

#[test]
fn the_rsync_transport_passes_the_kit_against_an_rsync_daemon() {
    let (report, stdout) = certify("rsync", "rsyncd", true);
    for case in PASSED_BY_ALL
        .iter()
        .chain(&["feature: specials", "feature: devices"])
    {
        assert_eq!(outcome(&report, case), "pass", "{case}:\n{stdout}");
    }
}

#[test]
fn a_plugin_that_does_not_back_up_fails_the_kit() {
    let work = tempfile::tempdir().expect("tempdir");
    let hostile = PathBuf::from(env!("HOARD_TEST_PLUGIN_DIR")).join("hostile.wasm");
    let report_path = work.path().join("report.json");
    let output = hoard_plugin_test(
        work.path(),
        &[
            hostile.to_str().expect("utf-8 path"),
            "--compact",
            "--report",
            report_path.to_str().expect("utf-8 path"),
        ],
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("conformance cases failed"), "{stderr}");
    let report = report(&report_path);
    assert_eq!(report["passed"], false);
    assert_eq!(outcome(&report, "full"), "fail");
    // It claims no restore: not applicable, not passed.
    assert_eq!(
        outcome(&report, "restore into an empty tree"),
        "not-applicable"
    );
}

#[test]
fn a_peer_the_plugin_cannot_use_is_refused() {
    let work = tempfile::tempdir().expect("tempdir");
    let output = hoard_plugin_test(work.path(), &["tar", "--peer", "rsyncd", "--compact"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("tar declares no connect capability"),
        "{stderr}"
    );
}

#[test]
fn the_smb_and_nfs_peers_come_up_for_a_plugin_that_connects() {
    // No built-in transport speaks SMB or NFS yet; the hostile test plugin declares `connect`,
    // so the kit starts smbd and nfs-ganesha, serves the fixture, writes the config and runs
    // the cases: they fail on the plugin, not on the peers.
    let hostile = PathBuf::from(env!("HOARD_TEST_PLUGIN_DIR")).join("hostile.wasm");
    for peer in ["smb", "nfs"] {
        let work = tempfile::tempdir().expect("tempdir");
        let report_path = work.path().join("report.json");
        let output = hoard_plugin_test(
            work.path(),
            &[
                hostile.to_str().expect("utf-8 path"),
                "--peer",
                peer,
                "--compact",
                "--report",
                report_path.to_str().expect("utf-8 path"),
            ],
        );
        assert!(!output.status.success());
        let report = report(&report_path);
        assert_eq!(report["peer"], peer);
        let detail = report["cases"]
            .as_array()
            .and_then(|cases| cases.iter().find(|c| c["case"] == "full"))
            .map(|c| c["detail"].to_string())
            .unwrap_or_default();
        assert!(detail.contains("plugin hostile"), "{peer}: {detail}");
    }
}
