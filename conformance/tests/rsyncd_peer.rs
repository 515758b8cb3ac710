//! The rsync daemon peer comes up, serves its module to the stock rsync client with the
//! right password (the pulled tree equals the fixture), and refuses a wrong one.

use std::process::Command;

use hoard_conformance::fixture::{build_tree, describe_tree, differences};
use hoard_conformance::peers::RsyncdPeer;

#[test]
fn serves_the_module_with_the_password_and_refuses_without() {
    let work = tempfile::tempdir().expect("tempdir");
    let tree = work.path().join("tree");
    build_tree(&tree).expect("fixture");
    let peer = RsyncdPeer::start(&tree, "backup", "s3cret").expect("rsyncd peer");
    let pulled = work.path().join("pulled");
    let status = Command::new("rsync")
        .args(["-aHAX", "--numeric-ids"])
        .arg(peer.url("backup"))
        .arg(format!("{}/", pulled.display()))
        .env("RSYNC_PASSWORD", "s3cret")
        .status()
        .expect("rsync");
    assert!(
        status.success(),
        "log: {:?}",
        std::fs::read_to_string(peer.log())
    );
    let diff = differences(
        &describe_tree(&tree).expect("describe"),
        &describe_tree(&pulled).expect("describe"),
    );
    assert!(diff.is_empty(), "{}", diff.join("\n"));

    let refused = Command::new("rsync")
        .arg(peer.url("backup"))
        .env("RSYNC_PASSWORD", "wrong")
        .output()
        .expect("rsync");
    assert_eq!(
        refused.status.code(),
        Some(5),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
}
