//! What the settings leave out of an archive, decided by name: `exclude` patterns with GNU tar
//! `--exclude` wildcards, the `CACHEDIR.TAG` signature of `exclude_caches`, and the tag names
//! of `exclude_if_present`. Pure: names and paths in, verdicts out.

/// The first 43 bytes of a valid `CACHEDIR.TAG` (<https://bford.info/cachedir/>).
pub const CACHE_TAG_SIGNATURE: &[u8] = b"Signature: 8a477f597d28d172789f06886806bc55";
pub const CACHE_TAG: &[u8] = b"CACHEDIR.TAG";

/// The exclude settings of one backup.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rules {
    /// GNU tar `--exclude` patterns, tried against each member's name as stored.
    pub patterns: Vec<Exclude>,
    pub caches: bool,
    pub if_present: Vec<Vec<u8>>,
    pub one_file_system: bool,
}

impl Rules {
    /// Whether the member called `member` (its name as stored, folder prefix included, no
    /// trailing `/`) is left out by a pattern. As GNU tar 1.34's `--exclude` by default:
    /// unanchored (a pattern may match the whole name or any run of its trailing components,
    /// so `logs/*.log` leaves out `data/sub/logs/b.log`) and with wildcards that match `/`
    /// (`docs/*.log` leaves out `docs/a/b/c.log`). A pattern is used as written: one that
    /// starts or ends with `/` matches nothing, as in GNU tar.
    pub fn excludes(&self, member: &[u8]) -> bool {
        self.patterns.iter().any(|pattern| pattern.matches(member))
    }

    /// Whether a directory holding an entry called `name` is left out entirely.
    pub fn is_tag(&self, name: &[u8]) -> bool {
        self.if_present.iter().any(|tag| tag == name)
    }
}

/// One `exclude` pattern, compiled once for the whole walk: as written, and with `*/` in
/// front for the trailing components of a name (a star crosses `/`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exclude {
    whole: Pattern,
    trailing: Pattern,
}

impl Exclude {
    pub fn new(pattern: &[u8]) -> Exclude {
        let whole = Pattern::compile(pattern);
        let mut trailing = vec![Token::Star, Token::Byte(b'/')];
        trailing.extend(whole.tokens.iter().cloned());
        Exclude {
            whole,
            trailing: Pattern { tokens: trailing },
        }
    }

    /// Whether the pattern matches the whole member name or any part of it after a `/`.
    pub fn matches(&self, member: &[u8]) -> bool {
        self.whole.matches(member) || (member.contains(&b'/') && self.trailing.matches(member))
    }
}

/// One element of a compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Byte(u8),
    /// `?`: any one byte, `/` included.
    Any,
    /// `[…]`: the bytes in it (negation already applied).
    Class(Box<[bool; 256]>),
    /// `*`: any run of bytes, `/` included.
    Star,
}

/// A GNU tar wildcard pattern, compiled once so matching never re-reads the pattern text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    tokens: Vec<Token>,
}

impl Pattern {
    /// `*`, `?`, `[…]` and `[!…]` (or `[^…]`) classes with ranges (a `]` right after the `[`
    /// is a member), a backslash quoting the next byte; an unclosed `[` is an ordinary byte.
    pub fn compile(pattern: &[u8]) -> Pattern {
        let mut tokens = Vec::with_capacity(pattern.len());
        let mut i = 0;
        while i < pattern.len() {
            let token = match pattern[i] {
                b'*' => {
                    // Runs of stars are one star: matching stays linear in their count.
                    if !matches!(tokens.last(), Some(Token::Star)) {
                        tokens.push(Token::Star);
                    }
                    i += 1;
                    continue;
                }
                b'?' => Token::Any,
                b'\\' if i + 1 < pattern.len() => {
                    i += 1;
                    Token::Byte(pattern[i])
                }
                b'[' => match class(&pattern[i + 1..]) {
                    Some((members, used)) => {
                        i += used;
                        Token::Class(members)
                    }
                    None => Token::Byte(b'['),
                },
                byte => Token::Byte(byte),
            };
            tokens.push(token);
            i += 1;
        }
        Pattern { tokens }
    }

