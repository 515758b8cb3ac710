//! Waiting and running backup jobs under the concurrency limits: backups users asked for
//! wait in their own queue, ahead of scheduled ones, and each queue has its own limit of
//! jobs running at once (`MaxUserBackups`, `MaxBackups`). A host has at most one job
//! waiting or running.

use std::collections::{BTreeMap, VecDeque};

use hoard_pool::BackupType;
use serde::{Deserialize, Serialize};

use super::policy::ServerLimits;

/// Who asked for a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Origin {
    /// The scheduler, at a wakeup.
    Scheduled,
    /// A user, through the CLI or the web UI.
    User,
}

/// One backup job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedJob {
    /// The host to back up.
    pub host: String,
    /// Full or incremental.
    pub kind: BackupType,
    /// Who asked.
    pub origin: Origin,
}

/// Why a job was not queued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueueError {
    /// The host already has a job waiting or running.
    #[error("host {0} already has a backup queued or running")]
    Busy(String),
}

/// The server's job queues.
#[derive(Debug, Default)]
pub struct JobQueue {
    user: VecDeque<QueuedJob>,
    scheduled: VecDeque<QueuedJob>,
    running: BTreeMap<String, QueuedJob>,
}

impl JobQueue {
    /// An empty queue.
    pub fn new() -> JobQueue {
        JobQueue::default()
    }

    /// Queues `job` unless its host has one waiting or running. A user's request replaces a
    /// scheduled job still waiting for the same host.
    pub fn enqueue(&mut self, job: QueuedJob) -> Result<(), QueueError> {
        if self.running.contains_key(&job.host) || self.user.iter().any(|j| j.host == job.host) {
            return Err(QueueError::Busy(job.host));
        }
        if self.scheduled.iter().any(|j| j.host == job.host) {
            if job.origin == Origin::Scheduled {
                return Err(QueueError::Busy(job.host));
            }
            self.scheduled.retain(|j| j.host != job.host);
        }
        match job.origin {
            Origin::User => self.user.push_back(job),
            Origin::Scheduled => self.scheduled.push_back(job),
        }
        Ok(())
    }

    /// Removes the waiting job of `host`, if any; returns it. Running jobs are not touched.
    pub fn dequeue(&mut self, host: &str) -> Option<QueuedJob> {
        for queue in [&mut self.user, &mut self.scheduled] {
            if let Some(at) = queue.iter().position(|j| j.host == host) {
                return queue.remove(at);
            }
        }
        None
    }

    /// The next job allowed to start under `limits` (user jobs first), marked running.
    /// `scheduled_allowed` is false while scheduled backups are refused (disk full).
    pub fn start_next(
        &mut self,
        limits: &ServerLimits,
        scheduled_allowed: bool,
    ) -> Option<QueuedJob> {
        let running = |origin| self.running.values().filter(|j| j.origin == origin).count();
        let job = if !self.user.is_empty() && running(Origin::User) < limits.max_user_backups {
            self.user.pop_front()
        } else if scheduled_allowed
            && !self.scheduled.is_empty()
            && running(Origin::Scheduled) < limits.max_backups
        {
            self.scheduled.pop_front()
        } else {
            None
        }?;
        self.running.insert(job.host.clone(), job.clone());
        Some(job)
    }

    /// Marks the running job of `host` finished.
    pub fn finished(&mut self, host: &str) -> Option<QueuedJob> {
        self.running.remove(host)
    }

    /// Jobs running now.
    pub fn running(&self) -> impl Iterator<Item = &QueuedJob> {
        self.running.values()
    }

    /// Jobs waiting, user jobs first, each queue in order.
    pub fn waiting(&self) -> impl Iterator<Item = &QueuedJob> {
        self.user.iter().chain(self.scheduled.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(host: &str, origin: Origin) -> QueuedJob {
        QueuedJob {
            host: host.into(),
            kind: BackupType::Incremental,
            origin,
        }
    }

    #[test]
    fn limits_hold_per_origin_and_users_go_first() {
        let limits = ServerLimits {
            max_backups: 2,
            max_user_backups: 1,
            ..ServerLimits::default()
        };
        let mut q = JobQueue::new();
        for h in ["a", "b", "c"] {
            q.enqueue(job(h, Origin::Scheduled)).expect("queued");
        }
        q.enqueue(job("u1", Origin::User)).expect("queued");
        q.enqueue(job("u2", Origin::User)).expect("queued");
        let started: Vec<_> = std::iter::from_fn(|| q.start_next(&limits, true))
            .map(|j| j.host)
            .collect();
        assert_eq!(started, ["u1", "a", "b"]);
        q.finished("a");
        assert_eq!(
            q.start_next(&limits, true).map(|j| j.host).as_deref(),
            Some("c")
        );
        q.finished("u1");
        assert_eq!(
            q.start_next(&limits, true).map(|j| j.host).as_deref(),
            Some("u2")
        );
        assert!(q.start_next(&limits, true).is_none());
    }

    #[test]
    fn one_job_per_host_and_users_replace_scheduled() {
        let mut q = JobQueue::new();
        q.enqueue(job("a", Origin::Scheduled)).expect("queued");
        assert!(q.enqueue(job("a", Origin::Scheduled)).is_err());
        q.enqueue(job("a", Origin::User)).expect("user replaces");
        assert_eq!(q.waiting().count(), 1);
        assert!(q.enqueue(job("a", Origin::User)).is_err());
        let limits = ServerLimits::default();
        assert!(q.start_next(&limits, true).is_some());
        assert!(q.enqueue(job("a", Origin::Scheduled)).is_err());
        assert!(q.dequeue("a").is_none());
    }

    #[test]
    fn disk_full_holds_scheduled_jobs_only() {
        let mut q = JobQueue::new();
        q.enqueue(job("s", Origin::Scheduled)).expect("queued");
        q.enqueue(job("u", Origin::User)).expect("queued");
        let limits = ServerLimits::default();
        assert_eq!(
            q.start_next(&limits, false).map(|j| j.host).as_deref(),
            Some("u")
        );
        assert!(q.start_next(&limits, false).is_none());
        assert_eq!(q.dequeue("s").map(|j| j.host).as_deref(), Some("s"));
    }
}
