//! The tar transport against real GNU tar on this machine (`LocalClient`): a generated tree with
//! the hard cases backed up and checked entry by entry and byte by byte, restored with `tar -x`
//! and compared again, an incremental with a change, a deletion, a rename and a new file; and
//! crafted hostile streams served by a fake `tar` that prints them.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hoard::client::local::LocalClient;
use hoard::plugin::bindings::{
    BackupJob, BackupLevel, Entry, EntryKind, JobSummary, RestoreJob, Setting,
};
use hoard::plugin::cache::CompileCache;
use hoard::plugin::imports::sink::{BackupSink, SinkError};
use hoard::plugin::imports::snapshot::{EntryIter, SnapshotSource, SourceError};
use hoard::plugin::run::JobRun;
use hoard::plugin::{
    CapabilityGrant, JobContext, LoadedPlugin, PluginCatalog, PluginEngine, RuntimeLimits,
};
use tokio::sync::OnceCell;

struct Fixture {
    engine: Arc<PluginEngine>,
    tar: Arc<LoadedPlugin>,
}

static FIXTURE: OnceCell<Fixture> = OnceCell::const_new();

fn limits() -> RuntimeLimits {
    RuntimeLimits {
        memory_bytes: 128 << 20,
        job_deadline: Duration::from_secs(120),
        client_timeout: Duration::from_secs(30),
        ..RuntimeLimits::default()
    }
}

async fn fixture() -> &'static Fixture {
    FIXTURE
        .get_or_init(|| async {
            let cache = CompileCache::in_dir(concat!(env!("CARGO_TARGET_TMPDIR"), "/compiled"));
            let engine = PluginEngine::new(cache).expect("engine");
            let catalog = PluginCatalog::load(engine.clone(), limits(), None)
                .await
                .expect("catalog");
            let tar = catalog.get("tar").expect("tar is built in").clone();
            Fixture { engine, tar }
        })
        .await
}

/// A backup as recorded: entries in the order they came, content by path.
#[derive(Default, Clone)]
struct Recorded {
    order: Vec<Vec<u8>>,
    entries: BTreeMap<Vec<u8>, Entry>,
    content: BTreeMap<Vec<u8>, Vec<u8>>,
    kept: u64,
    kept_trees: Vec<Vec<u8>>,
}

impl Recorded {
    fn put(&mut self, entry: Entry, content: Option<Vec<u8>>) {
        let path = entry.path.clone();
        if !self.entries.contains_key(&path) {
            self.order.push(path.clone());
        }
        match content {
            Some(c) => self.content.insert(path.clone(), c),
            None => self.content.remove(&path),
        };
        self.entries.insert(path, entry);
    }
}

/// A sink that records everything, taking kept content from a reference.
struct RecordingSink {
    out: Arc<Mutex<Recorded>>,
    reference: Option<Recorded>,
    open: Option<(Entry, Vec<u8>)>,
}

impl BackupSink for RecordingSink {
    fn add(&mut self, entry: Entry) -> Result<(), SinkError> {
        if entry.path.split(|b| *b == b'/').any(|c| c == b"..") || entry.path.starts_with(b"/") {
            return Err(SinkError::Protocol("bad path".into()));
        }
        if let EntryKind::Hardlink(target) = &entry.kind
            && !self.out.lock().unwrap().entries.contains_key(target)
        {
            return Err(SinkError::Protocol("hard link to nothing".into()));
        }
        self.out.lock().unwrap().put(entry, None);
        Ok(())
    }
    fn begin_file(&mut self, entry: Entry) -> Result<(), SinkError> {
        self.open = Some((entry, Vec::new()));
        Ok(())
    }
    fn write(&mut self, data: Vec<u8>) -> Result<(), SinkError> {
        self.open
            .as_mut()
            .expect("open file")
            .1
            .extend_from_slice(&data);
        Ok(())
    }
    fn finish_file(&mut self, _size: u64) -> Result<(), SinkError> {
        let (entry, data) = self.open.take().expect("open file");
        self.out.lock().unwrap().put(entry, Some(data));
        Ok(())
    }
    fn abandon_file(&mut self) {
        self.open = None;
    }
    fn keep(&mut self, entry: Entry) -> Result<(), SinkError> {
        let reference = self
            .reference
            .as_ref()
            .ok_or_else(|| SinkError::Protocol("no reference".into()))?;
        let content = reference.content.get(&entry.path).cloned();
        if let EntryKind::Hardlink(target) = &entry.kind
            && !self.out.lock().unwrap().entries.contains_key(target)
        {
            return Err(SinkError::Protocol("hard link to nothing".into()));
        }
        let mut out = self.out.lock().unwrap();
        out.kept += 1;
        out.put(entry, content);
        Ok(())
    }
    fn keep_tree(&mut self, path: &[u8]) -> Result<(), SinkError> {
        let reference = self
            .reference
            .as_ref()
            .ok_or_else(|| SinkError::Protocol("no reference".into()))?;
        if !reference.entries.contains_key(path) {
            return Err(SinkError::Protocol("not in the reference".into()));
        }
        let mut out = self.out.lock().unwrap();
        out.kept_trees.push(path.to_vec());
        for p in reference.order.iter().filter(|p| under(p, path)) {
            out.kept += 1;
            out.put(
                reference.entries[p].clone(),
                reference.content.get(p).cloned(),
            );
        }
        Ok(())
    }
    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any> {
        self
    }
}

