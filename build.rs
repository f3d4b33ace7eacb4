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
    // The static musl binary grows by the byte, not by the page: without
    // this its data segment starts at a fixed offset within a page (RELRO
    // alignment, and the hole the unwind tables leave when `make build`
    // removes them), so a few bytes more code could add 4 KB to the file.
    // RELRO protects nothing there: musl applies it only when it loads a
    // dynamic program (the page stays writable, as /proc/PID/maps shows).
    if std::env::var("CARGO_CFG_TARGET_ENV").as_deref() == Ok("musl")
        && std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux")
    {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,norelro");
        println!("cargo:rustc-link-arg-bins=-Wl,-z,common-page-size=64");
        let script = std::path::Path::new(&std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default())
            .join("src/static.ld");
        println!("cargo:rustc-link-arg-bins=-Wl,-T,{}", script.display());
        println!("cargo:rerun-if-changed=src/static.ld");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
