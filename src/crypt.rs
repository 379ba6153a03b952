//! Encryption with age (the C2SP age format, X25519 recipients): the recipients an archive is
//! encrypted to, the identity files that decrypt it, and the writer and reader layers between
//! the compressed tar stream and the archive file. The host that writes backups needs only
//! the recipients; the identities live elsewhere.

use crate::store::catalog::hex;
use sha2::Digest;
use std::fs::File;
use std::io::{self, BufRead, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// The largest identity or recipients file read: a few hundred keys.
const MAX_KEY_FILE_BYTES: u64 = 64 << 10;

/// Whether `text` is an age X25519 recipient (`age1…`).
pub fn is_recipient(text: &str) -> bool {
    age::x25519::Recipient::from_str(text).is_ok()
}

/// The recipients of a file in `age -R`'s format: one a line, blank lines and `#` comments
/// left out. An error names the line that is not a recipient.
pub fn recipients_in(text: &str) -> Result<Vec<String>, String> {
    let mut found = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if !is_recipient(line) {
            return Err(format!(
                "line {}: not an age X25519 recipient: {}",
                number + 1,
                crate::log::quoted(line)
            ));
        }
        found.push(line.to_owned());
    }
    if found.is_empty() {
        return Err("holds no recipient".to_owned());
    }
    Ok(found)
}

/// Reads a key file the operator named (a recipients file, an identity file): it may be a
/// symlink (a mounted secret often is), but what it leads to must be a regular file, is
/// never waited on (a FIFO), and is read with a cap. With `private`, a file that its group or
/// others may read is refused: an identity others can read is no secret.
pub fn read_key_file(path: &Path, private: bool) -> io::Result<String> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_NOCTTY)
        .open(path)?;
    if private && let Some(mode) = shared_with_others(&file.metadata()?) {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("its group or others may read it {mode}"),
        ));
    }
    let bytes = crate::sys::open::read_capped(&file, MAX_KEY_FILE_BYTES)?;
    String::from_utf8(bytes)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not UTF-8 text"))
}

/// `(mode 0640); chmod 600 it` when the group or others may read a file with `meta`: a key or
/// a credentials file must be its owner's alone.
pub fn shared_with_others(meta: &std::fs::Metadata) -> Option<String> {
    (meta.mode() & 0o077 != 0).then(|| format!("(mode {:04o}); chmod 600 it", meta.mode() & 0o7777))
}

/// The recipients one archive is encrypted to, and their fingerprint.
#[derive(Clone)]
pub struct Recipients {
    keys: Vec<age::x25519::Recipient>,
    fingerprint: String,
}

impl std::fmt::Debug for Recipients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Recipients({})", self.fingerprint)
    }
}

impl Recipients {
    /// The recipients among `texts` (each checked by the settings already; one that does not
    /// parse is left out). `None` if there are none.
    pub fn of(texts: &[String]) -> Option<Recipients> {
        let mut unique: Vec<&str> = texts.iter().map(String::as_str).collect();
        unique.sort_unstable();
        unique.dedup();
        let keys: Vec<age::x25519::Recipient> = unique
            .iter()
            .filter_map(|text| age::x25519::Recipient::from_str(text).ok())
            .collect();
        if keys.is_empty() {
            return None;
        }
        Some(Recipients {
            fingerprint: fingerprint(&unique),
            keys,
        })
    }

    /// Names the set of recipients: X25519 stanzas do not name theirs, so this is how
    /// `backups --long` and `status` tell which key an archive needs.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The age writer in front of `output`; what is written to it is encrypted.
    pub fn encrypt<W: Write>(&self, output: W) -> io::Result<age::stream::StreamWriter<W>> {
        let encryptor =
            age::Encryptor::with_recipients(self.keys.iter().map(|key| key as &dyn age::Recipient))
                .map_err(io::Error::other)?;
        encryptor.wrap_output(output)
    }
}

/// The first 16 hex digits of the SHA-256 of the sorted recipients, one a line.
fn fingerprint(sorted: &[&str]) -> String {
    let mut hasher = sha2::Sha256::new();
    for recipient in sorted {
        hasher.update(recipient.as_bytes());
        hasher.update(b"\n");
    }
    let digest: [u8; 32] = hasher.finalize().into();
    hex(&digest[..8])
}

/// The identities given with `--identity` (or `BACKUPBOX_IDENTITY`), for the commands that
/// read what an encrypted archive holds.
#[derive(Default)]
pub struct Identities {
    keys: Vec<Box<dyn age::Identity>>,
}

impl std::fmt::Debug for Identities {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Identities({})", self.keys.len())
    }
}

/// An identity file that could not be used, and why.
#[derive(Debug)]
pub struct BadIdentityFile {
    pub path: PathBuf,
    pub why: String,
}

/// A command given a bad identity file fails with a line that names it.
impl From<BadIdentityFile> for crate::error::Error {
    fn from(bad: BadIdentityFile) -> crate::error::Error {
        crate::error::Error::failed(format!(
            "can't use identity file {}: {}",
            crate::log::show_bytes(std::os::unix::ffi::OsStrExt::as_bytes(bad.path.as_os_str())),
            bad.why
        ))
    }
}

