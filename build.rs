//! The binary is `no_std`: nothing pulls the C library in for us, so ask for it here.
//! On the static musl target this links musl's libc.a into the executable.
fn main() {
    println!("cargo:rustc-link-lib=c");
    // One read-only+executable segment instead of separate ones for headers,
    // code and constants: each separate segment is padded to a page, which
    // cost a fifth of the binary's size (and a mapping per exec). The price
    // is that constant data is mapped executable, as it was everywhere
    // before binutils 2.31.
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,noseparate-code");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
