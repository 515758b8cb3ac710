//! Which reminders are due: a host never backed up, or not backed up for
//! `email_notify_old_backup_days` (7), tells its owner, at most once per
//! `email_notify_min_days` (2.5) per host and kind (BackupPC's `EMailNotifyOldBackupDays`
//! and `EMailNotifyMinDays`). What was sent is kept in `<pool>/notify-sent.json` so a
//! restart does not repeat it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::notice::{Notice, NoticeKind, host_recipients};
use crate::config::file::NotifySettings;
use crate::config::{BackupMode, ResolvedHost};

const DAY: f64 = 86_400.0;

/// When each (host, kind) was last told, durable.
#[derive(Debug, Clone, Default)]
pub struct SentRecord {
    path: Option<PathBuf>,
    sent: BTreeMap<String, i64>,
}

fn key(host: &str, kind: NoticeKind) -> String {
    format!(
        "{host}/{}",
        serde_json::to_value(kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    )
}

impl SentRecord {
    /// The record beside the pool at `pool_dir` (empty when there is none yet).
    pub fn open(pool_dir: &Path) -> SentRecord {
        let path = pool_dir.join("notify-sent.json");
        let sent = std::fs::read(&path)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default();
        SentRecord {
            path: Some(path),
            sent,
        }
    }

    /// When `host` was last told about `kind`.
    pub fn last(&self, host: &str, kind: NoticeKind) -> Option<i64> {
        self.sent.get(&key(host, kind)).copied()
    }

    /// Records that `host` was told about `kind` at `time`, and saves.
    pub fn mark(&mut self, host: &str, kind: NoticeKind, time: i64) {
        self.sent.insert(key(host, kind), time);
        if let Some(path) = &self.path {
            let tmp = path.with_extension("json.tmp");
            let saved = serde_json::to_vec(&self.sent)
                .map_err(std::io::Error::other)
                .and_then(|bytes| std::fs::write(&tmp, bytes))
                .and_then(|()| std::fs::rename(&tmp, path));
            if let Err(e) = saved {
                tracing::warn!(path = %path.display(), error = %e, "cannot save what was notified");
            }
        }
    }
}

/// The reminders due at `now` for `hosts` (each with the start of its newest complete
/// backup), given what was sent; marks them sent in `record`.
pub fn reminders(
    hosts: &[(ResolvedHost, Option<i64>)],
    settings: &NotifySettings,
    record: &mut SentRecord,
    now: i64,
) -> Vec<Notice> {
    let old_days = settings.email_notify_old_backup_days.unwrap_or(7.0);
    let min_days = settings.email_notify_min_days.unwrap_or(2.5);
    let mut due = Vec::new();
    for (host, last_backup) in hosts {
        if host.backups == BackupMode::Off {
            continue;
        }
        let (kind, subject, body, facts) = match last_backup {
            None => (
                NoticeKind::NeverBackedUp,
                format!("hoard: {} has never been backed up", host.name),
                format!(
                    "The host {} has never been backed up successfully.\nCheck that it is reachable and its config is right (hoard config check, hoard status).\n",
                    host.name
                ),
                Vec::new(),
            ),
            Some(t) => {
                let days = (now - t) as f64 / DAY;
                if days < old_days {
                    continue;
                }
                (
                    NoticeKind::BackupOverdue,
                    format!("hoard: {} not backed up for {:.1} days", host.name, days),
                    format!(
                        "The newest complete backup of {} is {:.1} days old (the limit is {old_days} days).\n",
                        host.name, days
                    ),
                    vec![("days-since-backup".to_string(), format!("{days:.1}"))],
                )
            }
        };
        if record
            .last(&host.name, kind)
            .is_some_and(|t| ((now - t) as f64) < min_days * DAY)
        {
            continue;
        }
        record.mark(&host.name, kind, now);
        due.push(Notice {
            kind,
            host: Some(host.name.clone()),
            time: now,
            subject,
            body,
            recipients: host_recipients(host, settings),
            facts,
        });
    }
    due
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn hosts() -> Vec<ResolvedHost> {
        let config =
            Config::embedded(std::path::PathBuf::from("/nonexistent/pool")).expect("config");
        vec![config.host("localhost").expect("host")]
    }

    #[test]
    fn overdue_reminders_are_throttled_and_never_backed_up_is_told() {
        let settings = NotifySettings {
            admin_email: Some("admin@example.org".into()),
            ..NotifySettings::default()
        };
        let host = hosts().remove(0);
        let mut record = SentRecord::default();
        let day = 86_400;
        // Never backed up: told once, then not again within 2.5 days.
        let list = [(host.clone(), None)];
        assert_eq!(
            reminders(&list, &settings, &mut record, 0)[0].kind,
            NoticeKind::NeverBackedUp
        );
        assert!(reminders(&list, &settings, &mut record, 2 * day).is_empty());
        assert_eq!(reminders(&list, &settings, &mut record, 3 * day).len(), 1);
        // Backed up 6.9 days ago: nothing; 7.5 days: told (the admin, as no owner is set),
        // with the figure; again only after 2.5 more days.
        let list = [(host.clone(), Some(10 * day))];
        assert!(reminders(&list, &settings, &mut record, 10 * day + 6 * day + 80_000).is_empty());
        let due = reminders(&list, &settings, &mut record, 17 * day + day / 2);
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].kind, NoticeKind::BackupOverdue);
        assert_eq!(due[0].recipients, ["admin@example.org"]);
        assert_eq!(
            due[0].facts[0],
            ("days-since-backup".to_string(), "7.5".to_string())
        );
        assert!(reminders(&list, &settings, &mut record, 19 * day).is_empty());
        assert_eq!(
            reminders(&list, &settings, &mut record, 20 * day + 1).len(),
            1
        );
    }
}
