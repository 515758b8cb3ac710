//! How full the pool's file system is: scheduled backups stop above
//! `server.df_max_usage_pct`.

use std::path::Path;

/// Percentage of the file system holding `path` that is in use, as `df` reports it (blocks
/// reserved for root count as unavailable).
pub fn usage_percent(path: &Path) -> std::io::Result<f64> {
    let stats = rustix::fs::statvfs(path).map_err(std::io::Error::from)?;
    let used = stats.f_blocks.saturating_sub(stats.f_bfree);
    let usable = used + stats.f_bavail;
    if usable == 0 {
        return Ok(0.0);
    }
    Ok(used as f64 * 100.0 / usable as f64)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_real_file_system_reports_a_percentage() {
        let pct = super::usage_percent(std::path::Path::new("/")).expect("statvfs");
        assert!((0.0..=100.0).contains(&pct), "{pct}");
    }
}
