//! What the settings leave out of an archive, decided by name: `exclude` patterns with GNU tar
//! `--exclude` wildcards, the `CACHEDIR.TAG` signature of `exclude_caches`, and the tag names
//! of `exclude_if_present`. Pure: names and paths in, verdicts out.

/// The first 43 bytes of a valid `CACHEDIR.TAG` (<https://bford.info/cachedir/>).
pub const CACHE_TAG_SIGNATURE: &[u8] = b"Signature: 8a477f597d28d172789f06886806bc55";
pub const CACHE_TAG: &[u8] = b"CACHEDIR.TAG";

/// The exclude settings of one backup.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rules {
    /// Without a `/`: matched against each name. With one: against the path below the folder.
    pub patterns: Vec<Vec<u8>>,
    pub caches: bool,
    pub if_present: Vec<Vec<u8>>,
    pub one_file_system: bool,
}

impl Rules {
    /// Whether the entry called `name`, at `path` below the folder, is left out by a pattern.
    pub fn excludes(&self, name: &[u8], path: &[u8]) -> bool {
        self.patterns.iter().any(|pattern| {
            let subject = if pattern.contains(&b'/') { path } else { name };
            let pattern = pattern.strip_prefix(b"/").unwrap_or(pattern);
            let pattern = pattern.strip_suffix(b"/").unwrap_or(pattern);
            matches(pattern, subject)
        })
    }

    /// Whether a directory holding an entry called `name` is left out entirely.
    pub fn is_tag(&self, name: &[u8]) -> bool {
        self.if_present.iter().any(|tag| tag == name)
    }
}

/// fnmatch without `FNM_PATHNAME` crossing: `*` and `?` never match `/`; `[…]` and `[!…]`
/// classes with ranges; a backslash quotes the next byte.
pub fn matches(pattern: &[u8], text: &[u8]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some((b'*', rest)) => {
            // Any run of bytes within one path component, the shortest first.
            (0..=text.len())
                .take_while(|&skip| skip == 0 || text[skip - 1] != b'/')
                .any(|skip| matches(rest, &text[skip..]))
        }
        Some((b'?', rest)) => text
            .split_first()
            .is_some_and(|(&c, tail)| c != b'/' && matches(rest, tail)),
        Some((b'[', rest)) => match (class(rest), text.split_first()) {
            (Some((found, after)), Some((&c, tail))) => {
                c != b'/' && found(c) && matches(after, tail)
            }
            // An unclosed `[` is an ordinary byte.
            (None, Some((&b'[', tail))) => matches(rest, tail),
            _ => false,
        },
        Some((b'\\', rest)) if !rest.is_empty() => {
            text.first() == rest.first() && matches(&rest[1..], &text[1..])
        }
        Some((&p, rest)) => text
            .split_first()
            .is_some_and(|(&c, tail)| c == p && matches(rest, tail)),
    }
}

/// A bracket class after its `[`: whether a byte is in it, and the pattern after its `]`.
fn class(pattern: &[u8]) -> Option<(impl Fn(u8) -> bool + '_, &[u8])> {
    let (negated, body) = match pattern.first() {
        Some(b'!' | b'^') => (true, &pattern[1..]),
        _ => (false, pattern),
    };
    // A `]` right at the start is a member, not the end.
    let close = 1 + body.get(1..)?.iter().position(|&b| b == b']')?;
    let members = &body[..close];
    let contains = move |c: u8| {
        let mut i = 0;
        let mut found = false;
        while i < members.len() {
            if i + 2 < members.len() && members[i + 1] == b'-' {
                found |= (members[i]..=members[i + 2]).contains(&c);
                i += 3;
            } else {
                found |= members[i] == c;
                i += 1;
            }
        }
        found != negated
    };
    Some((contains, &body[close + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_stay_within_a_name() {
        assert!(matches(b"*.tmp", b"a.tmp"));
        assert!(matches(b"*.tmp", b".tmp"));
        assert!(!matches(b"*.tmp", b"a.tmpx"));
        assert!(!matches(b"*.log", b"logs/a.log"));
        assert!(matches(b"logs/*.log", b"logs/a.log"));
        assert!(!matches(b"logs/*.log", b"logs/sub/a.log"));
        assert!(matches(b"?.c", b"a.c"));
        assert!(!matches(b"?", b"/"));
        assert!(matches(b"[ab]x", b"bx"));
        assert!(matches(b"[!ab]x", b"cx"));
        assert!(!matches(b"[!ab]x", b"ax"));
        assert!(matches(b"[a-c]", b"b"));
        assert!(matches(b"[]]", b"]"));
        assert!(matches(b"a\\*", b"a*"));
        assert!(!matches(b"a\\*", b"ab"));
        assert!(matches(b"[x", b"[x"));
    }

    #[test]
    fn patterns_without_a_slash_match_any_name_and_with_one_the_path() {
        let rules = Rules {
            patterns: vec![
                b"node_modules".to_vec(),
                b"*.tmp".to_vec(),
                b"logs/*.log".to_vec(),
            ],
            ..Rules::default()
        };
        assert!(rules.excludes(b"node_modules", b"web/app/node_modules"));
        assert!(rules.excludes(b"x.tmp", b"deep/x.tmp"));
        assert!(rules.excludes(b"a.log", b"logs/a.log"));
        assert!(!rules.excludes(b"a.log", b"other/logs/a.log"));
        assert!(!rules.excludes(b"notes", b"notes"));
    }
}
