//! Talking to an rsync daemon (`rsync://`) instead of an exec'd `rsync --server`: the
//! greeting that fixes the protocol, the module, the challenge answered by the host from the
//! secret it holds (the password never enters the plugin), and the arguments a daemon takes
//! over the socket.

use hoard_plugin_sdk::transport::hoard::plugin::credentials::{self, SecretForm};

use crate::conn::Conn;
use crate::error::{Error, client, protocol};
use crate::wire::Source;

/// Digests this side answers a daemon's challenge with, in order of preference.
const AUTH_DIGESTS: [&str; 5] = ["sha512", "sha256", "sha1", "md5", "md4"];
/// The longest greeting or status line accepted.
const MAX_LINE: usize = 4096;

/// Reads one `\n`-terminated line (without the newline).
fn read_line(conn: &mut Conn) -> Result<String, Error> {
    let mut line = Vec::new();
    loop {
        let mut b = [0u8; 1];
        conn.read_exact(&mut b)?;
        if b[0] == b'\n' {
            break;
        }
        if line.len() >= MAX_LINE {
            return Err(protocol("the rsync daemon sent an over-long line"));
        }
        line.push(b[0]);
    }
    Ok(String::from_utf8_lossy(&line)
        .trim_end_matches('\r')
        .to_owned())
}

/// Greets the daemon, opens `module` (authenticating with `secret` when asked), and sends
/// `args`. Returns the daemon's protocol version.
pub fn open_module(
    conn: &mut Conn,
    module: &str,
    secret: &str,
    wanted_protocol: i32,
    args: &[Vec<u8>],
) -> Result<i32, Error> {
    conn.send(format!("@RSYNCD: {wanted_protocol}.0 {}\n", AUTH_DIGESTS.join(" ")).as_bytes());
    conn.flush()?;
    let greeting = read_line(conn)?;
    let rest = greeting
        .strip_prefix("@RSYNCD: ")
        .ok_or_else(|| protocol(format!("not an rsync daemon: {greeting:?}")))?;
    let mut words = rest.split_ascii_whitespace();
    let version = words.next().unwrap_or("");
    let (major, sub) = version.split_once('.').unwrap_or((version, "0"));
    let remote: i32 = major
        .parse()
        .map_err(|_| protocol(format!("bad daemon greeting {greeting:?}")))?;
    let remote_sub: i32 = sub.parse().unwrap_or(0);
    let offered: Vec<&str> = words.collect();
    let mut version = wanted_protocol.min(remote);
    if remote < wanted_protocol && remote_sub != 0 {
        version -= 1;
    }
    let digest = if offered.is_empty() {
        if version >= 30 { "md5" } else { "md4" }
    } else {
        AUTH_DIGESTS
            .iter()
            .copied()
            .find(|d| offered.contains(d))
            .ok_or_else(|| protocol(format!("no auth digest in common with {offered:?}")))?
    };
    conn.send(format!("{module}\n").as_bytes());
    conn.flush()?;
    loop {
        let line = read_line(conn)?;
        if let Some(challenge) = line.strip_prefix("@RSYNCD: AUTHREQD ") {
            credentials::write_secret(
                secret,
                &SecretForm::RsyncAuth((digest.to_owned(), challenge.as_bytes().to_vec())),
                conn.output(),
            )?;
            continue;
        }
        if line == "@RSYNCD: OK" {
            break;
        }
        if line == "@RSYNCD: EXIT" {
            return Err(client(format!("the rsync daemon has no module {module:?}")));
        }
        if let Some(message) = line.strip_prefix("@ERROR") {
            return Err(client(format!(
                "rsync daemon: {}",
                message.trim_start_matches(':').trim()
            )));
        }
        // A message of the day.
    }
    let terminator = if version >= 30 { 0u8 } else { b'\n' };
    let mut out = Vec::new();
    for arg in args {
        out.extend_from_slice(arg);
        out.push(terminator);
    }
    out.push(terminator);
    conn.send(&out);
    conn.flush()?;
    Ok(version)
}
