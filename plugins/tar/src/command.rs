//! What the plugin asks GNU tar to do, and what it makes of tar's answers: the argument lists
//! of every run, the file list written to tar's standard input (includes, excludes, names to
//! fetch), the reading of tar's messages and exit status, and the settings a host config may
//! give.
//!
//! Excludes are arguments (`--exclude=PATTERN`), where the host's argument rules can see them;
//! names (includes, names to fetch) travel on standard input with `--null
//! --verbatim-files-from -T -`, so tar takes every line as a name, never as an option (the
//! host insists on that: a file list with options could carry `-C /` past its checks). Names
//! in the list always start with `./`.

use hoard_plugin_sdk::transport::hoard::plugin::types::Setting;

/// tar's record size in 512-byte blocks for the archives it sends: 64 KiB writes rather than
/// the default 10 KiB, which cuts the client's write calls (and the wake-ups of whoever reads
/// its pipe: sshd, or the host for a local client) by six. Measured on a 1 GiB tree piped to
/// a reader: 1.1 s of CPU on both sides of the pipe instead of 1.8 s. The end of the archive
/// is padded to one record, which the reader drains.
const BLOCKING_FACTOR: &str = "--blocking-factor=128";

/// The options shared by every archive-creating run.
fn create_options(sparse: bool, xattrs: bool, one_file_system: bool) -> Vec<Vec<u8>> {
    let mut args: Vec<Vec<u8>> = ["-c", "-f", "-", BLOCKING_FACTOR, "--format=posix"]
        .iter()
        .map(|a| a.as_bytes().to_vec())
        .collect();
    if sparse {
        args.push(b"--sparse".to_vec());
        args.push(b"--sparse-version=1.0".to_vec());
    }
    if xattrs {
        args.push(b"--xattrs".to_vec());
        args.push(b"--xattrs-include=*".to_vec());
    }
    if one_file_system {
        args.push(b"--one-file-system".to_vec());
    }
    args
}

/// How one job runs tar, from the job and its settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TarOptions {
    /// The share on the client.
    pub share: Vec<u8>,
    /// Stay on one file system.
    pub one_file_system: bool,
    /// Ask for sparse files without their holes.
    pub sparse: bool,
    /// Carry extended attributes.
    pub xattrs: bool,
    /// Patterns to leave out, as the admin wrote them.
    pub excludes: Vec<Vec<u8>>,
}

impl TarOptions {
    /// The archive run: everything under the share (or the includes), optionally only what
    /// changed after `newer` (seconds since the epoch: tar still emits every directory).
    pub fn archive_argv(&self, newer: Option<i64>) -> Vec<Vec<u8>> {
        let mut argv = vec![b"tar".to_vec()];
        argv.extend(create_options(
            self.sparse,
            self.xattrs,
            self.one_file_system,
        ));
        if let Some(newer) = newer {
            argv.push(format!("--newer=@{newer}").into_bytes());
            // Verbose, so that every name left out as unchanged is named on stderr
            // (`NAME: file is unchanged; not dumped`), escaped like a listing.
            argv.push(b"-v".to_vec());
            argv.push(b"--quoting-style=escape".to_vec());
            argv.push(b"--warning=file-unchanged".to_vec());
        }
        argv.extend(exclude_arguments(&self.excludes));
        argv.extend(self.list_tail());
        argv
    }

    /// The listing run (the fallback of an incremental whose verbose run lost some of its
    /// stderr): every name tar would archive, one per line on standard output, with no content
    /// read (tar does not read files for `/dev/null`).
    pub fn listing_argv(&self) -> Vec<Vec<u8>> {
        let mut argv: Vec<Vec<u8>> = [
            "tar",
            "-c",
            "-v",
            "-f",
            "/dev/null",
            "--quoting-style=escape",
        ]
        .iter()
        .map(|a| a.as_bytes().to_vec())
        .collect();
        if self.one_file_system {
            argv.push(b"--one-file-system".to_vec());
        }
        argv.extend(exclude_arguments(&self.excludes));
        argv.extend(self.list_tail());
        argv
    }

    /// The fetch run: exactly the names on standard input, no recursion.
    pub fn fetch_argv(&self) -> Vec<Vec<u8>> {
        let mut argv = vec![b"tar".to_vec()];
        argv.extend(create_options(self.sparse, self.xattrs, false));
        argv.push(b"--no-recursion".to_vec());
        argv.extend(self.list_tail());
        argv
    }

