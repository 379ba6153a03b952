//! Member names: exactly as GNU tar stores them for `tar -cf x.tar <folder>`, and which names
//! read from an archive may be used as paths at all. Pure.

/// The name of the top directory's member, trailing `/` included.
pub fn root_member(folder: &[u8]) -> Vec<u8> {
    as_directory(safer_name(&trim_trailing_slashes(folder)))
}

/// Extends `path` (before GNU's stripping) to its entry `child`.
pub fn push_child(path: &mut Vec<u8>, child: &[u8]) {
    if !path.ends_with(b"/") {
        path.push(b'/');
    }
    path.extend_from_slice(child);
}

/// The plan folder as the starting path for [`push_child`]: GNU tar drops trailing slashes.
pub fn trim_trailing_slashes(folder: &[u8]) -> Vec<u8> {
    let end = folder.iter().rposition(|&b| b != b'/').map_or(0, |i| i + 1);
    if end == 0 && !folder.is_empty() {
        b"/".to_vec()
    } else {
        folder[..end].to_vec()
    }
}

/// GNU tar's `safer_name_suffix`: drops everything up to the last `..` component and any
/// leading slashes, so that extracting never writes outside the current directory.
pub fn safer_name(path: &[u8]) -> &[u8] {
    let mut prefix = 0;
    let mut i = 0;
    while i < path.len() {
        let rest = &path[i..];
        if rest.starts_with(b"..") && (rest.len() == 2 || rest[2] == b'/') {
            prefix = i + 2;
        }
        // Advance to the start of the next component.
        match rest.iter().position(|&b| b == b'/') {
            Some(slash) => i += slash + 1,
            None => break,
        }
    }
    let stripped = &path[prefix..];
    let stripped = &stripped[stripped
        .iter()
        .position(|&b| b != b'/')
        .unwrap_or(stripped.len())..];
    if stripped.is_empty() { b"." } else { stripped }
}

/// A directory's member name ends in exactly one `/`.
pub fn as_directory(name: &[u8]) -> Vec<u8> {
    let mut dir = name.to_vec();
    if !dir.ends_with(b"/") {
        dir.push(b'/');
    }
    dir
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root(folder: &str) -> String {
        String::from_utf8(root_member(folder.as_bytes())).unwrap()
    }

    fn member(folder: &str, child: &str) -> String {
        let mut path = trim_trailing_slashes(folder.as_bytes());
        push_child(&mut path, child.as_bytes());
        String::from_utf8(safer_name(&path).to_vec()).unwrap()
    }

    /// Each case was checked against `tar -cf x.tar <folder>; tar -tf x.tar` with GNU tar 1.34.
    #[test]
    fn names_match_gnu_tar() {
        assert_eq!(root("test"), "test/");
        assert_eq!(member("test", "a"), "test/a");
        assert_eq!(root("test/"), "test/");
        assert_eq!(member("test/", "a"), "test/a");
        assert_eq!(root("./test"), "./test/");
        assert_eq!(member("./test", "a"), "./test/a");
        assert_eq!(root("test//sub"), "test//sub/");
        assert_eq!(member("test//sub", "b"), "test//sub/b");
        assert_eq!(root("/tmp/gt/w/test"), "tmp/gt/w/test/");
        assert_eq!(root("../other"), "other/");
        assert_eq!(member("../w/test", "a"), "w/test/a");
        assert_eq!(root("."), "./");
        assert_eq!(member(".", "test"), "./test");
        assert_eq!(root("test/../test/sub"), "test/sub/");
        assert_eq!(root(".."), "./");
        assert_eq!(member("..", "test"), "test");
        assert_eq!(root("../"), "./");
        assert_eq!(root("/"), "./");
        assert_eq!(member("/", "etc"), "etc");
    }

    #[test]
    fn dotdot_inside_a_name_is_not_a_component() {
        assert_eq!(root("a..b/..c"), "a..b/..c/");
        assert_eq!(member("x", "..hidden"), "x/..hidden");
    }
}

/// The non-empty, non-`.` components of a member path (`..` kept, for the checks to see).
pub fn components(path: &[u8]) -> Vec<&[u8]> {
    path.split(|&b| b == b'/')
        .filter(|part| !part.is_empty() && *part != b".")
        .collect()
}

/// Why a member name read from an archive may never become a path: restore refuses the
/// archive, verify does not look.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnsafeName {
    Empty,
    Absolute(Vec<u8>),
    DotDot(Vec<u8>),
}

impl std::fmt::Display for UnsafeName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown = crate::log::show_name;
        match self {
            UnsafeName::Empty => f.write_str("a member has an empty name"),
            UnsafeName::Absolute(name) => write!(f, "{}: absolute member name", shown(name)),
            UnsafeName::DotDot(name) => write!(f, "{}: member name contains '..'", shown(name)),
        }
    }
}

/// Why `name` may not be used as a path at all: empty, absolute, or climbing out with `..`.
pub fn unsafe_name(name: &[u8]) -> Option<UnsafeName> {
    if name.is_empty() {
        return Some(UnsafeName::Empty);
    }
    if name.starts_with(b"/") {
        return Some(UnsafeName::Absolute(name.to_vec()));
    }
    if components(name).contains(&&b".."[..]) {
        return Some(UnsafeName::DotDot(name.to_vec()));
    }
    None
}
