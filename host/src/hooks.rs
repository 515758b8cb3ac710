//! Commands an admin runs around jobs (BackupPC's `DumpPreUserCmd`, `DumpPostUserCmd`,
//! `DumpPreShareCmd`, `DumpPostShareCmd`, `RestorePreUserCmd`, `RestorePostUserCmd`): on the
//! server, without a shell, each argument with `$host`, `$share`, `$type` and `$xfer_ok`
//! substituted. Their output goes to the job log. A command that fails (non-zero exit, not
//! found, or over its time limit) aborts the job only when the host sets
//! `hook_check_status` (`UserCmdCheckStatus`); otherwise it is logged and the job goes on.

use std::time::Duration;

use serde::Deserialize;

/// A host's hook commands, each an argument vector (program first).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Hooks {
    /// Before a backup.
    pub backup_pre: Option<Vec<String>>,
    /// After a backup (`$xfer_ok` says how it went).
    pub backup_post: Option<Vec<String>>,
    /// Before each share of a backup.
    pub share_pre: Option<Vec<String>>,
    /// After each share of a backup.
    pub share_post: Option<Vec<String>>,
    /// Before a restore to a client.
    pub restore_pre: Option<Vec<String>>,
    /// After a restore to a client.
    pub restore_post: Option<Vec<String>>,
    /// A failing command aborts the job (`UserCmdCheckStatus`; default off).
    pub check_status: bool,
}

impl Hooks {
    /// A description of what is wrong, if a command is an empty list.
    pub fn invalid(&self) -> Option<&'static str> {
        let named = [
            ("backup_pre", &self.backup_pre),
            ("backup_post", &self.backup_post),
            ("share_pre", &self.share_pre),
            ("share_post", &self.share_post),
            ("restore_pre", &self.restore_pre),
            ("restore_post", &self.restore_post),
        ];
        named
            .into_iter()
            .find(|(_, argv)| {
                argv.as_ref()
                    .is_some_and(|a| a.is_empty() || a[0].is_empty())
            })
            .map(|(name, _)| name)
    }
}

/// The values substituted into a command's arguments.
#[derive(Debug, Clone, Default)]
pub struct HookVars {
    /// `$host`.
    pub host: String,
    /// `$share` (empty for whole-job hooks).
    pub share: String,
    /// `$type`: `full`, `incr` or `restore`.
    pub kind: String,
    /// `$xfer_ok`: `1` when the transfer succeeded, `0` when not (post hooks only).
    pub xfer_ok: Option<bool>,
}

/// Why a hook failed.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    /// It could not start.
    #[error("hook {program}: cannot run: {source}")]
    Spawn {
        /// The program.
        program: String,
        /// Why.
        source: std::io::Error,
    },
    /// It exited non-zero.
    #[error("hook {program} exited with {status}")]
    Status {
        /// The program.
        program: String,
        /// How it exited.
        status: std::process::ExitStatus,
    },
    /// It ran past its time limit and was killed.
    #[error("hook {program} ran longer than {0:?} and was stopped", limit)]
    Timeout {
        /// The program.
        program: String,
        /// The limit.
        limit: Duration,
    },
}

/// `argv` with the variables substituted, longest names first (`$xfer_ok` before others).
pub fn substitute(argv: &[String], vars: &HookVars) -> Vec<String> {
    let xfer = match vars.xfer_ok {
        Some(true) => "1",
        Some(false) => "0",
        None => "",
    };
    argv.iter()
        .map(|arg| {
            arg.replace("$xfer_ok", xfer)
                .replace("$share", &vars.share)
                .replace("$host", &vars.host)
                .replace("$type", &vars.kind)
        })
        .collect()
}

/// What a hook printed, one entry per line, and how it ended.
#[derive(Debug)]
pub struct HookRun {
    /// Lines of its standard output and error.
    pub output: Vec<String>,
    /// How it ended.
    pub result: Result<(), HookError>,
}

/// Runs `argv` (after substitution) with at most `limit` of wall time.
pub async fn run(argv: &[String], vars: &HookVars, limit: Duration) -> HookRun {
    let argv = substitute(argv, vars);
    let Some((program, args)) = argv.split_first() else {
        return HookRun {
            output: Vec::new(),
            result: Ok(()),
        };
    };
    let child = tokio::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    match tokio::time::timeout(limit, child).await {
        Err(_) => HookRun {
            output: Vec::new(),
            result: Err(HookError::Timeout {
                program: program.clone(),
                limit,
            }),
        },
        Ok(Err(source)) => HookRun {
            output: Vec::new(),
            result: Err(HookError::Spawn {
                program: program.clone(),
                source,
            }),
        },
        Ok(Ok(out)) => {
            let output = [out.stdout, out.stderr]
                .iter()
                .flat_map(|bytes| {
                    String::from_utf8_lossy(bytes)
                        .lines()
                        .map(str::to_string)
                        .collect::<Vec<_>>()
                })
                .collect();
            let result = if out.status.success() {
                Ok(())
            } else {
                Err(HookError::Status {
                    program: program.clone(),
                    status: out.status,
                })
            };
            HookRun { output, result }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> HookVars {
        HookVars {
            host: "web".into(),
            share: "/srv".into(),
            kind: "full".into(),
            xfer_ok: Some(true),
        }
    }

    #[test]
    fn variables_are_substituted_in_each_argument_without_a_shell() {
        let argv: Vec<String> = [
            "/bin/echo",
            "$host:$share",
            "$type",
            "ok=$xfer_ok",
            "$(rm -rf /)",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            substitute(&argv, &vars()),
            ["/bin/echo", "web:/srv", "full", "ok=1", "$(rm -rf /)"]
        );
    }

    #[tokio::test]
    async fn output_status_and_time_limit() {
        let echo = ["/bin/echo", "$host"].map(String::from);
        let run_echo = run(&echo, &vars(), Duration::from_secs(10)).await;
        assert!(run_echo.result.is_ok());
        assert_eq!(run_echo.output, ["web"]);
        let fail = ["/bin/false"].map(String::from);
        assert!(matches!(
            run(&fail, &vars(), Duration::from_secs(10)).await.result,
            Err(HookError::Status { .. })
        ));
        let slow = ["/bin/sleep", "5"].map(String::from);
        assert!(matches!(
            run(&slow, &vars(), Duration::from_millis(200)).await.result,
            Err(HookError::Timeout { .. })
        ));
        let missing = ["/nonexistent/hook"].map(String::from);
        assert!(matches!(
            run(&missing, &vars(), Duration::from_secs(1)).await.result,
            Err(HookError::Spawn { .. })
        ));
    }
}
