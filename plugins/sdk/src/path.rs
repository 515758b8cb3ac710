//! Share-relative paths as the contract has them: bytes, `/`-separated, no leading `/`, the
//! share root the empty path. The small operations every transport needs on them.

/// The parent of a share-relative path (`None` for the root).
pub fn parent(path: &[u8]) -> Option<&[u8]> {
    if path.is_empty() {
        return None;
    }
    Some(match path.iter().rposition(|b| *b == b'/') {
        Some(i) => &path[..i],
        None => b"",
    })
}

/// `dir/name`, or `name` under the root.
pub fn join(dir: &[u8], name: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(dir.len() + 1 + name.len());
    out.extend_from_slice(dir);
    if !dir.is_empty() && !name.is_empty() {
        out.push(b'/');
    }
    out.extend_from_slice(name);
    out
}

/// Whether `path` is `prefix` or lies under it (component-wise).
pub fn is_under(path: &[u8], prefix: &[u8]) -> bool {
    prefix.is_empty()
        || path == prefix
        || (path.starts_with(prefix) && path.get(prefix.len()) == Some(&b'/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parents_and_prefixes() {
        assert_eq!(parent(b"a/b/c"), Some(&b"a/b"[..]));
        assert_eq!(parent(b"a"), Some(&b""[..]));
        assert_eq!(parent(b""), None);
        assert_eq!(join(b"", b"x"), b"x");
        assert_eq!(join(b"d", b"x"), b"d/x");
        assert!(is_under(b"a/b", b"a"));
        assert!(is_under(b"a", b"a"));
        assert!(!is_under(b"ab", b"a"));
        assert!(is_under(b"x", b""));
    }
}
