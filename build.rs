//! The binary is `no_std`: nothing pulls the C library in for us, so ask for it here.
//! On the static musl targets this links musl's libc.a into the executable.
//!
//! The size tricks below are linker arguments, and linkers take them in two
//! flavours: a C compiler driver (`cc`, the default for x86_64 musl) wants
//! `-Wl,-z,norelro`, ld.lld (`rust-lld`, what .cargo/config.toml sets for the
//! other musl targets, which have no C cross compiler here) wants `-z norelro`.
//! Cargo tells build scripts the configured linker (`RUSTC_LINKER`): a name
//! ending in `ld` (rust-lld, ld.lld, ld) is called directly.
fn main() {
    println!("cargo:rustc-link-lib=c");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=RUSTC_LINKER");
    let env = |name: &str| std::env::var(name).unwrap_or_default();
    if env("CARGO_CFG_TARGET_OS") != "linux" {
        return;
    }
    let linker = env("RUSTC_LINKER");
    let direct =
        std::path::Path::new(&linker).file_name().is_some_and(|name| name.to_string_lossy().ends_with("ld"));
    let link_arg = |words: &[&str]| {
        if direct {
            for word in words {
                println!("cargo:rustc-link-arg-bins={word}");
            }
        } else {
            println!("cargo:rustc-link-arg-bins=-Wl,{}", words.join(","));
        }
    };
    // One read-only+executable segment instead of separate ones for headers,
    // code and constants: each separate segment is padded to a page, which
    // cost a fifth of the binary's size (and a mapping per exec). The price
    // is that constant data is mapped executable, as it was everywhere
    // before binutils 2.31.
    link_arg(&["-z", "noseparate-code"]);
    if direct {
        // ld.lld keeps read-only data apart from code even so.
        link_arg(&["--no-rosegment"]);
    }
    // The static musl binary grows by the byte, not by the page: without
    // this its data segment starts at a fixed offset within a page (RELRO
    // alignment, and the hole the unwind tables leave when `make build`
    // removes them), so a few bytes more code could add 4 KB to the file.
    // RELRO protects nothing there: musl applies it only when it loads a
    // dynamic program (the page stays writable, as /proc/PID/maps shows).
    if env("CARGO_CFG_TARGET_ENV") == "musl" {
        link_arg(&["-z", "norelro"]);
        link_arg(&["-z", "common-page-size=64"]);
        let script = std::path::Path::new(&env("CARGO_MANIFEST_DIR")).join("src/static.ld");
        link_arg(&["-T", &script.display().to_string()]);
        println!("cargo:rerun-if-changed=src/static.ld");
    }
}
