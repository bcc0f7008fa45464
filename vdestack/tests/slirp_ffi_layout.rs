//! Our hand-written libslirp declarations (`sys/slirp/ffi.rs`) lay out
//! `SlirpConfig` and `SlirpCb` exactly as Debian's `<slirp/libslirp.h>` does:
//! a C program compiled against the header prints every size and offset, and
//! they must equal ours.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

const HEADER: &str = "/usr/include/slirp/libslirp.h";

#[test]
fn slirp_structs_match_the_c_header() {
    const T: &str = "slirp_structs_match_the_c_header";
    if !Path::new(HEADER).exists() {
        return skip(T, &format!("needs {HEADER} (apt install libslirp-dev)"));
    }
    if !have_tool(T, "gcc") {
        return;
    }
    let ours = vdestack::diagnostics::slirp_ffi_layout();
    let mut c = String::from(
        "#include <stdio.h>\n#include <stddef.h>\n#include <slirp/libslirp.h>\nint main(void) {\n",
    );
    for (name, _) in &ours {
        match name.split_once('.') {
            None => c.push_str(&format!("printf(\"{name} %zu\\n\", sizeof({name}));\n")),
            Some((ty, field)) => c.push_str(&format!(
                "printf(\"{name} %zu\\n\", offsetof({ty}, {field}));\n"
            )),
        }
    }
    c.push_str("return 0;\n}\n");
    let dir = TempDir::new("slirp-layout");
    let src = dir.path("layout.c");
    let exe = dir.path("layout");
    std::fs::write(&src, c).unwrap();
    let out = Command::new("gcc")
        .arg("-o")
        .arg(&exe)
        .arg(&src)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "gcc: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(&exe).output().unwrap();
    let theirs: Vec<(String, usize)> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let (n, v) = l.split_once(' ').unwrap();
            (n.to_string(), v.parse().unwrap())
        })
        .collect();
    assert_eq!(ours, theirs, "ours (left) and the C header's (right)");
}

#[test]
fn libslirp_loads_and_says_its_version() {
    const T: &str = "libslirp_loads_and_says_its_version";
    match vdestack::diagnostics::slirp_version() {
        Ok(v) => assert!(v.starts_with('4'), "libslirp {v}"),
        Err(e) => {
            // Without the library, the error says what to install.
            assert!(e.to_string().contains("libslirp0"), "{e}");
            skip(T, &e.to_string());
        }
    }
}