    fn list_tail(&self) -> Vec<Vec<u8>> {
        let mut directory = b"--directory=".to_vec();
        directory.extend_from_slice(&self.share);
        vec![
            b"--null".to_vec(),
            b"--verbatim-files-from".to_vec(),
            directory,
            b"--files-from=-".to_vec(),
        ]
    }
}

/// `--exclude=` arguments for the admin's patterns. A pattern that starts with `/` is
/// anchored at the share root (tar sees `./...` names); others match at any depth, as tar does.
pub fn exclude_arguments(excludes: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut args = Vec::new();
    for pattern in excludes.iter().filter(|p| !p.is_empty()) {
        let mut arg = b"--exclude=".to_vec();
        if let Some(anchored) = pattern.strip_prefix(b"/") {
            arg.extend_from_slice(b"./");
            arg.extend_from_slice(anchored);
        } else {
            arg.extend_from_slice(pattern);
        }
        args.push(arg);
    }
    args
}

/// The file list of an archive or listing run: the includes (or the whole share),
/// NUL-terminated.
pub fn selection_list(includes: &[Vec<u8>]) -> Vec<u8> {
    let mut list = Vec::new();
    let mut any = false;
    for include in includes {
        let mut include = include.as_slice();
        while let Some(rest) = include.strip_prefix(b"/") {
            include = rest;
        }
        let relative = crate::path::member_path(include).unwrap_or_default();
        if relative.is_empty() {
            continue;
        }
        list.extend_from_slice(b"./");
        list.extend_from_slice(&relative);
        list.push(0);
        any = true;
    }
    if !any {
        list.extend_from_slice(b".\0");
    }
    list
}

/// The file list of a fetch run for share-relative paths, cut into batches of at most
/// `max_bytes` (one tar run each, so the whole list fits the pipe before tar answers).
pub fn fetch_lists(paths: &[Vec<u8>], max_bytes: usize) -> Vec<Vec<u8>> {
    let mut lists = Vec::new();
    let mut current = Vec::new();
    for path in paths {
        if !current.is_empty() && current.len() + path.len() + 3 > max_bytes {
            lists.push(std::mem::take(&mut current));
        }
        current.extend_from_slice(b"./");
        current.extend_from_slice(path);
        current.push(0);
    }
    if !current.is_empty() {
        lists.push(current);
    }
    lists
}

/// Undoes tar's `--quoting-style=escape` on one listed name: `\\`, C escapes, octal bytes.
pub fn unescape(line: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(line.len());
    let mut i = 0;
    while let Some(&b) = line.get(i) {
        i += 1;
        if b != b'\\' {
            out.push(b);
            continue;
        }
        let Some(&next) = line.get(i) else {
            out.push(b'\\');
            break;
        };
        i += 1;
        match next {
            b'0'..=b'7' => {
                let mut value = u32::from(next - b'0');
                for _ in 0..2 {
                    match line.get(i) {
                        Some(&d @ b'0'..=b'7') => {
                            value = value * 8 + u32::from(d - b'0');
                            i += 1;
                        }
                        _ => break,
                    }
                }
                out.push((value & 0xff) as u8);
            }
            b'a' => out.push(7),
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(11),
            other => out.push(other),
        }
    }
    out
}

/// What one line tar wrote to standard error means for the job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message {
    /// A file could not be read (permissions, vanished, I/O error): it is missing from the
    /// backup, which is partial.
    Unreadable,
    /// A file changed while it was read: stored as read, the backup is partial.
    Changed,
    /// Information (a mount point not crossed, a socket ignored, the closing summary).
    Note,
    /// Anything else: a problem with the run itself.
    Other,
}

/// What tar says after `--newer` of a name it left out: `PROGRAM: NAME: file is unchanged;
/// not dumped`.
const UNCHANGED: &[u8] = b": file is unchanged; not dumped";

/// The name (still escaped) in tar's note that it left a file out as unchanged.
pub fn unchanged_name(line: &[u8]) -> Option<&[u8]> {
    let rest = line.strip_suffix(UNCHANGED)?;
    // Names are `./...` (the file list's), so the name starts at the first `: ./` after the
    // program's name; colons inside names are escaped (`\:`).
    let start = rest.windows(4).position(|w| w == b": ./")? + 2;
    Some(&rest[start..])
}

