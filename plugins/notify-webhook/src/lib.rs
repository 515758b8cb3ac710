//! `notify-webhook`: delivers hoard's events as JSON POSTed to the URL its config names,
//! through the host's HTTP capability (the host does TLS and reaches that URL only). The
//! body is one object: `kind`, `host`, `time`, `subject`, `body`, `recipients` and `facts`
//! (name → value). Any status other than 2xx fails the delivery (and the host retries).

pub mod json;

#[cfg(target_arch = "wasm32")]
mod plugin {
    use hoard_plugin_sdk::notifier::hoard::plugin::events::{Event, EventKind};
    use hoard_plugin_sdk::notifier::hoard::plugin::http;
    use hoard_plugin_sdk::notifier::hoard::plugin::job::{self, Level};
    use hoard_plugin_sdk::notifier::hoard::plugin::manifest::{
        Capability, Features, Metadata, PluginInfo,
    };
    use hoard_plugin_sdk::notifier::hoard::plugin::types::Error;

    use crate::json::{Value, render};

    struct Webhook;

    fn kind_name(kind: EventKind) -> &'static str {
        match kind {
            EventKind::BackupFailed => "backup-failed",
            EventKind::RestoreFailed => "restore-failed",
            EventKind::BackupOverdue => "backup-overdue",
            EventKind::NeverBackedUp => "never-backed-up",
            EventKind::DiskUsageHigh => "disk-usage-high",
            EventKind::PoolDamaged => "pool-damaged",
            EventKind::AdminSummary => "admin-summary",
            EventKind::Test => "test",
        }
    }

    impl hoard_plugin_sdk::notifier::Guest for Webhook {
        fn describe() -> PluginInfo {
            PluginInfo {
                name: "notify-webhook".into(),
                version: env!("CARGO_PKG_VERSION").into(),
                contract: hoard_plugin_sdk::CONTRACT_VERSION.into(),
                description: "JSON POSTed to a configured URL".into(),
                capabilities: vec![Capability::Http],
                features: Features {
                    incremental: false,
                    restore: false,
                    delta: false,
                    metadata: Metadata::empty(),
                },
            }
        }

        fn notify(event: Event) -> Result<(), Error> {
            let body = render(&Value::Object(vec![
                ("kind".into(), Value::Str(kind_name(event.kind).into())),
                (
                    "host".into(),
                    event.host.clone().map_or(Value::Null, Value::Str),
                ),
                ("time".into(), Value::Int(event.time)),
                ("subject".into(), Value::Str(event.subject.clone())),
                ("body".into(), Value::Str(event.body.clone())),
                (
                    "recipients".into(),
                    Value::Array(event.recipients.iter().cloned().map(Value::Str).collect()),
                ),
                (
                    "facts".into(),
                    Value::Object(
                        event
                            .facts
                            .iter()
                            .map(|s| (s.name.clone(), Value::Str(s.value.clone())))
                            .collect(),
                    ),
                ),
            ]));
            let answer = http::post("application/json", body.as_bytes())?;
            if !(200..300).contains(&answer.status) {
                return Err(Error::Other(format!(
                    "the webhook answered {}: {}",
                    answer.status,
                    String::from_utf8_lossy(&answer.body[..answer.body.len().min(200)])
                )));
            }
            job::log(Level::Info, &format!("posted ({})", answer.status));
            Ok(())
        }
    }

    hoard_plugin_sdk::export_notifier!(Webhook);
}
