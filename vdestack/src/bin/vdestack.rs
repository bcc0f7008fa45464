//! The `vdestack` command line.
fn main() {}
