//! The forms an archive is stored in: its compression, and whether it is encrypted with age
//! after compression. Each form has its own file name ending: `.tar`, `.tar.gz`, `.tar.zst`,
//! and the same with `.age` after it.

use super::compression::Compression;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Form {
    pub compression: Compression,
    /// Encrypted with age to the recipients of the settings.
    pub encrypted: bool,
}

impl Form {
    /// Every form, the one the spec knows first; in the order of `layout::ARCHIVE_SUFFIXES`.
    pub const ALL: [Form; 6] = [
        Form::clear(Compression::None),
        Form::clear(Compression::Gzip),
        Form::clear(Compression::Zstd),
        Form::sealed(Compression::None),
        Form::sealed(Compression::Gzip),
        Form::sealed(Compression::Zstd),
    ];

    pub const fn clear(compression: Compression) -> Form {
        Form {
            compression,
            encrypted: false,
        }
    }

    pub const fn sealed(compression: Compression) -> Form {
        Form {
            compression,
            encrypted: true,
        }
    }

    /// The end of the archive's file name.
    pub fn suffix(self) -> &'static str {
        let index = match self.compression {
            Compression::None => 0,
            Compression::Gzip => 1,
            Compression::Zstd => 2,
        };
        crate::layout::ARCHIVE_SUFFIXES[index + if self.encrypted { 3 } else { 0 }]
    }

    /// `backups/<name>.tar` (`.tar.gz`, `.tar.zst.age`, …) as the log lines spell it.
    pub fn archive_display(self, name: &[u8]) -> String {
        format!(
            "{}/{}{}",
            crate::layout::BACKUPS_DIR,
            crate::log::show_bytes(name),
            self.suffix()
        )
    }

    /// The form a file name ends in, and the name without that ending.
    pub fn of_file(file: &[u8]) -> Option<(Form, &[u8])> {
        // The longer endings first: `.tar.gz.age` before `.tar.age`, which it does not end in
        // anyway, but the more specific ending is the one meant.
        let mut forms = Form::ALL;
        forms.sort_by_key(|form| std::cmp::Reverse(form.suffix().len()));
        forms
            .into_iter()
            .find_map(|form| Some((form, file.strip_suffix(form.suffix().as_bytes())?)))
    }

    /// The form as the catalog writes it: `none`, `gzip`, `zstd`, or one of them with `+age`.
    pub fn name(self) -> String {
        let compression = self.compression.setting();
        if self.encrypted {
            format!("{compression}+age")
        } else {
            compression.to_owned()
        }
    }

    pub fn from_name(name: &str) -> Option<Form> {
        Form::ALL.into_iter().find(|form| form.name() == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_has_its_own_ending_and_name() {
        for form in Form::ALL {
            let mut file = b"docs".to_vec();
            file.extend_from_slice(form.suffix().as_bytes());
            assert_eq!(Form::of_file(&file), Some((form, &b"docs"[..])), "{form:?}");
            assert_eq!(Form::from_name(&form.name()), Some(form));
        }
        assert_eq!(
            Form::sealed(Compression::Zstd).archive_display(b"docs"),
            "backups/docs.tar.zst.age"
        );
        assert_eq!(
            Form::of_file(b"db.2026-01-02_030000.tar.gz"),
            Some((Form::clear(Compression::Gzip), &b"db.2026-01-02_030000"[..]))
        );
        assert_eq!(
            Form::of_file(b"db.tar.gz.age"),
            Some((Form::sealed(Compression::Gzip), &b"db"[..]))
        );
        assert_eq!(Form::of_file(b"db.tar.xz"), None);
        assert_eq!(Form::of_file(b"docs.tar.age.bak"), None);
        assert_eq!(Form::of_file(b"docs.age"), None);
    }
}