/// A recorded backup as a snapshot to read (reference, restore).
struct MemorySource(Recorded);

fn under(path: &[u8], prefix: &[u8]) -> bool {
    prefix.is_empty()
        || path == prefix
        || (path.starts_with(prefix) && path.get(prefix.len()) == Some(&b'/'))
}

impl SnapshotSource for MemorySource {
    fn lookup(&self, path: &[u8]) -> Result<Option<Entry>, SourceError> {
        Ok(self.0.entries.get(path).cloned())
    }
    fn list_directory(&self, path: &[u8]) -> Result<Vec<Entry>, SourceError> {
        Ok(self
            .0
            .entries
            .values()
            .filter(|e| !e.path.is_empty() && hoard_parent(&e.path) == path)
            .cloned()
            .collect())
    }
    fn walk(&self, path: &[u8]) -> Result<EntryIter, SourceError> {
        let entries: Vec<Result<Entry, SourceError>> = self
            .0
            .order
            .iter()
            .filter(|p| under(p, path))
            .map(|p| Ok(self.0.entries[p].clone()))
            .collect();
        Ok(Box::new(entries.into_iter()))
    }
    fn open(&self, path: &[u8], offset: u64) -> Result<Box<dyn std::io::Read + Send>, SourceError> {
        let data = self.0.content.get(path).cloned().unwrap_or_default();
        let start = (offset as usize).min(data.len());
        Ok(Box::new(std::io::Cursor::new(data[start..].to_vec())))
    }
}

fn hoard_parent(path: &[u8]) -> &[u8] {
    path.iter()
        .rposition(|b| *b == b'/')
        .map_or(&b""[..], |i| &path[..i])
}

fn grant(tar: &str) -> CapabilityGrant {
    let mut grant = CapabilityGrant::default();
    grant.exec.insert("tar".into(), tar.into());
    grant
}

fn settings(pairs: &[(&str, String)]) -> Vec<Setting> {
    pairs
        .iter()
        .map(|(n, v)| Setting {
            name: n.to_string(),
            value: v.clone(),
        })
        .collect()
}

async fn backup(
    share: &Path,
    level: BackupLevel,
    reference: Option<Recorded>,
    job_settings: Vec<Setting>,
    tar: &str,
    excludes: Vec<Vec<u8>>,
) -> (JobRun<JobSummary>, Recorded) {
    let f = fixture().await;
    let out = Arc::new(Mutex::new(Recorded::default()));
    let sink = RecordingSink {
        out: out.clone(),
        reference: reference.clone(),
        open: None,
    };
    let job = BackupJob {
        host: "localhost".into(),
        address: "127.0.0.1".into(),
        share: share.as_os_str().as_bytes().to_vec(),
        level,
        has_reference: reference.is_some(),
        includes: vec![],
        excludes,
        one_file_system: false,
        settings: job_settings,
    };
    let context = JobContext {
        host: "localhost".into(),
        grant: grant(tar),
        client: Some(Arc::new(LocalClient)),
        sink: Some(Box::new(sink)),
        reference: reference.map(|r| Arc::new(MemorySource(r)) as Arc<dyn SnapshotSource>),
        ..JobContext::default()
    };
    let run = f.tar.backup(&f.engine, &limits(), job, context).await;
    let recorded = out.lock().unwrap().clone();
    (run, recorded)
}

