//! The subset of TOML that `backupbox.toml` is written in, read with the line of every key:
//! comments, `key = value` with integers, booleans, basic and literal strings and arrays of
//! them (which may span lines), and `[name.<archive name>]` tables. Anything else is an
//! error that names its line. Pure: text in, document out.

use std::fmt;

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

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Document {
    /// The keys before any table: defaults for every schedule.
    pub top: Vec<Entry>,
    pub tables: Vec<NameTable>,
}

/// What is wrong, and on which line.
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

struct Cursor<'a> {
    chars: std::iter::Peekable<std::str::Chars<'a>>,
    line: usize,
}

impl Cursor<'_> {
    fn error(&self, message: impl Into<String>) -> SyntaxError {
        SyntaxError {
            line: self.line,
            message: message.into(),
        }
    }

    fn peek(&mut self) -> Option<char> {
        self.chars.peek().copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.chars.next();
        if c == Some('\n') {
            self.line += 1;
        }
        c
    }

    /// Skips spaces and tabs, and with `newlines` also line ends and comments.
    fn skip_blank(&mut self, newlines: bool) {
        while let Some(c) = self.peek() {
            match c {
                ' ' | '\t' | '\r' => {}
                '\n' if newlines => {}
                '#' if newlines => {
                    while self.peek().is_some_and(|c| c != '\n') {
                        self.next();
                    }
                    continue;
                }
                _ => return,
            }
            self.next();
        }
    }

    /// After a key-value pair or a table header: only a comment may follow on the line.
    fn end_of_line(&mut self) -> Result<(), SyntaxError> {
        self.skip_blank(false);
        match self.peek() {
            None | Some('\n' | '#') => Ok(()),
            Some(c) => Err(self.error(format!("unexpected {c:?} after the value"))),
        }
    }

    fn bare_key(&mut self) -> String {
        let mut key = String::new();
        while let Some(c) = self
            .peek()
            .filter(|c| c.is_ascii_alphanumeric() || "_-".contains(*c))
        {
            key.push(c);
            self.next();
        }
        key
    }

    fn value(&mut self) -> Result<Value, SyntaxError> {
        match self.peek() {
            Some('"') => self.string('"').map(Value::Text),
            Some('\'') => self.string('\'').map(Value::Text),
            Some('[') => self.array(),
            Some(c) if c == '-' || c == '+' || c.is_ascii_digit() => self.integer(),
            Some('t' | 'f') => match self.bare_key().as_str() {
                "true" => Ok(Value::Boolean(true)),
                "false" => Ok(Value::Boolean(false)),
                other => Err(self.error(format!("not a value: {other}"))),
            },
            Some(c) => Err(self.error(format!("not a value: {c:?}"))),
            None => Err(self.error("a value is missing")),
        }
    }

    fn integer(&mut self) -> Result<Value, SyntaxError> {
        let mut text = String::new();
        while let Some(c) = self
            .peek()
            .filter(|c| c.is_ascii_digit() || "+-_".contains(*c))
        {
            if c != '_' {
                text.push(c);
            }
            self.next();
        }
        text.parse()
            .map(Value::Integer)
            .map_err(|_| self.error(format!("not a whole number: {text}")))
    }

    /// A string on one line, after its opening `quote`: basic (`"`, with escapes) or
    /// literal (`'`, without).
    fn string(&mut self, quote: char) -> Result<String, SyntaxError> {
        self.next();
        let mut text = String::new();
        loop {
            if matches!(self.peek(), Some('\n') | None) {
                return Err(self.error("a string is not closed"));
            }
            match self.next() {
                Some(c) if c == quote => return Ok(text),
                Some('\\') if quote == '"' => text.push(self.escape()?),
                Some(c) => text.push(c),
                None => {}
            }
        }
    }

    fn escape(&mut self) -> Result<char, SyntaxError> {
        Ok(match self.next() {
            Some('"') => '"',
            Some('\\') => '\\',
            Some('n') => '\n',
            Some('t') => '\t',
            Some('r') => '\r',
            Some(u @ ('u' | 'U')) => {
                let digits: String = (0..if u == 'u' { 4 } else { 8 })
                    .filter_map(|_| self.next())
                    .collect();
                u32::from_str_radix(&digits, 16)
                    .ok()
                    .and_then(char::from_u32)
                    .ok_or_else(|| self.error(format!("bad escape \\{u}{digits}")))?
            }
            other => return Err(self.error(format!("bad escape {other:?}"))),
        })
    }

    fn array(&mut self) -> Result<Value, SyntaxError> {
        self.next();
        let mut items = Vec::new();
        loop {
            self.skip_blank(true);
            if self.peek() == Some(']') {
                self.next();
                return Ok(Value::Array(items));
            }
            items.push(self.value()?);
            self.skip_blank(true);
            match self.next() {
                Some(',') => {}
                Some(']') => return Ok(Value::Array(items)),
                _ => return Err(self.error("an array is not closed")),
            }
        }
    }

    /// `[name.<archive name>]`, the `[` already seen.
    fn table_header(&mut self) -> Result<String, SyntaxError> {
        self.next();
        self.skip_blank(false);
        if self.bare_key() != "name" || self.next() != Some('.') {
            return Err(self.error("tables are [name.<archive name>]"));
        }
        let name = match self.peek() {
            Some('"') => self.string('"')?,
            Some('\'') => self.string('\'')?,
            _ => self.bare_key(),
        };
        self.skip_blank(false);
        if name.is_empty() || self.next() != Some(']') {
            return Err(self.error("tables are [name.<archive name>]"));
        }
        Ok(name)
    }
}

