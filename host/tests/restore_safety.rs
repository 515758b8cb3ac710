//! A restore into a directory never writes outside it: a symlink planted in the target where
//! the backup has a directory is replaced, not followed.

use hoard::job::restore_local::restore_to_directory;
use hoard_pool::{BackupType, CommitInfo, Entry, EntryKind, Pool, PoolOptions};
use std::io::Write;

#[test]
fn a_planted_symlink_is_not_followed() {
    let work = tempfile::tempdir().expect("tempdir");
    let pool = Pool::create(work.path().join("pool"), PoolOptions::default()).expect("pool");
    let mut writer = pool
        .begin_snapshot("h", BackupType::Full, None)
        .expect("writer");
    writer
        .add(Entry::new(b"a".to_vec(), EntryKind::Directory))
        .expect("dir");
    let mut file = writer
        .begin_file(Entry::new(b"a/f".to_vec(), EntryKind::File))
        .expect("file");
    file.write_all(b"inside").expect("write");
    file.finish().expect("finish");
    writer
        .add(Entry::new(
            b"link".to_vec(),
            EntryKind::Symlink {
                target: b"/etc/passwd".to_vec(),
            },
        ))
        .expect("symlink");
    let info = writer.commit(CommitInfo::default()).expect("commit");
    let reader = pool.snapshot(&info.id).expect("reader");

    let outside = work.path().join("outside");
    std::fs::create_dir_all(&outside).expect("outside");
    let target = work.path().join("target");
    std::fs::create_dir_all(&target).expect("target");
    std::os::unix::fs::symlink(&outside, target.join("a")).expect("plant");

    let mut problems = Vec::new();
    let summary = restore_to_directory(&reader, b"", &target, |p| problems.push(p.to_string()))
        .expect("restore");
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(
        std::fs::read_dir(&outside).expect("outside").count(),
        0,
        "something was written outside"
    );
    let a = std::fs::symlink_metadata(target.join("a")).expect("a");
    assert!(
        a.is_dir(),
        "the planted symlink was replaced by the backup's directory"
    );
    assert_eq!(std::fs::read(target.join("a/f")).expect("f"), b"inside");
    let link = std::fs::read_link(target.join("link")).expect("symlink restored as a symlink");
    assert_eq!(link, std::path::Path::new("/etc/passwd"));
    assert!(summary.entries >= 3);
}
