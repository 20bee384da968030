//! Links the `tweestap` binary with packed relative relocations (RELR) on Linux
//! with glibc. A position-independent binary carries one relocation per pointer
//! in its read-only data; as classic RELA entries they were 1.5 MB that the
//! dynamic loader reads at every start and that stay resident (measured in
//! docs/benchmarks.md, ninth pass); packed, they take a few kilobytes.
//!
//! Such a binary needs glibc 2.36 or later where it runs, and the linker (GNU ld
//! 2.38 on x86-64, later on other architectures; lld 15) where it is built, called
//! through `cc`. So by default it is packed only when building for this machine
//! on glibc 2.36 or later; `TWEESTAP_LINK_RELR=0` never packs (a binary for older
//! systems), `TWEESTAP_LINK_RELR=1` always does (a cross build for new ones).

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=TWEESTAP_LINK_RELR");
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    let glibc_linux = var("CARGO_CFG_TARGET_OS") == "linux" && var("CARGO_CFG_TARGET_ENV") == "gnu";
    let pack = match var("TWEESTAP_LINK_RELR").as_str() {
        "0" => false,
        "1" => true,
        _ => glibc_linux && var("HOST") == var("TARGET") && host_glibc() >= Some((2, 36)),
    };
    if pack {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}

/// This machine's glibc version: `getconf GNU_LIBC_VERSION` prints "glibc 2.36".
fn host_glibc() -> Option<(u32, u32)> {
    let out = std::process::Command::new("getconf")
        .arg("GNU_LIBC_VERSION")
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let mut parts = text.trim().strip_prefix("glibc ")?.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}
