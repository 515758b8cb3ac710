//! One message for people or systems, and who receives it: a host's owner and more users
//! (with the default mail domain added to bare names), else the admin.

use serde::{Deserialize, Serialize};

use crate::config::ResolvedHost;
use crate::config::file::NotifySettings;
use crate::plugin::bindings::notifier::hoard::plugin::events::{Event, EventKind};
use crate::plugin::bindings::transport::hoard::plugin::types::Setting;

/// What a message is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NoticeKind {
    /// A backup failed.
    BackupFailed,
    /// A restore failed.
    RestoreFailed,
    /// A host has not been backed up for too long.
    BackupOverdue,
    /// A host has never been backed up.
    NeverBackedUp,
    /// The pool's disk is fuller than its limit.
    DiskUsageHigh,
    /// fsck found damage.
    PoolDamaged,
    /// The admin's daily summary.
    AdminSummary,
    /// `hoard notify test`.
    Test,
}

impl NoticeKind {
    fn to_wit(self) -> EventKind {
        match self {
            NoticeKind::BackupFailed => EventKind::BackupFailed,
            NoticeKind::RestoreFailed => EventKind::RestoreFailed,
            NoticeKind::BackupOverdue => EventKind::BackupOverdue,
            NoticeKind::NeverBackedUp => EventKind::NeverBackedUp,
            NoticeKind::DiskUsageHigh => EventKind::DiskUsageHigh,
            NoticeKind::PoolDamaged => EventKind::PoolDamaged,
            NoticeKind::AdminSummary => EventKind::AdminSummary,
            NoticeKind::Test => EventKind::Test,
        }
    }
}

/// One message.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    /// What it is about.
    pub kind: NoticeKind,
    /// The host, if any.
    pub host: Option<String>,
    /// When (seconds since the epoch).
    pub time: i64,
    /// One line.
    pub subject: String,
    /// The text for a person.
    pub body: String,
    /// Addresses.
    pub recipients: Vec<String>,
    /// The figures behind it.
    pub facts: Vec<(String, String)>,
}

impl Notice {
    /// The WIT event a notifier receives, sent from `sender`.
    pub fn to_event(&self, sender: &str) -> Event {
        Event {
            kind: self.kind.to_wit(),
            host: self.host.clone(),
            time: self.time,
            subject: self.subject.clone(),
            body: self.body.clone(),
            recipients: self.recipients.clone(),
            sender: sender.to_string(),
            facts: self
                .facts
                .iter()
                .map(|(name, value)| Setting {
                    name: name.clone(),
                    value: value.clone(),
                })
                .collect(),
        }
    }
}

/// `name` as an address: as is when it has an `@`, else with the default domain (or as is
/// when there is none).
pub fn address(name: &str, settings: &NotifySettings) -> String {
    match (&settings.email_user_dest_domain, name.contains('@')) {
        (Some(domain), false) => format!("{name}@{}", domain.trim_start_matches('@')),
        _ => name.to_string(),
    }
}

/// Who hears about `host`: its owner and more users; the admin when it has none.
pub fn host_recipients(host: &ResolvedHost, settings: &NotifySettings) -> Vec<String> {
    let mut to: Vec<String> = host
        .owner
        .iter()
        .chain(host.more_users.iter())
        .map(|n| address(n, settings))
        .collect();
    if to.is_empty() {
        to.extend(admin_recipients(settings));
    }
    to.dedup();
    to
}

/// The admin, if configured.
pub fn admin_recipients(settings: &NotifySettings) -> Vec<String> {
    settings
        .admin_email
        .iter()
        .map(|a| address(a, settings))
        .collect()
}

/// The sender of every message.
pub fn sender(settings: &NotifySettings) -> String {
    settings.email_from.clone().unwrap_or_else(|| {
        let host = std::fs::read_to_string("/etc/hostname")
            .map(|h| h.trim().to_string())
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".into());
        format!("hoard@{host}")
    })
}

/// A failed backup or restore of `host`, for its owner (or the admin).
pub fn failure(
    kind: NoticeKind,
    host: &ResolvedHost,
    settings: &NotifySettings,
    detail: &str,
    time: i64,
) -> Notice {
    let what = if kind == NoticeKind::RestoreFailed {
        "restore"
    } else {
        "backup"
    };
    Notice {
        kind,
        host: Some(host.name.clone()),
        time,
        subject: format!("hoard: {what} of {} failed", host.name),
        body: format!(
            "The {what} of {} failed:\n\n{detail}\n\nSee its job log (hoard list {}) and hoard status.\n",
            host.name, host.name
        ),
        recipients: host_recipients(host, settings),
        facts: vec![("error".to_string(), detail.to_string())],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_names_get_the_default_domain() {
        let settings = NotifySettings {
            email_user_dest_domain: Some("example.org".into()),
            admin_email: Some("root".into()),
            ..NotifySettings::default()
        };
        assert_eq!(address("ann", &settings), "ann@example.org");
        assert_eq!(address("bob@other.net", &settings), "bob@other.net");
        assert_eq!(admin_recipients(&settings), ["root@example.org"]);
    }
}