/// Classifies a line of tar's standard error (GNU tar's messages in the C locale).
pub fn classify(line: &str) -> Message {
    const UNREADABLE: &[&str] = &[
        "Cannot open",
        "Cannot stat",
        "Cannot read",
        "Read error",
        "Cannot readlink",
        "Cannot savedir",
        "Cannot close",
        "Cannot get xattr",
        "Cannot list xattr",
        "Warning: Cannot",
    ];
    const CHANGED: &[&str] = &[
        "file changed as we read it",
        "File shrank by",
        "file changed",
        "File removed before we read it",
    ];
    const NOTES: &[&str] = &[
        "Exiting with failure status due to previous errors",
        "socket ignored",
        "file is on a different filesystem",
        "file is unchanged; not dumped",
        "door ignored",
        "Removing leading",
        "Treating date",
        "implausibly old time stamp",
        "time stamp",
    ];
    if CHANGED.iter().any(|m| line.contains(m)) {
        Message::Changed
    } else if UNREADABLE.iter().any(|m| line.contains(m)) {
        Message::Unreadable
    } else if NOTES.iter().any(|m| line.contains(m)) {
        Message::Note
    } else {
        Message::Other
    }
}

/// How a tar run ended, judged from its exit code and messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Clean.
    Ok,
    /// Done, but some files are missing or were changing: keep the backup, mark it partial.
    Partial,
    /// The run failed.
    Failed,
}

/// The verdict on a run: 0 is clean; 1 (some files differ) is partial; 2 is partial when
/// every message was about single files, a failure otherwise.
pub fn verdict(code: i32, unreadable: u64, other_messages: u64) -> Verdict {
    match code {
        0 if other_messages == 0 => Verdict::Ok,
        0 => Verdict::Partial,
        1 => Verdict::Partial,
        2 if other_messages == 0 && unreadable > 0 => Verdict::Partial,
        _ => Verdict::Failed,
    }
}

/// The settings the plugin reads (all optional).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// `reference-started`: when the reference backup started (seconds since the epoch).
    pub reference_started: Option<i64>,
    /// `time-margin`: seconds subtracted from `reference-started` for clock skew (default 300).
    pub time_margin: i64,
    /// `sparse`: ask tar for sparse files (default true).
    pub sparse: bool,
    /// `xattrs`: carry extended attributes (default true).
    pub xattrs: bool,
    /// `numeric-owner`: on restore, owners by number only (default false: by name, numbers
    /// when the name is unknown on the client).
    pub numeric_owner: bool,
}

/// Why a setting was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadSetting(pub String);

impl Settings {
    /// Reads the settings; unknown names are ignored (they may be another version's).
    pub fn parse(settings: &[Setting]) -> Result<Settings, BadSetting> {
        let mut out = Settings {
            reference_started: None,
            time_margin: 300,
            sparse: true,
            xattrs: true,
            numeric_owner: false,
        };
        for s in settings {
            let value = s.value.trim();
            let number = || {
                value.parse::<i64>().map_err(|_| {
                    BadSetting(format!("setting {}: {value:?} is not a number", s.name))
                })
            };
            let flag = || match value {
                "true" | "yes" | "on" | "1" => Ok(true),
                "false" | "no" | "off" | "0" => Ok(false),
                _ => Err(BadSetting(format!(
                    "setting {}: {value:?} is not true or false",
                    s.name
                ))),
            };
            match s.name.as_str() {
                "reference-started" => out.reference_started = Some(number()?),
                "time-margin" => out.time_margin = number()?.max(0),
                "sparse" => out.sparse = flag()?,
                "xattrs" => out.xattrs = flag()?,
                "numeric-owner" => out.numeric_owner = flag()?,
                _ => {}
            }
        }
        Ok(out)
    }

