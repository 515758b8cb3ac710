//! An HTTP sink for webhook tests: Python's standard `http.server` on a free loopback port,
//! recording each POST (path, headers, body) as one JSON line and answering with a chosen
//! status (200 by default).

use std::fs;
use std::process::{Command, Stdio};

use super::{PeerError, PeerProcess, free_port, require_binary};

const PYTHON: &str = "/usr/bin/python3";

/// The sink. Arguments: port, log file, status to answer.
const SINK: &str = r#"
import json, sys
from http.server import BaseHTTPRequestHandler, HTTPServer

port, log, status = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])

class Sink(BaseHTTPRequestHandler):
    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        record = {"path": self.path, "headers": dict(self.headers.items()),
                  "body": body.decode("utf-8", "replace")}
        with open(log, "a") as f:
            f.write(json.dumps(record) + "\n")
        reply = b'{"ok":true}'
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, fmt, *args):
        sys.stderr.write(fmt % args + "\n")

HTTPServer(("127.0.0.1", port), Sink).serve_forever()
"#;

/// One request the sink received.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct ReceivedRequest {
    /// The request path.
    pub path: String,
    /// Its headers.
    pub headers: std::collections::BTreeMap<String, String>,
    /// Its body, as text.
    pub body: String,
}

/// A running HTTP sink; stopped when dropped.
#[derive(Debug)]
pub struct HttpSinkPeer {
    process: PeerProcess,
    dir: tempfile::TempDir,
    port: u16,
}

impl HttpSinkPeer {
    /// Starts a sink answering every POST with 200.
    pub fn start() -> Result<HttpSinkPeer, PeerError> {
        HttpSinkPeer::answering(200)
    }

    /// Starts a sink answering every POST with `status`.
    pub fn answering(status: u16) -> Result<HttpSinkPeer, PeerError> {
        require_binary(PYTHON, "python3")?;
        let dir = tempfile::Builder::new()
            .prefix("hoard-http-")
            .tempdir()
            .map_err(PeerError::io("create the http peer's directory"))?;
        let root = dir.path();
        let script = root.join("http_sink.py");
        fs::write(&script, SINK).map_err(PeerError::io("write http_sink.py"))?;
        let port = free_port()?;
        let log_path = root.join("http.log");
        let log = fs::File::create(&log_path).map_err(PeerError::io("create http.log"))?;
        let child = Command::new(PYTHON)
            .arg(&script)
            .arg(port.to_string())
            .arg(root.join("received.jsonl"))
            .arg(status.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(PeerError::io("spawn the http sink"))?;
        let mut process = PeerProcess::new(child, "http sink", log_path);
        process.wait_for_port(port)?;
        Ok(HttpSinkPeer { process, dir, port })
    }

    /// The sink's base URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The process id of the server.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// The requests received so far, oldest first.
    pub fn received(&self) -> Result<Vec<ReceivedRequest>, PeerError> {
        let text = match fs::read_to_string(self.dir.path().join("received.jsonl")) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(PeerError::io("read received.jsonl")(e)),
        };
        text.lines()
            .map(|line| {
                serde_json::from_str(line).map_err(|e| PeerError::Io {
                    what: "parse received.jsonl".into(),
                    source: std::io::Error::other(e),
                })
            })
            .collect()
    }
}
