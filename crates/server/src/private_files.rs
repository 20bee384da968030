//! Files only this user may read: the data directory (0700) and what is written in
//! it — the database, the mail and SMS outboxes (which hold reset links and codes) —
//! as 0600, whatever the umask.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Creates `dir` (and its parents) and makes it 0700.
pub fn private_dir(dir: &Path) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

/// Makes an existing file 0600 (nothing when it does not exist).
pub fn make_private(file: &Path) -> io::Result<()> {
    match std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600)) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        r => r,
    }
}

/// Writes `bytes` to `path` as a new 0600 file (replacing one that was there).
pub async fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use tokio::io::AsyncWriteExt;
    let mut f = tokio::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .await?;
    f.write_all(bytes).await?;
    f.flush().await?;
    // `mode` only applies to a file it creates.
    tokio::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn private_whatever_the_umask() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path().join("data").join("outbox");
        private_dir(&d).expect("dir");
        let f = d.join("a.eml");
        std::fs::write(&f, "open").expect("write");
        write_private(&f, b"secret").await.expect("write");
        let mode = |p: &Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
        assert_eq!((mode(&d), mode(&f)), (0o700, 0o600));
        assert_eq!(std::fs::read_to_string(&f).expect("read"), "secret");
    }
}
