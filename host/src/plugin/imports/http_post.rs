//! The host's HTTP client behind `hoard:plugin/http`: one POST to one configured URL, over
//! plain TCP or TLS (rustls, with the Mozilla roots of `webpki-roots`), HTTP/1.1 with
//! `Connection: close`. Redirects are not followed (the plugin sees the 3xx): a notifier
//! reaches its URL and nothing else. The answer's body is cut at 64 KiB; the whole exchange
//! has a time limit.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Most of an answer's body kept.
pub const MAX_BODY: usize = 64 << 10;
/// Most of an answer's head (status line and headers) read.
const MAX_HEAD: usize = 32 << 10;

/// Why a POST failed.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The URL is not `http://` or `https://` with a host.
    #[error("not an http(s) URL: {0}")]
    BadUrl(String),
    /// Connecting, TLS, or the exchange failed.
    #[error("{url}: {detail}")]
    Exchange {
        /// The URL.
        url: String,
        /// What failed.
        detail: String,
    },
    /// It took longer than allowed.
    #[error("{0}: timed out")]
    Timeout(String),
}

/// A parsed URL: scheme, host, port, path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `https`.
    pub tls: bool,
    /// The host name or address.
    pub host: String,
    /// The port.
    pub port: u16,
    /// Path and query, starting with `/`.
    pub path: String,
}

impl Target {
    /// Parses `url`.
    pub fn parse(url: &str) -> Result<Target, HttpError> {
        let bad = || HttpError::BadUrl(url.to_string());
        let (tls, rest) = if let Some(rest) = url.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = url.strip_prefix("http://") {
            (false, rest)
        } else {
            return Err(bad());
        };
        let (authority, path) = match rest.find('/') {
            Some(at) => (&rest[..at], &rest[at..]),
            None => (rest, "/"),
        };
        if authority.is_empty() || authority.contains('@') {
            return Err(bad());
        }
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) if !host.ends_with(']') || authority.starts_with('[') => {
                (host, port.parse::<u16>().map_err(|_| bad())?)
            }
            _ => (authority, if tls { 443 } else { 80 }),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() || path.contains(['\r', '\n', ' ']) {
            return Err(bad());
        }
        Ok(Target {
            tls,
            host: host.to_string(),
            port,
            path: path.to_string(),
        })
    }
}

/// POSTs `body` to `url` and returns the status and (at most [`MAX_BODY`] of) the body.
pub async fn post(
    url: &str,
    content_type: &str,
    body: &[u8],
    limit: Duration,
) -> Result<(u16, Vec<u8>), HttpError> {
    let target = Target::parse(url)?;
    if content_type.contains(['\r', '\n']) {
        return Err(HttpError::BadUrl(format!(
            "bad content type {content_type:?}"
        )));
    }
    let exchange = async {
        let fail = |detail: String| HttpError::Exchange {
            url: url.to_string(),
            detail,
        };
        let tcp = tokio::net::TcpStream::connect((target.host.as_str(), target.port))
            .await
            .map_err(|e| fail(format!("connect: {e}")))?;
        if target.tls {
            let mut roots = tokio_rustls::rustls::RootCertStore::empty();
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            let config = tokio_rustls::rustls::ClientConfig::builder_with_provider(Arc::new(
                tokio_rustls::rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .map_err(|e| fail(format!("tls: {e}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();
            let name = tokio_rustls::rustls::pki_types::ServerName::try_from(target.host.clone())
                .map_err(|e| fail(format!("tls name: {e}")))?;
            let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
                .connect(name, tcp)
                .await
                .map_err(|e| fail(format!("tls: {e}")))?;
            exchange(tls, &target, content_type, body)
                .await
                .map_err(fail)
        } else {
            exchange(tcp, &target, content_type, body)
                .await
                .map_err(fail)
        }
    };
    tokio::time::timeout(limit, exchange)
        .await
        .map_err(|_| HttpError::Timeout(url.to_string()))?
}

async fn exchange(
    mut stream: impl AsyncRead + AsyncWrite + Unpin,
    target: &Target,
    content_type: &str,
    body: &[u8],
) -> Result<(u16, Vec<u8>), String> {
    let default_port = if target.tls { 443 } else { 80 };
    let host = if target.port == default_port {
        target.host.clone()
    } else {
        format!("{}:{}", target.host, target.port)
    };
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: hoard/{}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        target.path,
        env!("CARGO_PKG_VERSION"),
        body.len()
    );
    stream
        .write_all(head.as_bytes())
        .await
        .map_err(|e| format!("send: {e}"))?;
    stream
        .write_all(body)
        .await
        .map_err(|e| format!("send: {e}"))?;
    stream.flush().await.map_err(|e| format!("send: {e}"))?;
    let mut answer = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let n = stream
            .read(&mut buf)
            .await
            .map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&buf[..n]);
        if answer.len() > MAX_HEAD + MAX_BODY {
            break;
        }
    }
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut headers);
    let start = match response.parse(&answer) {
        Ok(httparse::Status::Complete(start)) => start,
        Ok(httparse::Status::Partial) => return Err("answer cut short".into()),
        Err(e) => return Err(format!("bad answer: {e}")),
    };
    let status = response.code.ok_or("no status")?;
    let chunked = response.headers.iter().any(|h| {
        h.name.eq_ignore_ascii_case("transfer-encoding")
            && String::from_utf8_lossy(h.value)
                .to_ascii_lowercase()
                .contains("chunked")
    });
    let raw = &answer[start..];
    let mut body = if chunked { dechunk(raw) } else { raw.to_vec() };
    body.truncate(MAX_BODY);
    Ok((status, body))
}

/// The data of a chunked body (as much as is complete).
fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(end) = raw.windows(2).position(|w| w == b"\r\n") {
        let size_text = String::from_utf8_lossy(&raw[..end]);
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let Ok(size) = usize::from_str_radix(size_text, 16) else {
            break;
        };
        raw = &raw[end + 2..];
        if size == 0 || raw.len() < size {
            out.extend_from_slice(&raw[..size.min(raw.len())]);
            break;
        }
        out.extend_from_slice(&raw[..size]);
        raw = raw.get(size + 2..).unwrap_or(&[]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_and_bad_ones_are_refused() {
        let t = Target::parse("https://hooks.example.com/a/b?c=d").expect("url");
        assert_eq!(
            (t.tls, t.host.as_str(), t.port, t.path.as_str()),
            (true, "hooks.example.com", 443, "/a/b?c=d")
        );
        let t = Target::parse("http://127.0.0.1:8080").expect("url");
        assert_eq!((t.tls, t.port, t.path.as_str()), (false, 8080, "/"));
        for bad in [
            "ftp://x/",
            "http://",
            "http://user@host/",
            "http://h:99999/",
            "http://h/a b",
        ] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn chunked_bodies_are_joined() {
        assert_eq!(dechunk(b"3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n"), b"abcde");
    }
}