async fn restore(
    snapshot: Recorded,
    share: &Path,
    source: &[u8],
    target: &[u8],
) -> JobRun<JobSummary> {
    let f = fixture().await;
    let job = RestoreJob {
        source: source.to_vec(),
        host: "localhost".into(),
        address: "127.0.0.1".into(),
        share: share.as_os_str().as_bytes().to_vec(),
        target: target.to_vec(),
        settings: vec![],
    };
    let context = JobContext {
        host: "localhost".into(),
        grant: grant("/usr/bin/tar"),
        client: Some(Arc::new(LocalClient)),
        snapshot: Some(Arc::new(MemorySource(snapshot))),
        ..JobContext::default()
    };
    f.tar.restore(&f.engine, &limits(), job, context).await
}

fn log_text(run: &JobRun<impl Sized>) -> String {
    run.log
        .lines()
        .iter()
        .map(|l| l.message.clone())
        .collect::<Vec<_>>()
        .join("\n")
}

fn sh(script: &str) {
    let status = Command::new("sh")
        .arg("-c")
        .arg(script)
        .status()
        .expect("sh");
    assert!(status.success(), "{script}");
}

fn has_setfattr() -> bool {
    Command::new("setfattr")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A tree with the hard cases.
fn make_tree(root: &Path) {
    let long = "n".repeat(200);
    let deep = (0..30)
        .map(|i| format!("level{i:02}"))
        .collect::<Vec<_>>()
        .join("/");
    sh(&format!(
        "set -e; cd '{root}'; \
         mkdir -p docs/sub {deep} empty-dir; \
         printf 'hello\\n' > docs/a.txt; head -c 300000 /dev/urandom > docs/sub/random.bin; \
         : > docs/empty; printf 'x' > '{long}'; printf deep > {deep}/leaf; \
         printf 'latin' > \"$(printf 'caf\\351')\"; printf 'nl' > \"$(printf 'new\\nline')\"; \
         printf 's' > setuid; chmod 4755 setuid; chmod 1777 empty-dir; printf g > setgid; chmod 2711 setgid; \
         ln -s docs/a.txt link-rel; ln -s /etc/passwd link-abs; ln -s 'dangling target' link-dangling; \
         ln docs/a.txt hard; mkfifo pipe; \
         truncate -s 5M sparse; printf 'middle' | dd of=sparse bs=1 seek=2000000 conv=notrunc status=none; \
         printf end | dd of=sparse bs=1 seek=5242877 conv=notrunc status=none; \
         chown 1234:5678 docs/a.txt; \
         touch -h -d @1600000000.123456789 docs/sub/random.bin link-rel; touch -d @-86400.5 docs/empty",
        root = root.display()
    ));
    if has_setfattr() {
        sh(&format!(
            "setfattr -n user.comment -v 'a value' '{}/docs/a.txt'",
            root.display()
        ));
        sh(&format!(
            "setfattr -n user.bin -v 0x00ff0a3d '{}/setuid'",
            root.display()
        ));
    }
}

/// What a path is on disk, for comparing with entries.
#[derive(Debug, PartialEq, Eq)]
struct Disk {
    kind: String,
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: (i64, u32),
    content: Option<Vec<u8>>,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

fn xattrs_of(path: &Path) -> Vec<(Vec<u8>, Vec<u8>)> {
    if !has_setfattr() {
        return vec![];
    }
    let out = Command::new("getfattr")
        .args([
            "-h",
            "-d",
            "-m",
            "^user\\.",
            "-e",
            "hex",
            "--absolute-names",
        ])
        .arg(path)
        .output()
        .expect("getfattr");
    let mut list = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        if let Some((name, value)) = line.split_once("=0x") {
            let bytes = (0..value.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&value[i..i + 2], 16).unwrap())
                .collect();
            list.push((name.as_bytes().to_vec(), bytes));
        }
    }
    list.sort();
    list
}

