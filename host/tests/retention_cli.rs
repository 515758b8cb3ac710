//! `hoard keep`, `hoard expire` (dry run and real), `hoard gc` and `hoard fsck` on a real
//! pool holding two months of backdated daily backups: what remains follows the host's
//! policy, the kept backup and the newest stay, a dry run changes nothing, and the pool
//! checks clean afterwards.

use std::io::Write;
use std::path::Path;
use std::process::Command;

use hoard_pool::{BackupType, CommitInfo, Entry, EntryKind, Pool, PoolOptions, Timestamp};

const DAY: i64 = 86_400;

fn hoard(config: &Path, args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_hoard"))
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .expect("run hoard");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "hoard {args:?} failed:\n{text}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    text
}

fn numbers(config: &Path) -> Vec<u64> {
    let list: serde_json::Value =
        serde_json::from_str(&hoard(config, &["list", "web", "--json"])).expect("json");
    list.as_array()
        .expect("array")
        .iter()
        .filter_map(|b| b["number"].as_u64())
        .collect()
}

#[test]
fn expire_follows_the_policy_and_keeps_what_is_flagged() {
    let work = tempfile::tempdir().expect("tempdir");
    let pool_dir = work.path().join("pool");
    let now = Timestamp::now().seconds;
    {
        let pool = Pool::create(&pool_dir, PoolOptions::default()).expect("pool");
        for day in 0..60i64 {
            let kind = if day % 7 == 0 {
                BackupType::Full
            } else {
                BackupType::Incremental
            };
            let mut writer = pool.begin_snapshot("web", kind, None).expect("begin");
            writer.set_started(Timestamp {
                seconds: now - (60 - day) * DAY,
                nanos: 0,
            });
            let mut file = writer
                .begin_file(Entry::new(
                    format!("day-{day}").into_bytes(),
                    EntryKind::File,
                ))
                .expect("file");
            file.write_all(format!("content of day {day}").as_bytes())
                .expect("write");
            file.finish().expect("finish");
            writer.commit(CommitInfo::default()).expect("commit");
        }
    }
    let config = work.path().join("config");
    std::fs::create_dir_all(config.join("hosts")).expect("config");
    std::fs::write(
        config.join("hoard.ron"),
        format!(
            "(pool: {:?}, defaults: (transport: \"tar\"))",
            pool_dir.display().to_string()
        ),
    )
    .expect("hoard.ron");
    std::fs::write(
        config.join("hosts/web.ron"),
        "(address: \"localhost\", shares: [\"/srv\"], full_keep: [2], incr_keep: 3, incr_keep_min: 1, incr_age_max: \"30d\")",
    )
    .expect("web.ron");

    let before = numbers(&config);
    assert_eq!(before.len(), 60);
    hoard(&config, &["keep", "web:1"]);

    let dry: serde_json::Value =
        serde_json::from_str(&hoard(&config, &["expire", "--dry-run", "--json"])).expect("json");
    let would = dry[0]["expired"].as_array().expect("expired").len();
    assert!(would > 40, "{dry}");
    assert_eq!(numbers(&config), before, "a dry run removed backups");

    let done: serde_json::Value =
        serde_json::from_str(&hoard(&config, &["expire", "--json"])).expect("json");
    assert_eq!(done[0]["expired"].as_array().map(Vec::len), Some(would));
    let left = numbers(&config);
    assert_eq!(left.len(), 60 - would);
    // The flagged backup and the newest stay; three incrementals besides the newest; the
    // fulls full_keep [2] asks for (two besides the newest).
    assert!(left.contains(&1) && left.contains(&59), "{left:?}");
    let list: serde_json::Value =
        serde_json::from_str(&hoard(&config, &["list", "web", "--json"])).expect("json");
    let rows = list.as_array().expect("array");
    let unkept = |t: &str| {
        rows.iter()
            .filter(|b| b["type"] == t && b["keep"] == false && b["number"] != 59)
            .count()
    };
    assert_eq!(unkept("incr"), 3, "{list}");
    assert_eq!(unkept("full"), 2, "{list}");
    for reason in done[0]["expired"].as_array().expect("expired") {
        assert!(reason["reason"].as_str().is_some_and(|r| !r.is_empty()));
    }

    let text = hoard(&config, &["expire"]);
    assert!(text.contains("nothing expires"), "{text}");
    hoard(&config, &["gc"]);
    let fsck: serde_json::Value =
        serde_json::from_str(&hoard(&config, &["fsck", "--json"])).expect("json");
    assert_eq!(fsck["corrupt"], 0);
    assert_eq!(fsck["missing"], 0);
    assert_eq!(fsck["unreferenced_objects"], 0, "gc left garbage: {fsck}");

    hoard(&config, &["keep", "web:1", "--off"]);
    let again: serde_json::Value =
        serde_json::from_str(&hoard(&config, &["expire", "--json"])).expect("json");
    let removed: Vec<u64> = again[0]["expired"]
        .as_array()
        .expect("expired")
        .iter()
        .filter_map(|e| e["number"].as_u64())
        .collect();
    assert_eq!(removed, vec![1], "once unflagged, the old incremental goes");
}
