//! Embeds the migrations: writes, for each backend, the list of its
//! `migrations/<backend>/NNNN_description.sql` files as `include_str!`s, which
//! `src/migrations.rs` turns into a sqlx `Migrator`. The `sqlx::migrate!` macro would
//! do the same, but its proc-macro crate compiles both database drivers (and rustls,
//! tokio, …) a second time for the host: minutes of CI per clean build.

use std::error::Error;
use std::fmt::Write as _;
use std::path::Path;
use std::{env, fs};

fn main() -> Result<(), Box<dyn Error>> {
    // A new or changed migration file must rebuild the crate.
    println!("cargo:rerun-if-changed=migrations");
    let manifest = env::var("CARGO_MANIFEST_DIR")?;
    let mut code = String::new();
    for backend in ["sqlite", "postgres"] {
        let dir = Path::new(&manifest).join("migrations").join(backend);
        let mut files = Vec::new();
        for entry in fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "sql") {
                files.push(path);
            }
        }
        files.sort();
        writeln!(
            code,
            "pub(crate) const {}: &[(i64, &str, &str)] = &[",
            backend.to_uppercase()
        )?;
        for path in files {
            let name = path.display().to_string();
            let stem = path
                .file_stem()
                .and_then(|s| s.to_str())
                .ok_or_else(|| format!("{name}: not a UTF-8 name"))?;
            let (version, description) = stem
                .split_once('_')
                .ok_or_else(|| format!("{name}: name migrations NNNN_description.sql"))?;
            let version: i64 = version
                .parse()
                .map_err(|_| format!("{name}: the name must start with a number"))?;
            // sqlx's own convention, so recorded descriptions stay the same.
            let description = description.replace('_', " ");
            writeln!(
                code,
                "    ({version}, {description:?}, include_str!({name:?})),"
            )?;
        }
        code.push_str("];\n");
    }
    fs::write(Path::new(&env::var("OUT_DIR")?).join("migrations.rs"), code)?;
    Ok(())
}