    /// The time after which changes are fetched in an incremental, if one can be run.
    pub fn newer_than(&self) -> Option<i64> {
        self.reference_started
            .map(|t| t.saturating_sub(self.time_margin))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> TarOptions {
        TarOptions {
            share: b"/home".to_vec(),
            one_file_system: true,
            sparse: true,
            xattrs: true,
            excludes: vec![b"/proc".to_vec()],
        }
    }

    fn words(argv: &[Vec<u8>]) -> Vec<String> {
        argv.iter()
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect()
    }

    #[test]
    fn archive_arguments() {
        let a = words(&opts().archive_argv(Some(1234)));
        assert_eq!(
            a[..6],
            ["tar", "-c", "-f", "-", BLOCKING_FACTOR, "--format=posix"]
        );
        for needed in [
            "--sparse",
            "--xattrs",
            "--xattrs-include=*",
            "--one-file-system",
            "--newer=@1234",
            "--directory=/home",
            "--files-from=-",
            "--null",
        ] {
            assert!(a.iter().any(|w| w == needed), "{needed} missing in {a:?}");
        }
        // Nothing the host refuses on backup; names only from a verbatim list.
        assert!(
            !a.iter()
                .any(|w| w == "-x" || w.starts_with("-T") || w == "--no-verbatim-files-from")
        );
        assert!(a.iter().any(|w| w == "--verbatim-files-from"));
        assert!(a.iter().any(|w| w == "--exclude=./proc"));
        assert!(a.iter().any(|w| w == "-v") && a.iter().any(|w| w == "--quoting-style=escape"));
        assert!(!words(&opts().archive_argv(None)).iter().any(|w| w == "-v"));
        let l = words(&opts().listing_argv());
        assert!(l.iter().any(|w| w == "/dev/null") && !l.iter().any(|w| w.starts_with("--sparse")));
        assert!(
            words(&opts().fetch_argv())
                .iter()
                .any(|w| w == "--no-recursion")
        );
    }

    #[test]
    fn unchanged_names() {
        assert_eq!(
            unchanged_name(b"/usr/bin/tar: ./a/co\\:lon: file is unchanged; not dumped"),
            Some(&b"./a/co\\:lon"[..])
        );
        assert_eq!(
            unchanged_name(
                b"tar: ./x: file is unchanged; not dumped: file is unchanged; not dumped"
            ),
            Some(&b"./x: file is unchanged; not dumped"[..])
        );
        assert_eq!(unescape(b"./a/co\\:lon\\nx"), b"./a/co:lon\nx");
        assert_eq!(
            unchanged_name(b"tar: ./x: Cannot open: Permission denied"),
            None
        );
        assert_eq!(unchanged_name(b"./x: file is unchanged; not dumped"), None);
    }

    #[test]
    fn selection_lists() {
        assert_eq!(selection_list(&[]), b".\0");
        let list = selection_list(&[b"/docs".to_vec(), b"-odd\nname".to_vec(), b"/".to_vec()]);
        assert_eq!(list, b"./docs\0./-odd\nname\0");
        assert_eq!(
            exclude_arguments(&[b"/proc".to_vec(), b"*.tmp".to_vec()]),
            vec![b"--exclude=./proc".to_vec(), b"--exclude=*.tmp".to_vec()]
        );
        assert_eq!(
            fetch_lists(&[b"a".to_vec(), b"bb".to_vec(), b"c".to_vec()], 9),
            vec![b"./a\0./bb\0".to_vec(), b"./c\0".to_vec()]
        );
        assert!(fetch_lists(&[], 8).is_empty());
    }

    #[test]
    fn escapes_undone() {
        assert_eq!(unescape(br"./n\nl"), b"./n\nl");
        assert_eq!(unescape(br"./bad\377x"), b"./bad\xffx");
        assert_eq!(unescape(br"a\\b\?c\"), b"a\\b?c\\");
        assert_eq!(unescape(br"\1x\12"), b"\x01x\n");
    }

    #[test]
    fn messages_and_verdicts() {
        assert_eq!(
            classify("tar: ./secret: Cannot open: Permission denied"),
            Message::Unreadable
        );
        assert_eq!(
            classify("tar: ./log: file changed as we read it"),
            Message::Changed
        );
        assert_eq!(
            classify("tar: Exiting with failure status due to previous errors"),
            Message::Note
        );
        assert_eq!(classify("tar: ./s: socket ignored"), Message::Note);
        assert_eq!(
            classify("tar: Cannot connect to x: resolve failed"),
            Message::Other
        );
        assert_eq!(verdict(0, 0, 0), Verdict::Ok);
        assert_eq!(verdict(1, 0, 0), Verdict::Partial);
        assert_eq!(verdict(2, 3, 0), Verdict::Partial);
        assert_eq!(verdict(2, 3, 1), Verdict::Failed);
        assert_eq!(verdict(2, 0, 0), Verdict::Failed);
        assert_eq!(verdict(127, 0, 0), Verdict::Failed);
    }

    #[test]
    fn settings() {
        let s = |n: &str, v: &str| Setting {
            name: n.into(),
            value: v.into(),
        };
        let parsed = Settings::parse(&[
            s("reference-started", "1000"),
            s("time-margin", "60"),
            s("xattrs", "no"),
            s("other", "x"),
        ])
        .unwrap();
        assert_eq!(parsed.newer_than(), Some(940));
        assert!(!parsed.xattrs && parsed.sparse);
        assert!(Settings::parse(&[s("sparse", "maybe")]).is_err());
        assert_eq!(Settings::parse(&[]).unwrap().newer_than(), None);
    }
}