/// Reads a whole settings file.
pub fn parse(text: &str) -> Result<Document, SyntaxError> {
    let mut cursor = Cursor {
        chars: text.chars().peekable(),
        line: 1,
    };
    let mut document = Document::default();
    loop {
        cursor.skip_blank(true);
        let Some(c) = cursor.peek() else {
            return Ok(document);
        };
        let line = cursor.line;
        if c == '[' {
            let name = cursor.table_header()?;
            if document.tables.iter().any(|table| table.name == name) {
                return Err(cursor.error(format!("[name.{name}] appears twice")));
            }
            document.tables.push(NameTable {
                name,
                line,
                entries: Vec::new(),
            });
            cursor.end_of_line()?;
            continue;
        }
        let key = cursor.bare_key();
        if key.is_empty() {
            return Err(cursor.error(format!("expected a key, found {c:?}")));
        }
        cursor.skip_blank(false);
        if cursor.next() != Some('=') {
            return Err(cursor.error(format!("{key}: expected '=' after the key")));
        }
        cursor.skip_blank(false);
        let value = cursor.value()?;
        cursor.end_of_line()?;
        let entries = match document.tables.last_mut() {
            Some(table) => &mut table.entries,
            None => &mut document.top,
        };
        if entries.iter().any(|entry| entry.key == key) {
            return Err(SyntaxError {
                line,
                message: format!("{key}: set twice"),
            });
        }
        entries.push(Entry { key, value, line });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_tables_and_arrays_keep_their_lines() {
        let text = "# defaults\nkeep = 7\nexclude = [\"*.tmp\", 'node_modules',\n  \"logs/*.log\", ]\n\n[name.docs] # the docs\nallow_empty = true\n[name.\"my photos\"]\nkeep = 1_0\n";
        let document = parse(text).unwrap();
        assert_eq!(
            document.top,
            [
                Entry {
                    key: "keep".into(),
                    value: Value::Integer(7),
                    line: 2
                },
                Entry {
                    key: "exclude".into(),
                    value: Value::Array(vec![
                        Value::Text("*.tmp".into()),
                        Value::Text("node_modules".into()),
                        Value::Text("logs/*.log".into()),
                    ]),
                    line: 3
                },
            ]
        );
        assert_eq!(document.tables[0].name, "docs");
        assert_eq!(document.tables[0].entries[0].line, 7);
        assert_eq!(document.tables[1].name, "my photos");
        assert_eq!(document.tables[1].entries[0].value, Value::Integer(10));
    }

    #[test]
    fn what_is_not_understood_names_its_line() {
        let error = |text: &str| parse(text).unwrap_err().to_string();
        assert_eq!(error("keep = 7\nkeep = 8\n"), "line 2: keep: set twice");
        assert_eq!(
            error("\n\nkeep 7"),
            "line 3: keep: expected '=' after the key"
        );
        assert_eq!(error("keep = \"open\n"), "line 1: a string is not closed");
        assert_eq!(
            error("[other.x]\n"),
            "line 1: tables are [name.<archive name>]"
        );
        assert_eq!(
            error("keep = 7 8\n"),
            "line 1: unexpected '8' after the value"
        );
        assert_eq!(error("a = [1,\n2\n"), "line 3: an array is not closed");
        assert_eq!(
            error("[name.a]\n[name.a]\n"),
            "line 2: [name.a] appears twice"
        );
    }
}