fn disk_tree(root: &Path) -> BTreeMap<Vec<u8>, Disk> {
    let mut out = BTreeMap::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let full = root.join(&rel);
        let meta = std::fs::symlink_metadata(&full).expect("stat");
        let ft = meta.file_type();
        let kind = if ft.is_dir() {
            for child in std::fs::read_dir(&full).expect("read_dir") {
                stack.push(rel.join(child.expect("entry").file_name()));
            }
            "dir".to_string()
        } else if ft.is_symlink() {
            format!(
                "symlink:{}",
                String::from_utf8_lossy(std::fs::read_link(&full).unwrap().as_os_str().as_bytes())
            )
        } else if ft.is_file() {
            "file".into()
        } else {
            "fifo".into()
        };
        let content = ft.is_file().then(|| std::fs::read(&full).expect("read"));
        out.insert(
            rel.as_os_str().as_bytes().to_vec(),
            Disk {
                kind,
                mode: if ft.is_symlink() {
                    0
                } else {
                    meta.permissions().mode() & 0o7777
                },
                uid: meta.uid(),
                gid: meta.gid(),
                mtime: (meta.mtime(), meta.mtime_nsec() as u32),
                content,
                xattrs: if ft.is_symlink() {
                    vec![]
                } else {
                    xattrs_of(&full)
                },
            },
        );
    }
    out
}

/// The recorded backup as the same shape (hard links resolved to their target's content).
fn recorded_tree(rec: &Recorded) -> BTreeMap<Vec<u8>, Disk> {
    rec.entries
        .values()
        .map(|e| {
            let (kind, content) = match &e.kind {
                EntryKind::Directory => ("dir".to_string(), None),
                EntryKind::File => (
                    "file".to_string(),
                    Some(rec.content.get(&e.path).cloned().unwrap_or_default()),
                ),
                EntryKind::Hardlink(t) => (
                    "file".to_string(),
                    Some(rec.content.get(t).cloned().unwrap_or_default()),
                ),
                EntryKind::Symlink(t) => (format!("symlink:{}", String::from_utf8_lossy(t)), None),
                EntryKind::Fifo => ("fifo".to_string(), None),
                other => (format!("{other:?}"), None),
            };
            // A hard link shares its target's inode: tar carries the xattrs with the target only.
            let inode = match &e.kind {
                EntryKind::Hardlink(t) => rec.entries.get(t).unwrap_or(e),
                _ => e,
            };
            let mut xattrs: Vec<(Vec<u8>, Vec<u8>)> = inode
                .xattrs
                .iter()
                .map(|x| (x.name.clone(), x.value.clone()))
                .collect();
            xattrs.sort();
            let mode = if matches!(e.kind, EntryKind::Symlink(_)) {
                0
            } else {
                e.mode
            };
            (
                e.path.clone(),
                Disk {
                    kind,
                    mode,
                    uid: e.uid,
                    gid: e.gid,
                    mtime: (e.mtime.seconds, e.mtime.nanoseconds),
                    content,
                    xattrs,
                },
            )
        })
        .collect()
}

