//! Hook commands around a real backup of a local folder with the tar plugin: pre and post
//! commands per backup and per share run without a shell with their variables substituted;
//! a failing pre command is logged and ignored, unless the host checks status, which then
//! stops the backup before anything is stored.

mod common;

use std::path::Path;
use std::process::Command;

fn hoard(config: &Path, args: &[&str]) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_hoard"))
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .expect("run hoard");
    (
        output.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}

fn config(dir: &Path, pool: &Path, share: &Path, hooks: &str) {
    common::write_global_config(dir, pool, "defaults: (transport: \"tar\")");
    std::fs::write(
        dir.join("hosts/localhost.ron"),
        format!(
            "(shares: [{:?}], hooks: {hooks})",
            share.display().to_string()
        ),
    )
    .expect("localhost.ron");
}

#[test]
fn hooks_run_around_backups_and_can_stop_them() {
    let work = tempfile::tempdir().expect("tempdir");
    let share = work.path().join("data");
    std::fs::create_dir_all(&share).expect("share");
    std::fs::write(share.join("file"), b"content").expect("file");
    let marks = work.path().join("marks");
    std::fs::create_dir_all(&marks).expect("marks");
    let pool = work.path().join("pool");
    let dir = work.path().join("config");
    let m = marks.display().to_string();
    config(
        &dir,
        &pool,
        &share,
        &format!(
            "(backup_pre: [\"/usr/bin/touch\", \"{m}/pre-$host-$type\"], \
              backup_post: [\"/usr/bin/touch\", \"{m}/post-$host-$type-$xfer_ok\"], \
              share_pre: [\"/usr/bin/touch\", \"{m}/share-pre\"], \
              share_post: [\"/bin/sh\", \"-c\", \"touch {m}/share-post-$xfer_ok; exit 3\"])"
        ),
    );
    let (ok, text) = hoard(&dir, &["backup", "localhost", "--full"]);
    assert!(ok, "{text}");
    for mark in [
        "pre-localhost-full",
        "post-localhost-full-1",
        "share-pre",
        "share-post-1",
    ] {
        assert!(marks.join(mark).exists(), "{mark} missing: {text}");
    }
    // The failing share_post was logged, not fatal (check_status is off).
    assert!(text.contains("exited with"), "{text}");

    // A failing pre command stops the backup when the host checks status.
    config(
        &dir,
        &pool,
        &share,
        "(backup_pre: [\"/bin/false\"], check_status: true)",
    );
    let (ok, text) = hoard(&dir, &["backup", "localhost", "--incr"]);
    assert!(!ok && text.contains("/bin/false"), "{text}");
    let (_, list) = hoard(&dir, &["list", "localhost", "--json"]);
    let list: serde_json::Value = serde_json::from_str(&list).expect("json");
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");

    // A hook that is an empty list is a config error naming the file.
    config(&dir, &pool, &share, "(backup_pre: [])");
    let (ok, text) = hoard(&dir, &["config", "check"]);
    assert!(
        !ok && text.contains("localhost.ron") && text.contains("hooks.backup_pre"),
        "{text}"
    );
}
