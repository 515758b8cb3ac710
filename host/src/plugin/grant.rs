//! What the config allows one plugin to do for one host, and the argument rules that keep a
//! granted program from being turned against the server.
//!
//! A grant is the intersection of what the plugin's manifest asks for and what the host's
//! config gives: [`CapabilityGrant::restricted_to`] computes it once per job, and every
//! capability call checks it. Nothing is ambient.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use super::bindings::Capability;

/// A secret the host holds for a plugin (never handed to it).
#[derive(Clone, Default)]
pub struct Secret {
    /// The user name.
    pub user: String,
    /// The password.
    pub password: String,
    /// A domain or workgroup, for protocols that have one.
    pub domain: Option<String>,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secret")
            .field("user", &self.user)
            .field("password", &"<hidden>")
            .field("domain", &self.domain)
            .finish()
    }
}

/// Whether the job writes to the client or only reads from it; some arguments are only
/// allowed when restoring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobDirection {
    /// Reading from the client.
    Backup,
    /// Writing to the client.
    Restore,
    /// Neither (describe, notify).
    None,
}

/// Everything one plugin may do in one job.
#[derive(Debug, Clone, Default)]
pub struct CapabilityGrant {
    /// Programs it may run on the client: name → absolute path there.
    pub exec: BTreeMap<String, PathBuf>,
    /// Ports of the client it may connect to.
    pub connect_ports: BTreeSet<u16>,
    /// Tools it may run on the server: name → absolute path.
    pub server_tools: BTreeMap<String, PathBuf>,
    /// Secrets it may use through `credentials`.
    pub secrets: BTreeMap<String, Secret>,
    /// It may connect to its configured endpoint (notifiers).
    pub endpoint: bool,
    /// It may send HTTP requests to its configured URL (notifiers).
    pub http: bool,
}