fn assert_same(disk: &BTreeMap<Vec<u8>, Disk>, got: &BTreeMap<Vec<u8>, Disk>, what: &str) {
    let names = |m: &BTreeMap<Vec<u8>, Disk>| {
        m.keys()
            .map(|k| String::from_utf8_lossy(k).into_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(names(disk), names(got), "{what}: paths differ");
    for (path, expected) in disk {
        let actual = &got[path];
        let shown = String::from_utf8_lossy(path);
        assert_eq!(expected.kind, actual.kind, "{what}: kind of {shown}");
        assert_eq!(
            expected.content, actual.content,
            "{what}: content of {shown}"
        );
        assert_eq!(expected.mode, actual.mode, "{what}: mode of {shown}");
        assert_eq!(
            (expected.uid, expected.gid),
            (actual.uid, actual.gid),
            "{what}: owner of {shown}"
        );
        assert_eq!(expected.xattrs, actual.xattrs, "{what}: xattrs of {shown}");
        if !expected.kind.starts_with("dir") && !expected.kind.starts_with("symlink") {
            assert_eq!(expected.mtime, actual.mtime, "{what}: mtime of {shown}");
        }
    }
}

fn tar_path() -> &'static str {
    "/usr/bin/tar"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_backup_restore_and_incremental_round_trip() {
    let dir = tempfile::tempdir().expect("tempdir");
    let share = dir.path().join("share");
    std::fs::create_dir(&share).unwrap();
    make_tree(&share);

    // Full backup: every entry and byte as on disk.
    let (run, full) = backup(&share, BackupLevel::Full, None, vec![], tar_path(), vec![]).await;
    let log = log_text(&run);
    let summary = run.result.unwrap_or_else(|e| panic!("{e}\n{log}"));
    assert!(
        !summary.partial && summary.errors == 0,
        "{summary:?}\n{log}"
    );
    assert_same(&disk_tree(&share), &recorded_tree(&full), "full backup");
    assert!(
        matches!(full.entries[&b"hard"[..]].kind, EntryKind::Hardlink(_))
            || matches!(
                full.entries[&b"docs/a.txt"[..]].kind,
                EntryKind::Hardlink(_)
            )
    );
    assert_eq!(full.entries[&b"setuid"[..]].user.as_deref(), Some("root"));
    assert_eq!(full.entries[&b"setuid"[..]].group.as_deref(), Some("root"));
    assert_eq!(full.entries[&b""[..]].path, b"");
    assert_eq!(full.entries[&b"sparse"[..]].size, 5 << 20);
    assert!(
        summary.bytes < 1 << 20,
        "the sparse file crossed without its holes: {} bytes",
        summary.bytes
    );

    // Restore into another directory of the same host: the same tree again.
    let target = dir.path().join("restored");
    std::fs::create_dir(&target).unwrap();
    let run = restore(full.clone(), &target, b"", b"").await;
    let log = log_text(&run);
    let summary = run.result.unwrap_or_else(|e| panic!("{e}\n{log}"));
    assert!(!summary.partial, "{summary:?}\n{log}");
    let mut restored = disk_tree(&target);
    let mut original = disk_tree(&share);
    // The share roots are different directories (mode and times of the root aside).
    restored.remove(&b""[..]);
    original.remove(&b""[..]);
    assert_same(&original, &restored, "restore");
    let a = std::fs::metadata(target.join("docs/a.txt")).unwrap();
    let h = std::fs::metadata(target.join("hard")).unwrap();
    assert_eq!(a.ino(), h.ino(), "hard link restored as a link");

    // A subtree restored under another name.
    let run = restore(full.clone(), &target, b"docs/sub", b"again").await;
    run.result.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        std::fs::read(target.join("again/sub/random.bin")).unwrap(),
        std::fs::read(share.join("docs/sub/random.bin")).unwrap()
    );

    // Incremental: a change, a deletion, a rename of a directory, a new file.
    let started = started_now();
    std::thread::sleep(Duration::from_millis(2100));
    sh(&format!(
        "set -e; cd '{}'; printf changed > docs/a.txt; rm docs/empty; mv {} renamed; printf new > docs/new.txt",
        share.display(),
        "level00"
    ));
    let job_settings = settings(&[
        ("reference-started", started.to_string()),
        ("time-margin", "0".into()),
    ]);
    let (run, incr) = backup(
        &share,
        BackupLevel::Incremental,
        Some(full.clone()),
        job_settings,
        tar_path(),
        vec![],
    )
    .await;
    let log = log_text(&run);
    let summary = run.result.unwrap_or_else(|e| panic!("{e}\n{log}"));
    assert!(!summary.partial, "{summary:?}\n{log}");
    assert_same(&disk_tree(&share), &recorded_tree(&incr), "incremental");
    assert!(
        incr.kept >= 5,
        "unchanged files were kept, not read again ({} kept)\n{log}",
        incr.kept
    );
    assert!(
        summary.bytes < 100_000,
        "unchanged content crossed again: {} bytes\n{log}",
        summary.bytes
    );
}

/// Seconds since the epoch, one second from now: a `reference-started` after the last change.
fn started_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        + 1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unchanged_directories_are_kept_whole() {
    let dir = tempfile::tempdir().expect("tempdir");
    let share = dir.path().join("share");
    sh(&format!(
        "set -e; mkdir -p '{0}/a/b/c' '{0}/d/e' '{0}/a/empty'; cd '{0}'; \
         printf one > a/b/c/f1; printf two > a/b/f2; printf three > a/x; \
         printf four > d/e/g; printf five > d/h; printf six > top; ln -s a/x link",
        share.display()
    ));
    let (run, full) = backup(&share, BackupLevel::Full, None, vec![], tar_path(), vec![]).await;
    let log = log_text(&run);
    run.result.unwrap_or_else(|e| panic!("{e}\n{log}"));

    // No change: the whole share is one keep-tree and no content moves.
    let started = started_now();
    std::thread::sleep(Duration::from_millis(2100));
    let job_settings = || {
        settings(&[
            ("reference-started", started.to_string()),
            ("time-margin", "0".into()),
        ])
    };
    let (run, same) = backup(
        &share,
        BackupLevel::Incremental,
        Some(full.clone()),
        job_settings(),
        tar_path(),
        vec![],
    )
    .await;
    let log = log_text(&run);
    let summary = run.result.unwrap_or_else(|e| panic!("{e}\n{log}"));
    assert_eq!(same.kept_trees, vec![Vec::<u8>::new()], "{log}");
    assert_eq!(summary.bytes, 0, "{log}");
    assert_eq!(summary.entries, full.entries.len() as u64 - 1, "{log}");
    assert_same(
        &disk_tree(&share),
        &recorded_tree(&same),
        "no-change incremental",
    );

    // A change deep in `d`: `a` is kept whole, `d`, `d/e` and the root are rebuilt, the
    // changed file read, the other names kept one by one.
    sh(&format!("printf changed > '{}/d/e/g'", share.display()));
    let (run, changed) = backup(
        &share,
        BackupLevel::Incremental,
        Some(full.clone()),
        job_settings(),
        tar_path(),
        vec![],
    )
    .await;
    let log = log_text(&run);
    let summary = run.result.unwrap_or_else(|e| panic!("{e}\n{log}"));
    assert_eq!(changed.kept_trees, vec![b"a".to_vec()], "{log}");
    assert_eq!(summary.bytes, "changed".len() as u64, "{log}");
    assert_eq!(changed.content[&b"d/e/g"[..]], b"changed");
    assert_same(
        &disk_tree(&share),
        &recorded_tree(&changed),
        "incremental after a change",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn excludes_and_unreadable_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let share = dir.path().join("share");
    std::fs::create_dir(&share).unwrap();
    sh(&format!(
        "set -e; cd '{}'; mkdir -p keep cache proc; echo a > keep/a; echo b > cache/b.tmp; echo c > keep/c.tmp; echo p > proc/x",
        share.display()
    ));
    let excludes = vec![b"*.tmp".to_vec(), b"/proc".to_vec()];
    let (run, rec) = backup(
        &share,
        BackupLevel::Full,
        None,
        vec![],
        tar_path(),
        excludes,
    )
    .await;
    let log = log_text(&run);
    run.result.unwrap_or_else(|e| panic!("{e}\n{log}"));
    let paths: Vec<String> = rec
        .entries
        .keys()
        .map(|k| String::from_utf8_lossy(k).into_owned())
        .collect();
    assert_eq!(paths, ["", "cache", "keep", "keep/a"], "{log}");

    // An unreadable file (as nobody, whom permissions stop even though we are root) makes the
    // backup partial, the file is in the log. Run tar through setpriv when available.
    if Command::new("setpriv")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        let wrapper = dir.path().join("tar-as-nobody");
        std::fs::write(&wrapper, "#!/bin/sh\nexec setpriv --reuid=65534 --regid=65534 --clear-groups /usr/bin/tar \"$@\"\n").unwrap();
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
        sh(&format!(
            "chmod 755 '{0}' '{1}'; chmod -R a+rX '{1}'; echo secret > '{1}/keep/secret'; chmod 600 '{1}/keep/secret'",
            dir.path().display(),
            share.display()
        ));
        let (run, rec) = backup(
            &share,
            BackupLevel::Full,
            None,
            vec![],
            wrapper.to_str().unwrap(),
            vec![],
        )
        .await;
        let log = log_text(&run);
        let summary = run.result.unwrap_or_else(|e| panic!("{e}\n{log}"));
        assert!(summary.partial && summary.errors >= 1, "{summary:?}\n{log}");
        assert!(
            log.contains("secret") && log.contains("Permission denied"),
            "{log}"
        );
        assert!(
            rec.entries.contains_key(&b"keep/a"[..])
                && !rec.entries.contains_key(&b"keep/secret"[..])
        );
    }
}

/// A raw ustar header (the name field takes any bytes, unlike a tar writer's checked API).
fn raw_header(name: &[u8], kind: u8, size: u64, link: &[u8]) -> Vec<u8> {
    let mut h = tar::Header::new_ustar();
    h.as_old_mut().name[..name.len()].copy_from_slice(name);
    h.as_old_mut().linkname[..link.len()].copy_from_slice(link);
    h.set_entry_type(tar::EntryType::new(kind));
    h.set_size(size);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_700_000_000);
    h.set_cksum();
    h.as_bytes().to_vec()
}

