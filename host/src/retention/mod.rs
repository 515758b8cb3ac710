//! Which backups expire: BackupPC's retention rules (`FullKeepCnt` with its exponential
//! array, `FullKeepCntMin`, `FullAgeMax`, `IncrKeepCnt`, `IncrKeepCntMin`, `IncrAgeMax`, the
//! per-backup keep flag), decided by a pure function ([`plan`]) and applied to the pool
//! ([`expire_host`]).
//!
//! hoard follows BackupPC 4's model: the newest backup always counts as "filled" (a full),
//! whatever its type, so it never expires, and every other backup counts by its type. Every
//! hoard snapshot is a complete tree, so deleting one never breaks another (BackupPC 3's
//! rule that a full needed by a later incremental must stay has no counterpart here).
//! A partial backup counts as an incremental.
//!
//! - [`policy`]: the retention settings, with BackupPC's defaults.
//! - [`plan`]: the decision, backup by backup, with the rule that removed each.
//! - [`apply`]: running the plan against the pool.

pub mod apply;
pub mod plan;
pub mod policy;
#[cfg(test)]
mod tests;

pub use apply::{ExpireReport, RetentionError, expire_host};
pub use plan::{BackupSummary, Expiry, Rule, plan};
pub use policy::RetentionPolicy;
