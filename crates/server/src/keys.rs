//! The master key file: generated on first run, readable by the owner only.

use base64::Engine as _;
use std::io::Write;
use std::path::Path;
use tweestap_domain::secret_box::MasterKey;

pub fn load_or_create(path: &Path) -> Result<MasterKey, String> {
    let b64 = base64::engine::general_purpose::STANDARD;
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let raw = b64
                .decode(text.trim())
                .map_err(|e| format!("{} is not base64: {e}", path.display()))?;
            MasterKey::from_bytes(&raw).map_err(|e| format!("{}: {e}", path.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = MasterKey::generate();
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
            let mut f = opts
                .open(path)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            writeln!(f, "{}", b64.encode(key.as_bytes()))
                .and_then(|_| f.sync_all())
                .map_err(|e| format!("{}: {e}", path.display()))?;
            tracing::info!(path = %path.display(), "generated a new secret key; back it up with the database");
            Ok(key)
        }
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn created_once_with_owner_only_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("secret.key");
        let a = super::load_or_create(&p).unwrap();
        let b = super::load_or_create(&p).unwrap();
        assert_eq!(a.as_bytes(), b.as_bytes());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
    }
}
