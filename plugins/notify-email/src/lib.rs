//! `notify-email`: delivers hoard's events as e-mail through the SMTP relay its config
//! names. The host opens the connection (and does TLS when the config asks), so this plugin
//! speaks plain SMTP (RFC 5321): greeting, `EHLO`, `AUTH PLAIN` when the relay offers it and
//! the config grants the `smtp` secret (the host writes the credentials; the plugin never
//! sees them), `MAIL`, `RCPT` for each recipient, `DATA` with a MIME message (see [`mime`]),
//! `QUIT`. Every reply is checked; a refusal fails the delivery with the relay's words.

pub mod mime;

#[cfg(target_arch = "wasm32")]
mod plugin {
    use hoard_plugin_sdk::notifier::hoard::plugin::credentials::{self, SecretForm};
    use hoard_plugin_sdk::notifier::hoard::plugin::endpoint;
    use hoard_plugin_sdk::notifier::hoard::plugin::events::Event;
    use hoard_plugin_sdk::notifier::hoard::plugin::job::{self, Level};
    use hoard_plugin_sdk::notifier::hoard::plugin::manifest::{
        Capability, Features, Metadata, PluginInfo,
    };
    use hoard_plugin_sdk::notifier::hoard::plugin::types::Error;
    use hoard_plugin_sdk::notifier::wasi::io::streams::{InputStream, OutputStream};

    use crate::mime::{Message, dot_stuff};

    /// The secret the config grants for `AUTH`.
    const SECRET: &str = "smtp";
    /// Longest reply accepted.
    const MAX_REPLY: usize = 64 << 10;

    struct Email;

    struct Session {
        input: InputStream,
        output: OutputStream,
        pending: Vec<u8>,
    }

    impl Session {
        fn write(&self, bytes: &[u8]) -> Result<(), Error> {
            for chunk in bytes.chunks(4096) {
                self.output
                    .blocking_write_and_flush(chunk)
                    .map_err(|e| Error::Client(format!("writing to the relay: {e:?}")))?;
            }
            Ok(())
        }

        fn line(&mut self) -> Result<String, Error> {
            loop {
                if let Some(end) = self.pending.windows(2).position(|w| w == b"\r\n") {
                    let line: Vec<u8> = self.pending.drain(..end + 2).collect();
                    return Ok(String::from_utf8_lossy(&line[..end]).into_owned());
                }
                if self.pending.len() > MAX_REPLY {
                    return Err(Error::Protocol("the relay sent an endless line".into()));
                }
                let chunk = self.input.blocking_read(4096).map_err(|e| {
                    Error::Client(format!("the relay closed the connection: {e:?}"))
                })?;
                self.pending.extend_from_slice(&chunk);
            }
        }

        /// One reply: its code and its text (all lines).
        fn reply(&mut self) -> Result<(u16, String), Error> {
            let mut text = Vec::new();
            loop {
                let line = self.line()?;
                let code = line
                    .get(..3)
                    .and_then(|c| c.parse::<u16>().ok())
                    .ok_or_else(|| Error::Protocol(format!("not an SMTP reply: {line:?}")))?;
                text.push(line.get(4..).unwrap_or("").to_string());
                if line.as_bytes().get(3) != Some(&b'-') {
                    return Ok((code, text.join("\n")));
                }
            }
        }

        /// Sends `command` (without CRLF) and checks the reply is `want`.
        fn expect(&mut self, command: &str, want: u16) -> Result<String, Error> {
            self.write(format!("{command}\r\n").as_bytes())?;
            self.expect_reply(command, want)
        }

        fn expect_reply(&mut self, what: &str, want: u16) -> Result<String, Error> {
            let (code, text) = self.reply()?;
            if code / 100 == want / 100 && (code == want || want.is_multiple_of(100)) {
                Ok(text)
            } else {
                let what = what.split(':').next().unwrap_or(what);
                Err(Error::Other(format!(
                    "the relay answered {what} with {code} {text}"
                )))
            }
        }
    }

    impl hoard_plugin_sdk::notifier::Guest for Email {
        fn describe() -> PluginInfo {
            PluginInfo {
                name: "notify-email".into(),
                version: env!("CARGO_PKG_VERSION").into(),
                contract: hoard_plugin_sdk::CONTRACT_VERSION.into(),
                description: "e-mail through an SMTP relay (AUTH PLAIN when granted)".into(),
                capabilities: vec![Capability::Endpoint, Capability::Secret(SECRET.into())],
                features: Features {
                    incremental: false,
                    restore: false,
                    delta: false,
                    metadata: Metadata::empty(),
                },
            }
        }

        fn notify(event: Event) -> Result<(), Error> {
            if event.recipients.is_empty() {
                return Err(Error::Other("no recipients for this event".into()));
            }
            for address in event.recipients.iter().chain([&event.sender]) {
                if address.contains(['\r', '\n', '<', '>']) || !address.contains('@') {
                    return Err(Error::Other(format!("not an e-mail address: {address:?}")));
                }
            }
            let connection = endpoint::connect()?;
            let mut smtp = Session {
                input: connection.input,
                output: connection.output,
                pending: Vec::new(),
            };
            smtp.expect_reply("the greeting", 220)?;
            let extensions = smtp.expect("EHLO hoard", 250)?;
            let offers_plain = extensions.lines().any(|l| {
                let l = l.to_ascii_uppercase();
                l.starts_with("AUTH") && l.split_whitespace().any(|m| m == "PLAIN")
            });
            if offers_plain {
                smtp.expect("AUTH PLAIN", 334)?;
                match credentials::write_secret(SECRET, &SecretForm::SaslPlainBase64, &smtp.output)
                {
                    Ok(()) => {
                        smtp.write(b"\r\n")?;
                        smtp.expect_reply("AUTH", 235)?;
                    }
                    Err(e) => {
                        job::log(Level::Info, &format!("no AUTH: {e:?}"));
                        smtp.write(b"*\r\n")?;
                        let _ = smtp.reply()?;
                    }
                }
            }
            smtp.expect(&format!("MAIL FROM:<{}>", event.sender), 250)?;
            for to in &event.recipients {
                smtp.expect(&format!("RCPT TO:<{to}>"), 250)?;
            }
            smtp.expect("DATA", 354)?;
            let id = format!(
                "{}.{:x}.hoard",
                event.time,
                event
                    .subject
                    .bytes()
                    .chain(event.body.bytes())
                    .fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b))
                        .wrapping_mul(0x100_0000_01b3))
            );
            let message = Message {
                from: &event.sender,
                to: &event.recipients,
                subject: &event.subject,
                body: &event.body,
                time: event.time,
                id: &id,
            };
            smtp.write(&dot_stuff(&message.render()))?;
            smtp.expect_reply("the message", 250)?;
            smtp.expect("QUIT", 221)?;
            job::log(
                Level::Info,
                &format!("delivered to {}", event.recipients.join(", ")),
            );
            Ok(())
        }
    }

    hoard_plugin_sdk::export_notifier!(Email);
}
