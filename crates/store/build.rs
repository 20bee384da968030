//! Rebuilds this crate when a migration is added or changed: `sqlx::migrate!`
//! embeds the files at compile time but cannot tell cargo to watch them on stable
//! Rust (sqlx's documented workaround).

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
