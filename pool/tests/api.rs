//! The snapshot API end to end: entries in any order, every kind of metadata, streaming and
//! range reads, keep/keep_tree, dedup, numbering, deletion, reopening.

mod common;

use std::io::{Read, Write};

use common::{new_pool, put, random_bytes};
use hoard_pool::{
    BackupType, CommitInfo, DeviceNumber, Entry, EntryKind, Pool, PoolError, SnapshotId, Timestamp,
    Xattr,
};

fn commit(w: hoard_pool::SnapshotWriter) -> hoard_pool::SnapshotInfo {
    w.commit(CommitInfo::default()).unwrap()
}

#[test]
fn metadata_of_every_kind_round_trips() {
    let (_d, pool) = new_pool();
    let mut w = pool
        .begin_snapshot("alpha", BackupType::Full, None)
        .unwrap();
    let mut file = Entry::new(b"etc/\xe9t\xe9.conf".to_vec(), EntryKind::File);
    file.mode = 0o4755;
    file.uid = 12;
    file.gid = 34;
    file.user = Some("ann".into());
    file.group = Some("staff".into());
    file.mtime = Timestamp {
        seconds: -1_000_000_000,
        nanos: 123_456_789,
    };
    file.xattrs = vec![Xattr {
        name: b"user.a".to_vec(),
        value: vec![0, 1, 2, 255],
    }];
    let mut fw = w.begin_file(file.clone()).unwrap();
    fw.write_all(b"hello").unwrap();
    let summary = fw.finish().unwrap();
    assert_eq!(summary.size, 5);
    let specials = vec![
        Entry::new(
            b"dev/null".to_vec(),
            EntryKind::CharDevice(DeviceNumber { major: 1, minor: 3 }),
        ),
        Entry::new(
            b"dev/sda".to_vec(),
            EntryKind::BlockDevice(DeviceNumber { major: 8, minor: 0 }),
        ),
        Entry::new(b"run/fifo".to_vec(), EntryKind::Fifo),
        Entry::new(b"run/sock".to_vec(), EntryKind::Socket),
        Entry::new(
            b"etc/link".to_vec(),
            EntryKind::Symlink {
                target: b"/abs/\xff".to_vec(),
            },
        ),
        Entry::new(b"etc/empty".to_vec(), EntryKind::File),
    ];
    for e in &specials {
        w.add(e.clone()).unwrap();
    }
    let mut sticky = Entry::new(b"tmp".to_vec(), EntryKind::Directory);
    sticky.mode = 0o1777;
    w.add(sticky.clone()).unwrap();
    let info = commit(w);
    assert_eq!(info.id, SnapshotId::new("alpha", 0));
    assert_eq!(info.file_count, 2);
    assert_eq!(info.bytes, 5);

    let r = pool.snapshot(&info.id).unwrap();
    let mut expect = file.clone();
    expect.size = 5;
    assert_eq!(r.lookup(&file.path).unwrap().unwrap(), expect);
    assert_eq!(r.lookup(b"/etc/./\xe9t\xe9.conf").unwrap().unwrap(), expect);
    for e in &specials {
        assert_eq!(&r.lookup(&e.path).unwrap().unwrap(), e);
    }
    assert_eq!(r.lookup(b"tmp").unwrap().unwrap(), sticky);
    let implicit = r.lookup(b"dev").unwrap().unwrap();
    assert_eq!(implicit.mode, 0o755);
    assert!(implicit.is_dir());
    assert_eq!(r.read_file(&file.path).unwrap(), b"hello");
    assert_eq!(r.read_file(b"etc/empty").unwrap(), b"");
    assert!(matches!(
        r.read_file(b"dev/null"),
        Err(PoolError::NotAFile { .. })
    ));
    assert!(matches!(
        r.list_dir(b"etc/link"),
        Err(PoolError::NotADirectory { .. })
    ));
    assert!(matches!(
        r.list_dir(b"nope"),
        Err(PoolError::PathNotFound { .. })
    ));
    assert!(r.lookup(b"nope/deeper").unwrap().is_none());
    assert!(matches!(
        r.lookup(b"../etc"),
        Err(PoolError::InvalidPath(_))
    ));
    let names: Vec<Vec<u8>> = r
        .list_dir(b"")
        .unwrap()
        .into_iter()
        .map(|e| e.path)
        .collect();
    assert_eq!(
        names,
        vec![
            b"dev".to_vec(),
            b"etc".to_vec(),
            b"run".to_vec(),
            b"tmp".to_vec()
        ]
    );
}

