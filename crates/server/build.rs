//! Links the `tweestap` binary with packed relative relocations (RELR) on Linux
//! with glibc. A position-independent binary carries one relocation per pointer
//! in its read-only data; as classic RELA entries they were 1.5 MB that the
//! dynamic loader reads at every start and that stay resident (a fifth of the
//! idle server's memory beyond its code); packed, they take a few kilobytes.
//! Needs GNU ld 2.38 or lld 15 and glibc 2.36 at run time (Debian 12, Ubuntu
//! 22.10, RHEL 10); `TWEESTAP_LINK_RELR=0` builds a binary for older systems.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=TWEESTAP_LINK_RELR");
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    let glibc_linux = var("CARGO_CFG_TARGET_OS") == "linux" && var("CARGO_CFG_TARGET_ENV") == "gnu";
    if glibc_linux && var("TWEESTAP_LINK_RELR") != "0" {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}
