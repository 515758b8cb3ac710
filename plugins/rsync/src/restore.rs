//! Restores: this side is rsync's sender.

use hoard_plugin_sdk::transport::hoard::plugin::types::{Error, JobSummary, RestoreJob};

/// A restore job.
pub fn run(_job: RestoreJob) -> Result<JobSummary, Error> {
    Err(Error::Other("rsync restore: in progress".into()))
}