#[test]
fn any_order_last_wins_and_hostile_paths_refused() {
    let (_d, pool) = new_pool();
    let mut w = pool.begin_snapshot("h", BackupType::Full, None).unwrap();
    put(&mut w, b"a/b/c/deep", b"1");
    put(&mut w, b"z", b"first");
    let mut dir = Entry::new(b"a/b".to_vec(), EntryKind::Directory);
    dir.mode = 0o700;
    w.add(dir).unwrap();
    put(&mut w, b"/z", b"second");
    put(&mut w, b"./a/x", b"2");
    assert!(matches!(
        w.add(Entry::new(b"../escape".to_vec(), EntryKind::File)),
        Err(PoolError::InvalidPath(_))
    ));
    assert!(matches!(
        w.begin_file(Entry::new(b"a/\0".to_vec(), EntryKind::File)),
        Err(PoolError::InvalidPath(_))
    ));
    // A refused path does not break the writer.
    put(&mut w, b"after", b"3");
    let info = commit(w);
    let r = pool.snapshot(&info.id).unwrap();
    assert_eq!(r.read_file(b"z").unwrap(), b"second");
    assert_eq!(r.lookup(b"a/b").unwrap().unwrap().mode, 0o700);
    assert_eq!(r.read_file(b"a/b/c/deep").unwrap(), b"1");
    assert_eq!(info.file_count, 4);
    let walked: Vec<Vec<u8>> = r.walk(b"").map(|e| e.unwrap().path).collect();
    let expected: Vec<&[u8]> = vec![
        b"",
        b"a",
        b"a/b",
        b"a/b/c",
        b"a/b/c/deep",
        b"a/x",
        b"after",
        b"z",
    ];
    assert_eq!(walked, expected);
}

#[test]
fn hardlinks_walk_after_their_targets() {
    let (_d, pool) = new_pool();
    let mut w = pool.begin_snapshot("h", BackupType::Full, None).unwrap();
    w.add(Entry::new(
        b"a/link".to_vec(),
        EntryKind::Hardlink {
            target: b"/b/target".to_vec(),
        },
    ))
    .unwrap();
    w.add(Entry::new(
        b"a/chain".to_vec(),
        EntryKind::Hardlink {
            target: b"c/link2".to_vec(),
        },
    ))
    .unwrap();
    w.add(Entry::new(
        b"c/link2".to_vec(),
        EntryKind::Hardlink {
            target: b"b/target".to_vec(),
        },
    ))
    .unwrap();
    put(&mut w, b"b/target", b"shared content");
    w.add(Entry::new(
        b"d/outside".to_vec(),
        EntryKind::Hardlink {
            target: b"elsewhere".to_vec(),
        },
    ))
    .unwrap();
    let info = commit(w);
    let r = pool.snapshot(&info.id).unwrap();
    let walked: Vec<Vec<u8>> = r.walk(b"").map(|e| e.unwrap().path).collect();
    let pos = |p: &[u8]| walked.iter().position(|x| x == p).unwrap();
    assert!(pos(b"b/target") < pos(b"a/link"));
    assert!(pos(b"b/target") < pos(b"c/link2"));
    assert!(pos(b"c/link2") < pos(b"a/chain"));
    assert!(walked.contains(&b"d/outside".to_vec()));
    assert_eq!(r.read_file(b"a/chain").unwrap(), b"shared content");
    // Restricted to a/, the targets are outside: plain order.
    let sub: Vec<Vec<u8>> = r.walk(b"a").map(|e| e.unwrap().path).collect();
    assert_eq!(
        sub,
        vec![b"a".to_vec(), b"a/chain".to_vec(), b"a/link".to_vec()]
    );
}

#[test]
fn large_file_streams_ranges_and_small_edit_stores_little() {
    let (_d, pool) = new_pool();
    let data = random_bytes(3_000_000, 1);
    let mut w = pool.begin_snapshot("h", BackupType::Full, None).unwrap();
    put(&mut w, b"big", &data);
    let first = commit(w);
    assert!(first.new_bytes >= 3_000_000);

    let r = pool.snapshot(&first.id).unwrap();
    let mut streamed = Vec::new();
    let mut reader = r.open_file(b"big").unwrap();
    assert_eq!(reader.len(), 3_000_000);
    let mut buf = vec![0u8; 7777];
    loop {
        let n = reader.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        streamed.extend_from_slice(&buf[..n]);
    }
    assert!(streamed == data);
    for (off, len) in [
        (0u64, 10u64),
        (123_456, 200_000),
        (2_999_990, 100),
        (5_000_000, 10),
        (0, 3_000_000),
    ] {
        let got = r.read_range(b"big", off, len).unwrap();
        let end = (off + len).min(3_000_000) as usize;
        let start = (off as usize).min(end);
        assert!(got == data[start..end], "range {off}+{len}");
    }

    let mut edited = data.clone();
    edited[1_500_000..1_500_010].copy_from_slice(b"0123456789");
    let mut w = pool
        .begin_snapshot("h", BackupType::Full, Some(&first.id))
        .unwrap();
    put(&mut w, b"big", &edited);
    let second = commit(w);
    assert_eq!(second.id.number, 1);
    assert!(
        second.new_bytes < 400_000,
        "an edit stored {} new bytes",
        second.new_bytes
    );
    assert!(
        pool.snapshot(&second.id)
            .unwrap()
            .read_file(b"big")
            .unwrap()
            == edited
    );
}