impl CapabilityGrant {
    /// What is left of this grant once limited to what the manifest declared. A port the
    /// config grants counts when the manifest declares `connect` at all (the config may move
    /// a service to another port).
    pub fn restricted_to(&self, manifest: &[Capability]) -> CapabilityGrant {
        let declared_exec: BTreeSet<&str> = manifest
            .iter()
            .filter_map(|c| match c {
                Capability::Exec(p) => Some(p.as_str()),
                _ => None,
            })
            .collect();
        let declared_tools: BTreeSet<&str> = manifest
            .iter()
            .filter_map(|c| match c {
                Capability::ServerTool(t) => Some(t.as_str()),
                _ => None,
            })
            .collect();
        let declared_secrets: BTreeSet<&str> = manifest
            .iter()
            .filter_map(|c| match c {
                Capability::Secret(s) => Some(s.as_str()),
                _ => None,
            })
            .collect();
        let declares_connect = manifest.iter().any(|c| matches!(c, Capability::Connect(_)));
        CapabilityGrant {
            exec: self
                .exec
                .iter()
                .filter(|(name, _)| declared_exec.contains(name.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            connect_ports: if declares_connect {
                self.connect_ports.clone()
            } else {
                BTreeSet::new()
            },
            server_tools: self
                .server_tools
                .iter()
                .filter(|(name, _)| declared_tools.contains(name.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            secrets: self
                .secrets
                .iter()
                .filter(|(name, _)| declared_secrets.contains(name.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            endpoint: self.endpoint && manifest.iter().any(|c| matches!(c, Capability::Endpoint)),
            http: self.http && manifest.iter().any(|c| matches!(c, Capability::Http)),
        }
    }
}

/// Why an argument list was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("argument {argument:?} is not allowed for {program}: {reason}")]
pub struct ArgumentRefused {
    /// The program.
    pub program: String,
    /// The offending argument.
    pub argument: String,
    /// Why.
    pub reason: &'static str,
}

/// Checks the arguments of a granted program: refuses the options that would make it run
/// other programs, write or delete files where it should only read, or read files of the
/// server's choosing. The rules are per program; unknown programs only get the generic rule
/// (no NUL bytes, which no exec can carry anyway).
pub fn check_arguments(
    program: &str,
    args: &[Vec<u8>],
    direction: JobDirection,
) -> Result<(), ArgumentRefused> {
    let refuse = |argument: &[u8], reason| ArgumentRefused {
        program: program.to_string(),
        argument: String::from_utf8_lossy(argument).into_owned(),
        reason,
    };
    if let Some(arg) = args.iter().find(|a| a.contains(&0)) {
        return Err(refuse(arg, "NUL byte in argument"));
    }
    let rules = match program {
        "tar" => &TAR_RULES,
        "rsync" => &RSYNC_RULES,
        _ => return Ok(()),
    };
    if program == "tar" {
        check_tar_file_lists(args)
            .map_err(|a| refuse(a, "a file list may only come from standard input (-T -)"))?;
    }
    for (index, arg) in args.iter().enumerate() {
        let Some(option) = arg.strip_prefix(b"-") else {
            // GNU tar's old style: a first argument without a dash is a cluster of options.
            if program == "tar" && index == 0 {
                check_short_cluster(arg, rules, direction).map_err(|r| refuse(arg, r))?;
            }
            continue;
        };
        if let Some(long) = option.strip_prefix(b"-") {
            let name = long.split(|b| *b == b'=').next().unwrap_or(long);
            if rules
                .forbidden_long
                .iter()
                .any(|f| long_matches(name, f, rules.complete))
            {
                return Err(refuse(
                    arg,
                    "it can run programs or touch files outside the job",
                ));
            }
            if direction != JobDirection::Restore
                && rules
                    .write_long
                    .iter()
                    .any(|f| long_matches(name, f, rules.complete))
            {
                return Err(refuse(
                    arg,
                    "it writes to the client, and this job only reads",
                ));
            }
        } else if !(program == "rsync" && args.iter().any(|a| a == b"--server")) {
            check_short_cluster(option, rules, direction).map_err(|r| refuse(arg, r))?;
        } else {
            // rsync --server: the client's own option cluster; `-e.xyz` carries protocol
            // flags there, not a remote shell, so only the letters before `e` are options.
            let cluster = option.split(|b| *b == b'e').next().unwrap_or(option);
            check_short_cluster(cluster, rules, direction).map_err(|r| refuse(arg, r))?;
        }
    }
    Ok(())
}

/// tar reads file lists only from its standard input: `-T -`, `--files-from=-` or
/// `--files-from -`; a named file would let a plugin read a server file on `localhost`.
fn check_tar_file_lists(args: &[Vec<u8>]) -> Result<(), &[u8]> {
    // A list may carry options (`-C /`) unless it is read verbatim.
    if let Some(arg) = args
        .iter()
        .find(|a| a.as_slice() == b"--no-verbatim-files-from")
    {
        return Err(arg);
    }
    let verbatim = args
        .iter()
        .any(|a| a.as_slice() == b"--verbatim-files-from");
    let mut reads_list = false;
    let mut expect_list = false;
    for arg in args {
        if expect_list {
            if arg.as_slice() != b"-" {
                return Err(arg);
            }
            expect_list = false;
            continue;
        }
        if let Some(value) = arg.strip_prefix(b"--files-from=") {
            if value != b"-" {
                return Err(arg);
            }
            reads_list = true;
        } else if arg.as_slice() == b"--files-from" {
            expect_list = true;
            reads_list = true;
        } else if arg.starts_with(b"-") && !arg.starts_with(b"--") && arg.contains(&b'T') {
            // `-T` takes the next argument, or the rest of its cluster (`-T-`, `-cT-`).
            let rest = &arg[arg
                .iter()
                .position(|b| *b == b'T')
                .map_or(arg.len(), |p| p + 1)..];
            if rest.is_empty() {
                expect_list = true;
            } else if rest != b"-" {
                return Err(arg);
            }
            reads_list = true;
        }
    }
    if expect_list {
        return Err(b"-T");
    }
    if reads_list && !verbatim {
        return Err(b"--files-from (without --verbatim-files-from)");
    }
    Ok(())
}

/// Per-program option rules.
struct ArgumentRules {
    /// Long options refused always (prefixes count: GNU getopt accepts abbreviations).
    forbidden_long: &'static [&'static str],
    /// Short options refused always.
    forbidden_short: &'static [u8],
    /// Long options refused unless restoring.
    write_long: &'static [&'static str],
    /// Short options refused unless restoring.
    write_short: &'static [u8],
    /// Complete option names that merely begin like a refused one.
    complete: &'static [&'static str],
}

static TAR_RULES: ArgumentRules = ArgumentRules {
    forbidden_long: &[
        "to-command",
        "use-compress-program",
        "rsh-command",
        "rmt-command",
        "info-script",
        "new-volume-script",
        "checkpoint-action",
        "remove-files",
        "exclude-from",
        "index-file",
        "volno-file",
    ],
    forbidden_short: b"IFX",
    write_long: &[
        "extract",
        "get",
        "update",
        "append",
        "delete",
        "concatenate",
        "catenate",
    ],
    write_short: b"xurA",
    complete: &["exclude"],
};

static RSYNC_RULES: ArgumentRules = ArgumentRules {
    forbidden_long: &[
        "rsh",
        "rsync-path",
        "remove-source-files",
        "write-batch",
        "only-write-batch",
        "read-batch",
        "log-file",
        "password-file",
        "daemon",
        "config",
        "files-from",
        "exclude-from",
        "include-from",
        "filter",
    ],
    forbidden_short: b"e",
    write_long: &["delete", "del", "backup-dir", "temp-dir", "partial-dir"],
    write_short: b"",
    complete: &["exclude", "include"],
};

/// Whether `given` names `option`, counting abbreviations the way getopt_long does
/// (`--to-com` is `--to-command`) unless `given` is itself a complete, different option
/// (`--exclude` is not `--exclude-from`).
fn long_matches(given: &[u8], option: &str, complete: &[&str]) -> bool {
    if given == option.as_bytes() {
        return true;
    }
    given.len() >= 3
        && option.as_bytes().starts_with(given)
        && !complete.iter().any(|c| c.as_bytes() == given)
}

fn check_short_cluster(
    cluster: &[u8],
    rules: &ArgumentRules,
    direction: JobDirection,
) -> Result<(), &'static str> {
    if cluster.iter().any(|c| rules.forbidden_short.contains(c)) {
        return Err("it can run programs or read files of the server's choosing");
    }
    if direction != JobDirection::Restore && cluster.iter().any(|c| rules.write_short.contains(c)) {
        return Err("it writes to the client, and this job only reads");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(words: &[&str]) -> Vec<Vec<u8>> {
        words.iter().map(|w| w.as_bytes().to_vec()).collect()
    }

    #[test]
    fn tar_backup_options_pass() {
        let a = args(&[
            "-c",
            "-f",
            "-",
            "--numeric-owner",
            "--xattrs",
            "-C",
            "/home",
            ".",
        ]);
        assert_eq!(check_arguments("tar", &a, JobDirection::Backup), Ok(()));
    }

    #[test]
    fn tar_dangerous_options_are_refused() {
        for bad in [
            "--to-command=sh",
            "--use-compress-program=sh",
            "--to-com=sh",
            "-I",
            "-cIf",
            "--remove-files",
            "--checkpoint-action=exec=sh",
        ] {
            let a = args(&["-c", bad, "."]);
            assert!(
                check_arguments("tar", &a, JobDirection::Backup).is_err(),
                "{bad} passed"
            );
            assert!(
                check_arguments("tar", &a, JobDirection::Restore).is_err(),
                "{bad} passed on restore"
            );
        }
    }

    #[test]
    fn tar_extract_only_when_restoring() {
        for word in ["-x", "-xf", "--extract"] {
            let a = args(&[word, "-", "-C", "/"]);
            assert!(
                check_arguments("tar", &a, JobDirection::Backup).is_err(),
                "{word}"
            );
            assert_eq!(check_arguments("tar", &a, JobDirection::Restore), Ok(()));
        }
        assert!(check_arguments("tar", &args(&["xf", "-"]), JobDirection::Backup).is_err());
    }

    #[test]
    fn rsync_server_cluster_with_protocol_flags_passes() {
        let a = args(&["--server", "--sender", "-logDtpre.iLsfxCIvu", ".", "/home"]);
        assert_eq!(check_arguments("rsync", &a, JobDirection::Backup), Ok(()));
        let a = args(&["--server", "--sender", "--rsh=sh", ".", "/"]);
        assert!(check_arguments("rsync", &a, JobDirection::Backup).is_err());
        let a = args(&["--server", "--delete", ".", "/"]);
        assert!(check_arguments("rsync", &a, JobDirection::Backup).is_err());
    }

    #[test]
    fn tar_file_lists_only_from_stdin() {
        for ok in [
            &["-c", "--verbatim-files-from", "-T", "-"][..],
            &["-c", "--verbatim-files-from", "--files-from=-"],
            &["-c", "--verbatim-files-from", "--files-from", "-"],
            &["--verbatim-files-from", "-cT-"],
            &["-c", "--exclude=*.tmp", "."],
        ] {
            assert_eq!(
                check_arguments("tar", &args(ok), JobDirection::Backup),
                Ok(()),
                "{ok:?}"
            );
        }
        for bad in [
            &["-c", "-T", "/etc/shadow"][..],
            &["-c", "--files-from=/etc/x"],
            &["-cT/etc/x"],
            &["-c", "-T"],
            &["-c", "--files-from=-"],
            &[
                "-c",
                "--no-verbatim-files-from",
                "--verbatim-files-from",
                "-T",
                "-",
            ],
        ] {
            assert!(
                check_arguments("tar", &args(bad), JobDirection::Backup).is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn nul_bytes_are_refused() {
        assert!(check_arguments("cat", &[b"a\0b".to_vec()], JobDirection::Backup).is_err());
    }

    #[test]
    fn grant_is_limited_to_the_manifest() {
        let mut grant = CapabilityGrant::default();
        grant.exec.insert("tar".into(), "/usr/bin/tar".into());
        grant.exec.insert("sh".into(), "/bin/sh".into());
        grant.connect_ports.insert(873);
        let effective = grant.restricted_to(&[Capability::Exec("tar".into())]);
        assert_eq!(effective.exec.keys().collect::<Vec<_>>(), ["tar"]);
        assert!(effective.connect_ports.is_empty());
    }
}