    /// Whether the whole of `text` matches, in time linear in the text times the pattern:
    /// on a mismatch only the last star is widened (the classic two-pointer match, exact here
    /// because a star matches every byte), never every earlier one.
    pub fn matches(&self, text: &[u8]) -> bool {
        let tokens = &self.tokens;
        let (mut t, mut p) = (0, 0);
        // The token after the last star seen, and where in the text that star's match ends.
        let mut resume: Option<(usize, usize)> = None;
        while t < text.len() {
            let step = match tokens.get(p) {
                Some(Token::Star) => {
                    resume = Some((p + 1, t));
                    p += 1;
                    continue;
                }
                Some(Token::Byte(byte)) => *byte == text[t],
                Some(Token::Any) => true,
                Some(Token::Class(members)) => members[usize::from(text[t])],
                None => false,
            };
            if step {
                t += 1;
                p += 1;
            } else if let Some((after_star, star_end)) = resume {
                resume = Some((after_star, star_end + 1));
                p = after_star;
                t = star_end + 1;
            } else {
                return false;
            }
        }
        tokens[p..].iter().all(|token| matches!(token, Token::Star))
    }
}

/// A bracket class after its `[`: the bytes it holds, and how many pattern bytes it used
/// after the `[` (its closing `]` included); `None` when it is never closed.
fn class(pattern: &[u8]) -> Option<(Box<[bool; 256]>, usize)> {
    let (negated, skip) = match pattern.first() {
        Some(b'!' | b'^') => (true, 1),
        _ => (false, 0),
    };
    let body = &pattern[skip..];
    // A `]` right at the start is a member, not the end.
    let close = 1 + body.get(1..)?.iter().position(|&b| b == b']')?;
    let members = &body[..close];
    let mut set = Box::new([negated; 256]);
    let mut i = 0;
    while i < members.len() {
        let (low, high, used) = if i + 2 < members.len() && members[i + 1] == b'-' {
            (members[i], members[i + 2], 3)
        } else {
            (members[i], members[i], 1)
        };
        for byte in low..=high {
            set[usize::from(byte)] = !negated;
        }
        i += used;
    }
    Some((set, skip + close + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(pattern: &[u8], text: &[u8]) -> bool {
        Pattern::compile(pattern).matches(text)
    }

    #[test]
    fn wildcards_match_as_gnu_tar_exclude_does_slashes_included() {
        assert!(matches(b"*.tmp", b"a.tmp"));
        assert!(matches(b"*.tmp", b".tmp"));
        assert!(!matches(b"*.tmp", b"a.tmpx"));
        assert!(matches(b"*.log", b"logs/a.log"));
        assert!(matches(b"docs/*.log", b"docs/a/b/c.log"));
        assert!(matches(b"?.c", b"a.c"));
        assert!(matches(b"a?b", b"a/b"));
        assert!(matches(b"[ab]x", b"bx"));
        assert!(matches(b"[!ab]x", b"cx"));
        assert!(!matches(b"[!ab]x", b"ax"));
        assert!(matches(b"[^ab]x", b"cx"));
        assert!(matches(b"[a-c]", b"b"));
        assert!(!matches(b"[a-c]", b"d"));
        assert!(matches(b"[]]", b"]"));
        assert!(matches(b"[!]]", b"a"));
        assert!(matches(b"a\\*", b"a*"));
        assert!(!matches(b"a\\*", b"ab"));
        assert!(matches(b"[x", b"[x"));
        assert!(matches(b"**", b""));
        assert!(!matches(b"?", b""));
        assert!(matches(b"a*b*c", b"aXbYbZc"));
        assert!(!matches(b"a*b*c", b"aXbYbZ"));
    }

    #[test]
    fn patterns_match_the_whole_member_name_or_any_trailing_components() {
        let rules = Rules {
            patterns: [&b"node_modules"[..], b"*.tmp", b"logs/*.log", b"cache/"]
                .into_iter()
                .map(Exclude::new)
                .collect(),
            ..Rules::default()
        };
        assert!(rules.excludes(b"proj/web/app/node_modules"));
        assert!(rules.excludes(b"proj/deep/x.tmp"));
        assert!(rules.excludes(b"proj/logs/a.log"));
        assert!(rules.excludes(b"proj/data/sub/logs/b.log"));
        assert!(!rules.excludes(b"proj/notes"));
        assert!(!rules.excludes(b"proj/xnode_modules"));
        assert!(!rules.excludes(b"proj/catalogs/a.log"));
        assert!(
            !rules.excludes(b"proj/a/cache"),
            "as GNU tar: the slash stays"
        );
    }

    #[test]
    fn many_stars_against_a_long_name_take_linear_time() {
        // Exponential for a backtracking matcher: 6 stars against 200 dashes and an x.
        let name = [vec![b'-'; 200], b"x".to_vec()].concat();
        assert!(!Exclude::new(b"*-*-*-*-*-*.log").matches(&name));
        let deep = b"a/".repeat(2000);
        assert!(!Exclude::new(b"*a*a*a*a*a*b").matches(&deep));
    }
}