#[test]
fn keep_and_keep_tree_share_the_reference() {
    let (_d, pool) = new_pool();
    let mut w = pool.begin_snapshot("h", BackupType::Full, None).unwrap();
    for i in 0..20 {
        put(
            &mut w,
            format!("stable/s{i}").as_bytes(),
            &random_bytes(5000, i),
        );
    }
    put(&mut w, b"home/doc", b"v1");
    put(&mut w, b"home/other", b"o");
    let first = commit(w);

    let mut w = pool
        .begin_snapshot("h", BackupType::Incremental, Some(&first.id))
        .unwrap();
    assert_eq!(w.reference().unwrap().info().id, first.id);
    w.keep_tree(b"stable").unwrap();
    let mut doc = Entry::new(b"home/doc".to_vec(), EntryKind::File);
    doc.mode = 0o600;
    w.keep(doc).unwrap();
    put(&mut w, b"home/new", b"n");
    let missing = w.keep(Entry::new(b"home/gone".to_vec(), EntryKind::File));
    assert!(matches!(missing, Err(PoolError::NotInReference { .. })));
    let wrong_kind = w.keep(Entry::new(b"stable".to_vec(), EntryKind::File));
    assert!(matches!(wrong_kind, Err(PoolError::NotInReference { .. })));
    assert!(w.keep_tree(b"nowhere").is_err());
    let second = commit(w);
    assert_eq!(second.file_count, 22);
    assert!(second.new_bytes < 10, "{}", second.new_bytes);
    assert_eq!(second.reference, Some(0));

    let r = pool.snapshot(&second.id).unwrap();
    assert_eq!(r.read_file(b"home/doc").unwrap(), b"v1");
    assert_eq!(r.lookup(b"home/doc").unwrap().unwrap().mode, 0o600);
    assert_eq!(r.lookup(b"home/doc").unwrap().unwrap().size, 2);
    assert!(r.lookup(b"home/other").unwrap().is_none());
    assert_eq!(r.read_file(b"stable/s3").unwrap(), random_bytes(5000, 3));

    // keep_tree then a change inside: the rest is inherited.
    let mut w = pool
        .begin_snapshot("h", BackupType::Incremental, Some(&second.id))
        .unwrap();
    w.keep_tree(b"").unwrap();
    put(&mut w, b"stable/s5", b"changed");
    let third = commit(w);
    let r = pool.snapshot(&third.id).unwrap();
    assert_eq!(r.read_file(b"stable/s5").unwrap(), b"changed");
    assert_eq!(r.read_file(b"stable/s6").unwrap(), random_bytes(5000, 6));
    assert_eq!(r.read_file(b"home/new").unwrap(), b"n");
    assert_eq!(third.file_count, 22);

    // Without a reference, keep is an error that does not break the writer.
    let mut w = pool
        .begin_snapshot("other", BackupType::Full, None)
        .unwrap();
    assert!(w.keep(Entry::new(b"x".to_vec(), EntryKind::File)).is_err());
    put(&mut w, b"x", b"fine");
    commit(w);
}

#[test]
fn identical_snapshots_and_hosts_dedup() {
    let (_d, pool) = new_pool();
    let files: Vec<Vec<u8>> = (0..30).map(|i| random_bytes(20_000, i)).collect();
    let mut infos = Vec::new();
    for host in ["one", "two"] {
        let mut w = pool.begin_snapshot(host, BackupType::Full, None).unwrap();
        for (i, f) in files.iter().enumerate() {
            put(&mut w, format!("data/{i}").as_bytes(), f);
        }
        infos.push(commit(w));
    }
    assert!(infos[0].new_bytes >= 600_000);
    assert_eq!(infos[1].new_bytes, 0);
    let stats = pool.stats().unwrap();
    assert_eq!(stats.total.logical_bytes, 1_200_000);
    assert_eq!(stats.total.unique_bytes, 600_000);
    assert!((stats.total.dedup_ratio - 2.0).abs() < 1e-9);
    assert_eq!(stats.hosts.len(), 2);
    assert_eq!(stats.hosts["two"].unique_bytes, 600_000);
    assert_eq!(
        pool.hosts().unwrap(),
        vec!["one".to_string(), "two".to_string()]
    );
}