impl Identities {
    /// Reads every identity in `paths` (age identity files, as `age -d -i` takes them).
    pub fn load(paths: &[PathBuf]) -> Result<Identities, BadIdentityFile> {
        let mut keys = Vec::new();
        for path in paths {
            let bad = |why: String| BadIdentityFile {
                path: path.clone(),
                why,
            };
            let text = read_key_file(path, true).map_err(|err| bad(err.to_string()))?;
            let file = age::IdentityFile::from_buffer(text.as_bytes())
                .map_err(|err| bad(err.to_string()))?;
            let found = file.into_identities().map_err(|err| bad(err.to_string()))?;
            if found.is_empty() {
                return Err(bad("holds no identity".to_owned()));
            }
            keys.extend(found);
        }
        Ok(Identities { keys })
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The plaintext of the age file read from `input`, or why not: no identity given, none
    /// that matches, or a damaged header.
    pub fn decrypt<R: BufRead>(&self, input: R) -> io::Result<age::stream::StreamReader<R>> {
        if self.keys.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "encrypted, and no --identity given",
            ));
        }
        let decryptor = age::Decryptor::new_buffered(input).map_err(decrypt_error)?;
        decryptor
            .decrypt(
                self.keys
                    .iter()
                    .map(|key| key.as_ref() as &dyn age::Identity),
            )
            .map_err(decrypt_error)
    }
}

fn decrypt_error(err: age::DecryptError) -> io::Error {
    let kind = match err {
        age::DecryptError::NoMatchingKeys => io::ErrorKind::PermissionDenied,
        _ => io::ErrorKind::InvalidData,
    };
    let text = match err {
        age::DecryptError::NoMatchingKeys => "no identity given matches its recipients".to_owned(),
        other => format!("not a sound age file ({other})"),
    };
    io::Error::new(kind, text)
}

/// Checks that `file` starts with an age header that parses, without a key: a file cut short
/// of its header, or one that is not age at all, is caught.
pub fn check_header(file: &File) -> io::Result<()> {
    let mut input = io::BufReader::new(file);
    age::Decryptor::new_buffered(&mut input).map_err(decrypt_error)?;
    // The payload starts with a 16-byte nonce: a file that ends right after the header is
    // cut.
    let mut nonce = [0u8; 16];
    input.read_exact(&mut nonce).map_err(|_| {
        io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "cut short right after its age header",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use age::secrecy::ExposeSecret;

    const RECIPIENT: &str = "age1qt2ezq9xwn4e86u9hj4vg98pl7a6tgech5ktth7w8k2zxcs23pvqq6uweg";

    #[test]
    fn recipient_files_name_the_line_that_is_not_one() {
        let text = format!("# team keys\n\n{RECIPIENT}\n  \nage1nope\n");
        assert_eq!(
            recipients_in(&text).unwrap_err(),
            "line 5: not an age X25519 recipient: \"age1nope\""
        );
        assert_eq!(
            recipients_in(&format!("{RECIPIENT}\n")).unwrap(),
            [RECIPIENT]
        );
        assert_eq!(recipients_in("# none\n").unwrap_err(), "holds no recipient");
    }

    #[test]
    fn the_fingerprint_names_the_set_not_its_order() {
        let other = age::x25519::Identity::generate().to_public().to_string();
        let one = Recipients::of(&[RECIPIENT.to_owned(), other.clone()]).unwrap();
        let two = Recipients::of(&[other.clone(), RECIPIENT.to_owned(), other]).unwrap();
        assert_eq!(one.fingerprint(), two.fingerprint());
        assert_eq!(one.fingerprint().len(), 16);
        let alone = Recipients::of(&[RECIPIENT.to_owned()]).unwrap();
        assert_ne!(alone.fingerprint(), one.fingerprint());
        assert!(Recipients::of(&["nope".to_owned()]).is_none());
    }

    #[test]
    fn what_is_encrypted_decrypts_with_the_identity_only() {
        let identity = age::x25519::Identity::generate();
        let recipients = Recipients::of(&[identity.to_public().to_string()]).unwrap();
        let mut writer = recipients.encrypt(Vec::new()).unwrap();
        writer.write_all(b"the tar stream").unwrap();
        let sealed = writer.finish().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key.txt");
        std::fs::write(&key, format!("{}\n", identity.to_string().expose_secret())).unwrap();
        std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o644))
            .unwrap();
        let refused = Identities::load(std::slice::from_ref(&key)).unwrap_err();
        assert!(refused.why.contains("mode 0644"), "{}", refused.why);
        std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
        let identities = Identities::load(&[key]).unwrap();
        let mut plain = String::new();
        identities
            .decrypt(&sealed[..])
            .unwrap()
            .read_to_string(&mut plain)
            .unwrap();
        assert_eq!(plain, "the tar stream");
        let stranger = Identities {
            keys: vec![Box::new(age::x25519::Identity::generate())],
        };
        let Err(err) = stranger.decrypt(&sealed[..]) else {
            panic!("decrypted with a stranger's key");
        };
        assert_eq!(err.to_string(), "no identity given matches its recipients");
        assert!(Identities::default().decrypt(&sealed[..]).is_err());
    }
}
