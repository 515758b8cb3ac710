//! What the end-to-end tests share: the global config file every test folder starts with.

use std::path::Path;

/// Writes `dir/hoard.ron` (and creates `dir/hosts`): the pool at `pool`, the compile cache
/// the tests share (so each plugin is compiled once per build), and `more`, further
/// top-level RON fields such as `defaults: (transport: "tar")`.
pub fn write_global_config(dir: &Path, pool: &Path, more: &str) {
    std::fs::create_dir_all(dir.join("hosts")).expect("config dir");
    let cache = concat!(env!("CARGO_TARGET_TMPDIR"), "/hoard-cache");
    std::fs::write(
        dir.join("hoard.ron"),
        format!(
            "(pool: {:?}, cache_dir: {cache:?}, {more})",
            pool.display().to_string()
        ),
    )
    .expect("hoard.ron");
}
