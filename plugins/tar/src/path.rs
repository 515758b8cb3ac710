//! Member names of a tar stream turned into share-relative paths, and the checks that keep a
//! hostile client's names inside the backup's own tree.
//!
//! GNU tar names members `./a/b` (directories with a trailing `/`, the share root `./`). The
//! contract wants `a/b`, the root as the empty path. Absolute names and `..` components are
//! refused, never rewritten: an archive that has them was not made by an honest `tar -C`.

/// Why a member name was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BadPath {
    /// It starts with `/`.
    Absolute,
    /// One of its components is `..`.
    Parent,
    /// It contains a NUL byte (a header field overflow, or forged).
    Nul,
}

impl std::fmt::Display for BadPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BadPath::Absolute => "absolute path",
            BadPath::Parent => "`..` component",
            BadPath::Nul => "NUL byte in the name",
        })
    }
}

/// The share-relative path of a member name: `./` and empty or `.` components dropped,
/// trailing slashes dropped; `.` and `./` are the empty path.
pub fn member_path(name: &[u8]) -> Result<Vec<u8>, BadPath> {
    if name.first() == Some(&b'/') {
        return Err(BadPath::Absolute);
    }
    if name.contains(&0) {
        return Err(BadPath::Nul);
    }
    let mut out = Vec::with_capacity(name.len());
    for component in name.split(|b| *b == b'/') {
        match component {
            b"" | b"." => {}
            b".." => return Err(BadPath::Parent),
            c => {
                if !out.is_empty() {
                    out.push(b'/');
                }
                out.extend_from_slice(c);
            }
        }
    }
    Ok(out)
}

pub use hoard_plugin_sdk::path::{is_under, join, parent};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gnu_names_become_share_relative() {
        assert_eq!(member_path(b"./").unwrap(), b"");
        assert_eq!(member_path(b".").unwrap(), b"");
        assert_eq!(member_path(b"./a/b/").unwrap(), b"a/b");
        assert_eq!(member_path(b"a//./b").unwrap(), b"a/b");
        assert_eq!(member_path(b"./bad\xff/x").unwrap(), b"bad\xff/x");
    }

    #[test]
    fn escapes_are_refused() {
        assert_eq!(member_path(b"/etc/passwd"), Err(BadPath::Absolute));
        assert_eq!(member_path(b"../x"), Err(BadPath::Parent));
        assert_eq!(member_path(b"./a/../../x"), Err(BadPath::Parent));
        assert_eq!(member_path(b"a/..").unwrap_err(), BadPath::Parent);
        assert_eq!(member_path(b"a\0b"), Err(BadPath::Nul));
        // `..x` and `x..` are ordinary names.
        assert_eq!(member_path(b"..x/y..").unwrap(), b"..x/y..");
    }
}
