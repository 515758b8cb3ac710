//! When backups run: the scheduler's decisions, with BackupPC's semantics and defaults, as
//! pure functions of the time, each host's history and the policy. No I/O here: the server
//! (`hoard serve`) feeds in what it observed (reachability, disk usage, results) and carries
//! out what this module decides, so a simulated clock can drive months of decisions in a
//! test.
//!
//! - [`calendar`]: the local weekday and hour of a moment.
//! - [`blackout`]: periods in which an always-on host is not backed up.
//! - [`policy`]: the scheduling settings of one host, with BackupPC's defaults.
//! - [`decide`]: at a wakeup, what one host needs (full, incremental, nothing) and why.
//! - [`queue`]: waiting and running jobs under the concurrency limits.
//! - [`wakeup`]: the next wakeup of the schedule.

pub mod blackout;
pub mod calendar;
pub mod decide;
pub mod policy;
pub mod queue;
pub mod wakeup;

pub use blackout::BlackoutPeriod;
pub use calendar::LocalTime;
pub use decide::{Decision, HostHistory, Observation, Skip, decide};
pub use policy::SchedulePolicy;
pub use queue::{JobQueue, Origin, QueuedJob};
pub use wakeup::next_wakeup;
