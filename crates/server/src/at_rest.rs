//! The keys secrets are sealed with at rest, as files in the data directory next to
//! `secret.key`:
//!
//! - `at-rest.key`: the current key. Absent until a first rotation: until then the
//!   key is derived from the master key.
//! - `at-rest.key.next`: only while `tweestap keys rotate-secret` runs (or was
//!   interrupted). Servers that see it seal new secrets under it and open with
//!   both keys.
//! - `at-rest.key.retired-<id>`: an old key, kept after a rotation for the database
//!   backups made before it; the operator deletes it when those backups expire.
//!
//! Each is written whole or not at all (a temporary file, synced, renamed, and the
//! directory synced), readable by the owner only. At every moment of a rotation the
//! files name keys that open every stored secret.

use base64::Engine as _;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tweestap_domain::secret_box::{AtRestKey, KeyId, Keyring, MasterKey, SecretBox};
use zeroize::Zeroizing;

/// How often a server reads its key files, to start sealing under the next key
/// soon after a rotation begins.
pub const POLL: std::time::Duration = std::time::Duration::from_secs(2);

const CURRENT: &str = "at-rest.key";
const NEXT: &str = "at-rest.key.next";

/// The at-rest key files of one data directory.
#[derive(Debug, Clone)]
pub struct KeyFiles {
    dir: PathBuf,
}

/// What the end of a rotation did with the old key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Retired {
    /// It was the key derived from the master key: nothing to keep apart (backups
    /// from before still open with `secret.key`), and no server uses it any more
    /// once restarted.
    Derived(KeyId),
    /// It was `at-rest.key`, now kept in this file.
    KeptIn(KeyId, PathBuf),
}

impl KeyFiles {
    pub fn new(data_dir: &Path) -> Self {
        Self {
            dir: data_dir.to_owned(),
        }
    }

    pub fn current_path(&self) -> PathBuf {
        self.dir.join(CURRENT)
    }

    pub fn next_path(&self) -> PathBuf {
        self.dir.join(NEXT)
    }

    pub fn retired_path(&self, id: KeyId) -> PathBuf {
        self.dir.join(format!("{CURRENT}.retired-{id}"))
    }

    /// The current key: `at-rest.key`, or the one derived from the master key.
    pub fn current(&self, master: &MasterKey) -> Result<AtRestKey, String> {
        Ok(read_key(&self.current_path())?.unwrap_or_else(|| AtRestKey::derived(master)))
    }

    /// The key a rotation moves to, while one is under way.
    pub fn next(&self) -> Result<Option<AtRestKey>, String> {
        read_key(&self.next_path())
    }

    /// The keys this data directory holds; the next one, if any, seals.
    pub fn keyring(&self, master: &MasterKey) -> Result<Keyring, String> {
        Ok(Keyring::new(self.current(master)?, self.next()?))
    }

    /// The first step of a rotation: `at-rest.key.next` holds the key to move to —
    /// `given`, or a new one — unless a rotation is under way already, whose key is
    /// kept. The key, and whether this call wrote it.
    pub fn prepare(
        &self,
        master: &MasterKey,
        given: Option<AtRestKey>,
    ) -> Result<(AtRestKey, bool), String> {
        if let Some(next) = self.next()? {
            if let Some(g) = given.filter(|g| g.id() != next.id()) {
                return Err(format!(
                    "a rotation to at-rest key {} is under way ({}); finish it (without --new-key-file) before rotating to {}",
                    next.id(),
                    self.next_path().display(),
                    g.id()
                ));
            }
            return Ok((next, false));
        }
        let key = given.unwrap_or_else(AtRestKey::generate);
        if key.id() == self.current(master)?.id() {
            return Err(format!(
                "at-rest key {} is the current key already",
                key.id()
            ));
        }
        write_key(&self.next_path(), &key)?;
        Ok((key, true))
    }

    /// The last step, once every secret is sealed under the next key: it becomes
    /// `at-rest.key`, and the old `at-rest.key` is kept as
    /// `at-rest.key.retired-<id>`. Safe to repeat after a crash.
    pub fn promote(&self, master: &MasterKey) -> Result<Retired, String> {
        let next = self
            .next()?
            .ok_or_else(|| format!("{NEXT} is missing: no rotation is under way"))?;
        let old = read_key(&self.current_path())?;
        let retired = match old {
            Some(old) if old.id() != next.id() => {
                let path = self.retired_path(old.id());
                write_key(&path, &old)?;
                Retired::KeptIn(old.id(), path)
            }
            Some(_) => {
                return Err(format!(
                    "{NEXT} holds the current key; delete {}",
                    self.next_path().display()
                ))
            }
            None => Retired::Derived(AtRestKey::derived(master).id()),
        };
        std::fs::rename(self.next_path(), self.current_path())
            .map_err(|e| format!("{}: {e}", self.current_path().display()))?;
        sync_dir(&self.dir)?;
        Ok(retired)
    }
}

