//! Notifications end to end, against a real SMTP relay (aiosmtpd, requiring AUTH) and a real
//! HTTP sink on loopback: `hoard notify test` through both notifier plugins, a failed backup
//! told to the host's owner, a relay that is down (retried, logged, the command's outcome
//! unchanged), and a notifier without a URL refused by the sandbox.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use hoard_conformance::peers::{HttpSinkPeer, SmtpPeer};

fn hoard(config: &Path, args: &[&str]) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_hoard"))
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .expect("run hoard");
    (
        output.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}

/// Parses a raw message with Python's standard e-mail parser (a strict, independent MIME
/// implementation): subject (decoded), To, the envelope recipients, and the decoded body.
fn parse_mail(raw: &[u8]) -> serde_json::Value {
    let script = r#"
import email, email.policy, json, sys
m = email.message_from_bytes(sys.stdin.buffer.read(), policy=email.policy.strict)
print(json.dumps({"subject": str(m["subject"]), "to": str(m["to"]), "from": str(m["from"]),
  "rcpt": str(m["X-RcptTo"]), "date": str(m["date"]), "id": str(m["message-id"]),
  "type": m.get_content_type(), "charset": m.get_content_charset(),
  "body": m.get_content()}))
"#;
    let mut child = Command::new("/usr/bin/python3")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    std::io::Write::write_all(child.stdin.as_mut().expect("stdin"), raw).expect("write");
    let out = child.wait_with_output().expect("parse");
    assert!(
        out.status.success(),
        "not a valid message:\n{}",
        String::from_utf8_lossy(raw)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

fn write_config(dir: &Path, pool: &Path, notifiers: &str, share: &str) {
    common::write_global_config(
        dir,
        pool,
        &format!(
            "defaults: (transport: \"tar\"), notify: (admin_email: Some(\"admin\"), email_from: Some(\"hoard@example.org\"), email_user_dest_domain: Some(\"example.org\"), notifiers: [{notifiers}])"
        ),
    );
    std::fs::write(
        dir.join("hosts/localhost.ron"),
        format!("(shares: [{share:?}], owner: Some(\"ann\"), more_users: [\"bob@elsewhere.net\"])"),
    )
    .expect("localhost.ron");
}

#[test]
fn messages_arrive_through_smtp_and_webhook() {
    let smtp =
        SmtpPeer::start_with_auth("hoard", "relay-pass").expect("smtp peer (python3-aiosmtpd)");
    let http = HttpSinkPeer::start().expect("http sink");
    let work = tempfile::tempdir().expect("tempdir");
    let password = work.path().join("relay.pass");
    std::fs::write(&password, "relay-pass\n").expect("password");
    let config = work.path().join("config");
    let pool = work.path().join("pool");
    let notifiers = format!(
        "(plugin: \"notify-email\", endpoint: Some(\"127.0.0.1:{}\"), secret: Some((user: \"hoard\", password_file: {:?}))), (plugin: \"notify-webhook\", url: Some(\"{}/hooks/hoard\"))",
        smtp.port(),
        password.display().to_string(),
        http.url()
    );
    write_config(&config, &pool, &notifiers, "/nonexistent/share");

    let (ok, text) = hoard(&config, &["notify", "test"]);
    assert!(ok, "{text}");
    assert!(
        text.contains("notify-email: sent") && text.contains("notify-webhook: sent"),
        "{text}"
    );
    let mails = smtp.messages().expect("maildir");
    assert_eq!(mails.len(), 1);
    let mail = parse_mail(&mails[0]);
    assert_eq!(mail["subject"], "hoard: test message");
    assert_eq!(mail["to"], "admin@example.org");
    assert_eq!(mail["from"], "hoard@example.org");
    assert_eq!(
        (mail["type"].as_str(), mail["charset"].as_str()),
        (Some("text/plain"), Some("utf-8"))
    );
    assert!(
        mail["body"]
            .as_str()
            .is_some_and(|b| b.contains("notifications reach you"))
    );
    let posts = http.received().expect("sink");
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].path, "/hooks/hoard");
    let json: serde_json::Value = serde_json::from_str(&posts[0].body).expect("json body");
    assert_eq!(json["kind"], "test");
    assert_eq!(json["recipients"][0], "admin@example.org");
    assert_eq!(json["facts"]["test"], "true");

    // A failed backup tells the host's owner and more users, with the error.
    let (ok, text) = hoard(&config, &["backup", "localhost", "--full"]);
    assert!(!ok, "{text}");
    let mails = smtp.messages().expect("maildir");
    assert_eq!(mails.len(), 2, "{text}");
    let mail = parse_mail(&mails[1]);
    assert_eq!(mail["subject"], "hoard: backup of localhost failed");
    assert_eq!(mail["to"], "ann@example.org, bob@elsewhere.net");
    assert!(
        mail["rcpt"]
            .as_str()
            .is_some_and(|r| r.contains("ann@example.org"))
    );
    assert!(
        mail["body"]
            .as_str()
            .is_some_and(|b| b.contains("nonexistent")),
        "{mail}"
    );
    let posts = http.received().expect("sink");
    let json: serde_json::Value = serde_json::from_str(&posts[1].body).expect("json body");
    assert_eq!(json["kind"], "backup-failed");
    assert_eq!(json["host"], "localhost");
}

#[test]
fn a_relay_that_is_down_is_retried_and_logged_and_changes_nothing() {
    let work = tempfile::tempdir().expect("tempdir");
    let config = work.path().join("config");
    let pool = work.path().join("pool");
    let share = work.path().join("data");
    std::fs::create_dir_all(&share).expect("share");
    std::fs::write(share.join("f"), b"x").expect("file");
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let notifiers = format!("(plugin: \"notify-email\", endpoint: Some(\"127.0.0.1:{port}\"))");
    write_config(&config, &pool, &notifiers, &share.display().to_string());

    // A good backup is untouched by the broken relay.
    let (ok, text) = hoard(&config, &["backup", "localhost", "--full"]);
    assert!(ok, "{text}");
    // `notify test` reports the failure after its retries, and says so.
    let started = Instant::now();
    let (ok, text) = hoard(&config, &["notify", "test"]);
    assert!(!ok && text.contains("FAILED after 3 attempts"), "{text}");
    assert!(started.elapsed().as_secs() < 30);

    // A webhook notifier without a URL is refused by the sandbox, not sent anywhere.
    write_config(
        &config,
        &pool,
        "(plugin: \"notify-webhook\")",
        &share.display().to_string(),
    );
    let (ok, text) = hoard(&config, &["notify", "test"]);
    assert!(!ok && text.contains("not granted"), "{text}");
}
