//! Runs the `hoard` binary on the kit's own config folder, the way an admin would, with a
//! time limit on every command.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::RunError;

/// The `hoard` binary and the config folder it is pointed at.
#[derive(Debug, Clone)]
pub(crate) struct Hoard {
    binary: PathBuf,
    config: PathBuf,
    limit: Duration,
}

/// What one command did.
#[derive(Debug)]
pub(crate) struct Ran {
    /// Whether it exited with status 0.
    pub success: bool,
    /// Its standard output.
    pub stdout: String,
    /// Its standard error.
    pub stderr: String,
}

impl Ran {
    /// The last line of stderr (or stdout): hoard's error, for a case's detail.
    pub fn tail(&self) -> String {
        let text = if self.stderr.trim().is_empty() {
            &self.stdout
        } else {
            &self.stderr
        };
        text.lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("(no output)")
            .trim()
            .to_owned()
    }

    /// Standard output parsed as JSON.
    pub fn json(&self) -> Result<serde_json::Value, String> {
        serde_json::from_str(&self.stdout)
            .map_err(|e| format!("output is not JSON ({e}): {}", self.tail()))
    }
}

impl Hoard {
    pub fn new(binary: &Path, config: &Path, limit: Duration) -> Self {
        Hoard {
            binary: binary.to_path_buf(),
            config: config.to_path_buf(),
            limit,
        }
    }

    /// Runs `hoard --config CONFIG ARGS...`; a command still running after the limit is
    /// killed and reported as failed.
    pub fn run(&self, args: &[&str]) -> Result<Ran, RunError> {
        let what = format!("hoard {}", args.join(" "));
        let mut child = Command::new(&self.binary)
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(RunError::io(format!("start {what}")))?;
        let stdout = child.stdout.take().map(drain);
        let stderr = child.stderr.take().map(drain);
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child
                .try_wait()
                .map_err(RunError::io(format!("wait {what}")))?
            {
                break Some(status);
            }
            if started.elapsed() > self.limit {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let collect = |h: Option<std::thread::JoinHandle<Vec<u8>>>| {
            h.and_then(|h| h.join().ok())
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default()
        };
        let (stdout, mut stderr) = (collect(stdout), collect(stderr));
        if status.is_none() {
            stderr.push_str(&format!("\nkilled: still running after {:?}", self.limit));
        }
        Ok(Ran {
            success: status.is_some_and(|s| s.success()),
            stdout,
            stderr,
        })
    }

    /// Runs a command that must succeed.
    pub fn must(&self, args: &[&str]) -> Result<Ran, String> {
        let ran = self.run(args).map_err(|e| e.to_string())?;
        if ran.success {
            Ok(ran)
        } else {
            Err(format!("`hoard {}` failed: {}", args.join(" "), ran.tail()))
        }
    }
}

fn drain(mut pipe: impl std::io::Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = pipe.read_to_end(&mut out);
        out
    })
}

/// The process's output as a [`Ran`] (for commands run outside the kit's config).
pub(crate) fn ran(output: Output) -> Ran {
    Ran {
        success: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}