/// The secret box of a node: its keyring from the key files (read again whenever a
/// value names a key it lacks, and every [`POLL`] by the server).
pub fn secret_box(data_dir: &Path, master: &MasterKey) -> Result<SecretBox, String> {
    let files = KeyFiles::new(data_dir);
    let keys = files.keyring(master)?;
    let master_for_reload = master.clone();
    Ok(SecretBox::with_keys(master, keys)
        .reloading(Arc::new(move || files.keyring(&master_for_reload))))
}

/// Reads a key file: base64 of 32 bytes. `None` when there is no such file.
pub fn read_key(path: &Path) -> Result<Option<AtRestKey>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => Zeroizing::new(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let raw = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map(Zeroizing::new)
        .map_err(|e| format!("{} is not base64: {e}", path.display()))?;
    AtRestKey::from_bytes(&raw)
        .map(Some)
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// Writes a key file whole or not at all: a 0600 temporary file beside it, synced,
/// renamed over `path`, and the directory synced.
pub fn write_key(path: &Path, key: &AtRestKey) -> Result<(), String> {
    let fail = |e: std::io::Error| format!("{}: {e}", path.display());
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp"));
    // A temporary file left by a crash holds nothing anyone relies on.
    match std::fs::remove_file(&tmp) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(fail(e)),
        _ => {}
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(&tmp).map_err(fail)?;
    let text = Zeroizing::new(format!(
        "{}\n",
        base64::engine::general_purpose::STANDARD.encode(key.as_bytes())
    ));
    f.write_all(text.as_bytes())
        .and_then(|_| f.sync_all())
        .map_err(fail)?;
    drop(f);
    crate::private_files::make_private(&tmp).map_err(fail)?;
    std::fs::rename(&tmp, path).map_err(fail)?;
    sync_dir(dir)
}

fn sync_dir(dir: &Path) -> Result<(), String> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| format!("{}: {e}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_rotation_step_by_step() {
        let dir = tempfile::tempdir().unwrap();
        let files = KeyFiles::new(dir.path());
        let master = MasterKey::generate();
        let derived = AtRestKey::derived(&master);
        assert_eq!(files.keyring(&master).unwrap().ids(), vec![derived.id()]);

        let (next, wrote) = files.prepare(&master, None).unwrap();
        assert!(wrote);
        assert_eq!(mode(&files.next_path()), 0o600);
        let ring = files.keyring(&master).unwrap();
        assert_eq!(ring.sealing_id(), next.id());
        assert_eq!(ring.ids(), vec![derived.id(), next.id()]);
        // Run again (after a crash): the same key.
        assert_eq!(files.prepare(&master, None).unwrap().0.id(), next.id());
        // Another key cannot start while this rotation is under way.
        assert!(files.prepare(&master, Some(AtRestKey::generate())).is_err());

        assert_eq!(
            files.promote(&master).unwrap(),
            Retired::Derived(derived.id())
        );
        assert!(!files.next_path().exists());
        assert_eq!(mode(&files.current_path()), 0o600);
        assert_eq!(files.keyring(&master).unwrap().ids(), vec![next.id()]);
        assert!(files.promote(&master).is_err(), "nothing to promote");

        // A second rotation keeps the old file as a backup.
        let given = AtRestKey::generate();
        let (again, _) = files.prepare(&master, Some(given.clone())).unwrap();
        assert_eq!(again.id(), given.id());
        let Retired::KeptIn(id, path) = files.promote(&master).unwrap() else {
            panic!("the old key file is kept")
        };
        assert_eq!(
            (id, path.clone()),
            (next.id(), files.retired_path(next.id()))
        );
        assert_eq!(mode(&path), 0o600);
        assert_eq!(read_key(&path).unwrap().unwrap().id(), next.id());
        assert_eq!(files.keyring(&master).unwrap().ids(), vec![given.id()]);
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn the_current_key_cannot_be_the_next() {
        let dir = tempfile::tempdir().unwrap();
        let files = KeyFiles::new(dir.path());
        let master = MasterKey::generate();
        let key = AtRestKey::generate();
        write_key(&files.current_path(), &key).unwrap();
        assert!(files.prepare(&master, Some(key)).is_err());
    }

    #[test]
    fn a_damaged_key_file_is_an_error_not_a_new_key() {
        let dir = tempfile::tempdir().unwrap();
        let files = KeyFiles::new(dir.path());
        std::fs::write(files.next_path(), "not base64!").unwrap();
        assert!(files.keyring(&MasterKey::generate()).is_err());
        std::fs::write(files.next_path(), "AAAA").unwrap();
        assert!(files.keyring(&MasterKey::generate()).is_err());
    }
}
