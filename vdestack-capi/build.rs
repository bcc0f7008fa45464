//! Gives the shared library the soname of Debian's libvdestack, so programs linked
//! against either one load the other.

fn main() {
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libvdestack.so.0");
    println!("cargo:rerun-if-changed=build.rs");
}
