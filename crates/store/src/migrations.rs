//! The embedded migrations of each backend (listed by `build.rs`) as sqlx migrators.

use sqlx::migrate::{Migration, MigrationType, Migrator};
use std::borrow::Cow;

pub(crate) use embedded::{POSTGRES, SQLITE};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/migrations.rs"));
}

/// sqlx checks each applied migration's SHA-384 against the one recorded when it ran;
/// `Migration::new` computes it from the same text `sqlx::migrate!` embedded before, so
/// databases migrated by earlier versions keep passing that check.
pub(crate) fn migrator(files: &'static [(i64, &'static str, &'static str)]) -> Migrator {
    Migrator {
        migrations: Cow::Owned(
            files
                .iter()
                .map(|&(version, description, sql)| {
                    Migration::new(
                        version,
                        Cow::Borrowed(description),
                        MigrationType::Simple,
                        Cow::Borrowed(sql),
                        sql.starts_with("-- no-transaction"),
                    )
                })
                .collect(),
        ),
        ..Migrator::DEFAULT
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// What is embedded is what sqlx's own resolver (the code path `sqlx::migrate!`
    /// used) makes of the directory: same versions, descriptions, checksums and
    /// transaction modes, so databases migrated by earlier builds still verify.
    #[tokio::test]
    async fn embedded_migrations_match_sqlx_resolver() {
        for (dir, files) in [("sqlite", SQLITE), ("postgres", POSTGRES)] {
            let path = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("migrations")
                .join(dir);
            let resolved = Migrator::new(path.as_path()).await.unwrap();
            let embedded = migrator(files);
            assert_eq!(
                embedded.migrations.len(),
                resolved.migrations.len(),
                "{dir}"
            );
            assert!(embedded.migrations.len() >= 12, "{dir}");
            for (e, r) in embedded.iter().zip(resolved.iter()) {
                assert_eq!(e.version, r.version, "{dir}");
                assert_eq!(e.description, r.description, "{dir} {}", r.version);
                assert_eq!(e.checksum, r.checksum, "{dir} {}", r.version);
                assert_eq!(e.no_tx, r.no_tx, "{dir} {}", r.version);
                assert_eq!(e.migration_type, r.migration_type, "{dir} {}", r.version);
            }
        }
    }
}
