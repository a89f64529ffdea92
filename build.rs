//! Keys this crate's build by the checkout it is built in.
//!
//! The Cargo target directory is shared by every checkout (`~/.cache/supportgate/target`), and
//! Cargo's fingerprint of a path package does not include where the package lives: a checkout
//! whose sources are older than binaries built in another clone would reuse those binaries, and
//! with them that clone's code and paths. `.cargo/config.toml` sets `SUPPORTGATE_CHECKOUT` to
//! this checkout; when it changes, this script runs again, and Cargo rebuilds this package (and
//! only this package: dependencies never read the variable). The tests compare the checkout the
//! binary was built in with the one they run in, so a stale binary fails loudly.
fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed=SUPPORTGATE_CHECKOUT");
    // Cargo always sets it for build scripts; an empty value only disables the tests' check.
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
    println!("cargo::rustc-env=SUPPORTGATE_BUILT_IN={dir}");
}
