//! Embeds the migrations: writes, for each backend, the list of its
//! `migrations/<backend>/NNNN_description.sql` files as `include_str!`s, which
//! `src/migrations.rs` turns into a sqlx `Migrator`. The `sqlx::migrate!` macro would
//! do the same, but its proc-macro crate compiles both database drivers (and rustls,
//! tokio, …) a second time for the host: minutes of CI per clean build.

use std::fmt::Write as _;
use std::path::Path;
use std::{env, fs};

fn main() {
    // A new or changed migration file must rebuild the crate.
    println!("cargo:rerun-if-changed=migrations");
    let manifest = env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let out = env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    let mut code = String::new();
    for backend in ["sqlite", "postgres"] {
        let dir = Path::new(&manifest).join("migrations").join(backend);
        let mut files: Vec<_> = fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|entry| entry.expect("readable migrations directory").path())
            .filter(|p| p.extension().is_some_and(|e| e == "sql"))
            .collect();
        files.sort();
        let _ = writeln!(
            code,
            "pub(crate) const {}: &[(i64, &str, &str)] = &[",
            backend.to_uppercase()
        );
        for path in files {
            let stem = path
                .file_stem()
                .and_then(|s| s.to_str())
                .expect("UTF-8 migration file name");
            let (version, description) = stem
                .split_once('_')
                .unwrap_or_else(|| panic!("{stem}: name migrations NNNN_description.sql"));
            let version: i64 = version
                .parse()
                .unwrap_or_else(|_| panic!("{stem}: the name must start with a number"));
            // sqlx's own convention, so recorded descriptions stay the same.
            let description = description.replace('_', " ");
            let _ = writeln!(
                code,
                "    ({version}, {description:?}, include_str!({:?})),",
                path.display().to_string()
            );
        }
        code.push_str("];\n");
    }
    fs::write(Path::new(&out).join("migrations.rs"), code).expect("writable OUT_DIR");
}
