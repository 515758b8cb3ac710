//! The job's includes and excludes as rsync filter rules, sent to the sender before the file
//! list (anchored at the share root, first match wins): excludes first, then the included
//! subtrees with their ancestors, then everything else at each ancestor level left out.

use std::collections::BTreeSet;

/// The rules, each as rsync reads it on the wire (`- pattern`, `+ pattern`).
pub fn rules(includes: &[Vec<u8>], excludes: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = excludes
        .iter()
        .filter(|p| !p.is_empty())
        .map(|p| [b"- ".as_slice(), p].concat())
        .collect();
    let includes: Vec<Vec<u8>> = includes
        .iter()
        .map(|p| trim_slashes(p))
        .filter(|p| !p.is_empty())
        .collect();
    if includes.is_empty() {
        return out;
    }
    let mut ancestors = BTreeSet::new();
    for path in &includes {
        let mut end = 0;
        while let Some(pos) = path[end..].iter().position(|b| *b == b'/') {
            ancestors.insert(path[..end + pos].to_vec());
            end += pos + 1;
        }
    }
    for ancestor in &ancestors {
        out.push([b"+ /".as_slice(), ancestor, b"/"].concat());
    }
    for path in &includes {
        out.push([b"+ /".as_slice(), path, b"/***"].concat());
    }
    // Deepest first, so that each level's "everything else" comes after its includes.
    let mut levels: Vec<&Vec<u8>> = ancestors.iter().collect();
    levels.sort_by_key(|a| std::cmp::Reverse(a.len()));
    for ancestor in levels {
        out.push([b"- /".as_slice(), ancestor, b"/*"].concat());
    }
    out.push(b"- /*".to_vec());
    out
}

/// `path` without leading and trailing slashes.
pub fn trim_slashes(path: &[u8]) -> Vec<u8> {
    let start = path.iter().position(|b| *b != b'/').unwrap_or(path.len());
    let end = path
        .iter()
        .rposition(|b| *b != b'/')
        .map_or(start, |e| e + 1);
    path[start..end.max(start)].to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(rules: &[Vec<u8>]) -> Vec<String> {
        rules
            .iter()
            .map(|r| String::from_utf8_lossy(r).into_owned())
            .collect()
    }

    #[test]
    fn includes_open_their_ancestors_and_close_the_rest() {
        let r = rules(&[b"/a/b/".to_vec(), b"c".to_vec()], &[b"*.tmp".to_vec()]);
        assert_eq!(
            text(&r),
            [
                "- *.tmp",
                "+ /a/",
                "+ /a/b/***",
                "+ /c/***",
                "- /a/*",
                "- /*"
            ]
        );
    }

    #[test]
    fn no_includes_means_only_excludes() {
        assert_eq!(text(&rules(&[], &[b"/proc".to_vec()])), ["- /proc"]);
    }
}
