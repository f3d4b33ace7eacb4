//! The binary is `no_std`: nothing pulls the C library in for us, so ask for it here.
//! On the static musl target this links musl's libc.a into the executable.
fn main() {
    println!("cargo:rustc-link-lib=c");
    println!("cargo:rerun-if-changed=build.rs");
}