fn member(out: &mut Vec<u8>, name: &[u8], kind: u8, content: &[u8], link: &[u8]) {
    out.extend(raw_header(name, kind, content.len() as u64, link));
    out.extend_from_slice(content);
    out.resize(out.len().div_ceil(512) * 512, 0);
}

fn end(out: &mut Vec<u8>) {
    out.extend(vec![0u8; 1024]);
}

/// Backs up with a fake `tar` that ignores its arguments and prints `archive`.
async fn hostile(archive: &[u8]) -> (JobRun<JobSummary>, Recorded, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("crafted.tar");
    std::fs::write(&file, archive).unwrap();
    let fake = dir.path().join("fake-tar");
    std::fs::write(
        &fake,
        format!("#!/bin/sh\ncat >/dev/null\nexec cat '{}'\n", file.display()),
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (run, rec) = backup(
        dir.path(),
        BackupLevel::Full,
        None,
        vec![],
        fake.to_str().unwrap(),
        vec![],
    )
    .await;
    let log = log_text(&run);
    // Nothing was written outside: the crafted names never became files anywhere.
    assert!(!Path::new("/etc/hoard-tar-hostile").exists());
    (run, rec, log)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_names_are_left_out() {
    let mut a = Vec::new();
    member(&mut a, b"./", b'5', b"", b"");
    member(&mut a, b"../escape", b'0', b"evil", b"");
    member(&mut a, b"/etc/hoard-tar-hostile", b'0', b"evil", b"");
    member(&mut a, b"./a/../../up", b'0', b"evil", b"");
    member(&mut a, b"./link", b'2', b"", b"/etc");
    member(&mut a, b"./link/passwd", b'0', b"evil", b"");
    member(&mut a, b"./hl", b'1', b"", b"../../etc/shadow");
    member(&mut a, b"./fine", b'0', b"good", b"");
    end(&mut a);
    let (run, rec, log) = hostile(&a).await;
    let summary = run.result.unwrap_or_else(|e| panic!("{e}\n{log}"));
    assert!(summary.partial && summary.errors == 5, "{summary:?}\n{log}");
    let paths: Vec<String> = rec
        .entries
        .keys()
        .map(|k| String::from_utf8_lossy(k).into_owned())
        .collect();
    assert_eq!(paths, ["", "fine", "link"], "{log}");
    assert_eq!(rec.content[&b"fine"[..]], b"good");
    for expected in [
        "../escape",
        "absolute path",
        "link/passwd",
        "not a directory",
        "hard link",
    ] {
        assert!(log.contains(expected), "missing {expected:?} in\n{log}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absurd_sizes_and_truncated_streams_fail_clearly() {
    // A declared size past 2^53 (base-256 in the size field).
    let mut a = raw_header(b"./big", b'0', 0, b"");
    a[124] = 0x80;
    for b in &mut a[125..136] {
        *b = 0xff;
    }
    let mut h = tar::Header::from_byte_slice(&a).clone();
    h.set_cksum();
    let mut archive = h.as_bytes().to_vec();
    end(&mut archive);
    let (run, _, log) = hostile(&archive).await;
    let error = run
        .result
        .expect_err("an absurd size fails the job")
        .to_string();
    assert!(error.contains("absurd"), "{error}\n{log}");

    // Content cut short.
    let mut archive = raw_header(b"./cut", b'0', 100_000, b"");
    archive.extend(vec![7u8; 5000]);
    let (run, rec, log) = hostile(&archive).await;
    let error = run
        .result
        .expect_err("a truncated stream fails the job")
        .to_string();
    assert!(error.contains("truncated"), "{error}\n{log}");
    assert!(
        !rec.entries.contains_key(&b"cut"[..]),
        "a cut file is not stored"
    );

    // A stream that ends between members, without its end marker.
    let mut archive = Vec::new();
    member(&mut archive, b"./one", b'0', b"1", b"");
    let (run, _, log) = hostile(&archive).await;
    let error = run
        .result
        .expect_err("no end marker fails the job")
        .to_string();
    assert!(error.contains("truncated"), "{error}\n{log}");

    // Garbage instead of tar.
    let (run, _, log) = hostile(&[b'x'; 2048]).await;
    let error = run.result.expect_err("garbage fails the job").to_string();
    assert!(error.contains("checksum"), "{error}\n{log}");
}

#[test]
fn paths_compare_as_bytes() {
    assert!(under(b"a/b", b"a") && !under(b"ab", b"a"));
    assert_eq!(hoard_parent(b"a/b"), b"a");
    let _ = OsStr::new("x");
}