#[test]
fn numbering_delete_keep_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pool");
    {
        let pool = Pool::create(&path, common::generator::test_options()).unwrap();
        assert!(matches!(
            Pool::create(&path, Default::default()),
            Err(PoolError::AlreadyExists { .. })
        ));
        assert!(matches!(Pool::open(&path), Err(PoolError::Locked { .. })));
        for i in 0..3u8 {
            let mut w = pool.begin_snapshot("h", BackupType::Full, None).unwrap();
            put(&mut w, b"f", &[i]);
            w.commit(CommitInfo {
                comment: format!("c{i}"),
                errors: i as u64,
                partial: i == 1,
                ..Default::default()
            })
            .unwrap();
        }
        pool.delete_snapshot(&SnapshotId::new("h", 2)).unwrap();
        assert!(matches!(
            pool.delete_snapshot(&SnapshotId::new("h", 2)),
            Err(PoolError::SnapshotNotFound { .. })
        ));
        pool.set_keep(&SnapshotId::new("h", 0), true).unwrap();
        // An abandoned writer leaves nothing in the catalog.
        let mut w = pool.begin_snapshot("h", BackupType::Full, None).unwrap();
        put(&mut w, b"abandoned", b"zzz");
        drop(w);
        assert!(matches!(
            pool.begin_snapshot("bad/host", BackupType::Full, None),
            Err(PoolError::InvalidHost { .. })
        ));
        assert!(matches!(
            pool.snapshot(&SnapshotId::new("h", 9)),
            Err(PoolError::SnapshotNotFound { .. })
        ));
    }
    let pool = Pool::open(&path).unwrap();
    let snaps = pool.snapshots("h").unwrap();
    assert_eq!(
        snaps.iter().map(|s| s.id.number).collect::<Vec<_>>(),
        vec![0, 1]
    );
    assert!(snaps[0].keep);
    assert!(snaps[1].partial);
    assert_eq!(snaps[1].errors, 1);
    assert_eq!(snaps[1].comment, "c1");
    assert!(pool.snapshots("unknown").unwrap().is_empty());
    // Numbers are never reused, even after deleting the latest.
    let mut w = pool.begin_snapshot("h", BackupType::Full, None).unwrap();
    put(&mut w, b"f", b"again");
    assert_eq!(w.commit(CommitInfo::default()).unwrap().id.number, 3);
    assert_eq!(
        pool.snapshot(&SnapshotId::new("h", 1))
            .unwrap()
            .read_file(b"f")
            .unwrap(),
        vec![1]
    );
    let report = pool.fsck(&Default::default()).unwrap();
    assert!(report.is_clean(), "{report:?}");
}

#[test]
fn many_entries_spill_and_list_sorted() {
    let (_d, pool) = new_pool();
    let mut w = pool.begin_snapshot("h", BackupType::Full, None).unwrap();
    let mut names: Vec<u32> = (0..5000).collect();
    fastrand::Rng::with_seed(3).shuffle(&mut names);
    for i in &names {
        w.add(Entry::new(
            format!("big/{i:05}").into_bytes(),
            EntryKind::Fifo,
        ))
        .unwrap();
    }
    let info = commit(w);
    assert_eq!(info.entry_count, 5001);
    let listed = pool.snapshot(&info.id).unwrap().list_dir(b"big").unwrap();
    assert_eq!(listed.len(), 5000);
    assert!(listed.windows(2).all(|p| p[0].path < p[1].path));
    assert_eq!(listed[42].path, b"big/00042");
}

#[test]
fn generated_snapshots_verify() {
    let (_d, pool) = new_pool();
    for seed in 1..=3 {
        let info = common::generator::commit_seed(&pool, "gen", seed);
        common::generator::verify(&pool.snapshot(&info.id).unwrap(), seed).unwrap();
    }
    for info in pool.snapshots("gen").unwrap() {
        let seed: u64 = info.comment.parse().unwrap();
        common::generator::verify(&pool.snapshot(&info.id).unwrap(), seed).unwrap();
    }
}
