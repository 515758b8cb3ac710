//! An SMTP relay for notifier tests: aiosmtpd (Debian's `python3-aiosmtpd`) on a free
//! loopback port, storing every message it accepts in a Maildir, and, when started with a
//! user and password, requiring `AUTH PLAIN` (or `LOGIN`) before `MAIL`.

use std::fs;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use super::{PeerError, PeerProcess, free_port, require_binary};

const PYTHON: &str = "/usr/bin/python3";

/// The launcher: aiosmtpd's controller with the Maildir handler and an optional
/// authenticator. Arguments: port, maildir, user, password (empty for no AUTH).
const LAUNCHER: &str = r#"
import signal, sys, threading
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Mailbox
from aiosmtpd.smtp import AuthResult

port, maildir, user, password = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]

def authenticate(server, session, envelope, mechanism, data):
    ok = data.login == user.encode() and data.password == password.encode()
    return AuthResult(success=ok, handled=False)

kwargs = {}
if user:
    kwargs = dict(authenticator=authenticate, auth_required=True, auth_require_tls=False)
controller = Controller(Mailbox(maildir), hostname="127.0.0.1", port=port, **kwargs)
controller.start()
done = threading.Event()
signal.signal(signal.SIGTERM, lambda *a: done.set())
done.wait()
controller.stop()
"#;

/// A running SMTP sink; stopped when dropped.
#[derive(Debug)]
pub struct SmtpPeer {
    process: PeerProcess,
    dir: tempfile::TempDir,
    port: u16,
}

impl SmtpPeer {
    /// Starts a sink that accepts mail from anyone.
    pub fn start() -> Result<SmtpPeer, PeerError> {
        SmtpPeer::launch("", "")
    }

    /// Starts a sink that requires `AUTH` as `user` with `password`.
    pub fn start_with_auth(user: &str, password: &str) -> Result<SmtpPeer, PeerError> {
        SmtpPeer::launch(user, password)
    }

    fn launch(user: &str, password: &str) -> Result<SmtpPeer, PeerError> {
        require_binary(PYTHON, "python3")?;
        let check = Command::new(PYTHON)
            .args(["-c", "import aiosmtpd"])
            .stderr(Stdio::null())
            .status()
            .map_err(PeerError::io("run python3"))?;
        if !check.success() {
            return Err(PeerError::MissingBinary {
                binary: "aiosmtpd (python module)".into(),
                package: "python3-aiosmtpd".into(),
            });
        }
        let dir = tempfile::Builder::new()
            .prefix("hoard-smtp-")
            .tempdir()
            .map_err(PeerError::io("create the smtp peer's directory"))?;
        let root = dir.path();
        let script = root.join("smtp_sink.py");
        fs::write(&script, LAUNCHER).map_err(PeerError::io("write smtp_sink.py"))?;
        let port = free_port()?;
        let log_path = root.join("smtp.log");
        let log = fs::File::create(&log_path).map_err(PeerError::io("create smtp.log"))?;
        let child = Command::new(PYTHON)
            .arg(&script)
            .arg(port.to_string())
            .arg(root.join("maildir"))
            .arg(user)
            .arg(password)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(PeerError::io("spawn aiosmtpd"))?;
        let mut process = PeerProcess::new(child, "aiosmtpd", log_path);
        process.wait_for_port(port)?;
        Ok(SmtpPeer { process, dir, port })
    }

    /// The port it listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The process id of the server.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// The messages received so far, raw (headers and body as sent, plus the `X-Peer`,
    /// `X-MailFrom` and `X-RcptTo` headers the sink adds), oldest first.
    pub fn messages(&self) -> Result<Vec<Vec<u8>>, PeerError> {
        let mut files: Vec<(std::time::SystemTime, PathBuf)> = Vec::new();
        for sub in ["new", "cur"] {
            let Ok(entries) = fs::read_dir(self.dir.path().join("maildir").join(sub)) else {
                continue;
            };
            for entry in entries.flatten() {
                let modified = entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .unwrap_or(std::time::UNIX_EPOCH);
                files.push((modified, entry.path()));
            }
        }
        files.sort();
        files
            .into_iter()
            .map(|(_, path)| {
                fs::read(&path).map_err(PeerError::io(format!("read {}", path.display())))
            })
            .collect()
    }
}
