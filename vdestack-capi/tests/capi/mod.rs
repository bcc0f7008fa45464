//! Building the C programs of `tests/c/` twice: against Debian's libvdestack (the
//! system's `-lvdestack`) and against ours (`libvdestack_capi.so`, reached through a
//! `libvdestack.so`/`libvdestack.so.0` symlink pair and `LD_LIBRARY_PATH`), so the
//! same program shows what each library does.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{have_tool, skip, TempDir};

/// Which libvdestack a program is linked against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lib {
    /// Debian's libvdestack (`/usr/lib/.../libvdestack.so.0`, `/usr/include/vdestack.h`).
    Debian,
    /// Ours: vdestack-capi's `libvdestack_capi.so` (soname `libvdestack.so.0`).
    Ours,
}

impl Lib {
    pub fn name(self) -> &'static str {
        match self {
            Lib::Debian => "debian",
            Lib::Ours => "ours",
        }
    }
}

/// The folder of our C sources.
pub fn c_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/c")
}

/// Our `libvdestack_capi.so`: `VDESTACK_CAPI_LIB` if set, else next to the test
/// binary's folder (`target/<profile>/deps/..`, where cargo builds it before the
/// tests), else next to the test binary itself (a copied binary with the library
/// copied beside it, as for the unprivileged rerun).
pub fn our_library() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("VDESTACK_CAPI_LIB") {
        return Some(PathBuf::from(p)).filter(|p| p.is_file());
    }
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?;
    [
        dir.parent().map(|d| d.join("libvdestack_capi.so")),
        Some(dir.join("libvdestack_capi.so")),
    ]
    .into_iter()
    .flatten()
    .find(|p| p.is_file())
}

/// The newest modification time of the files under `dir` (recursively).
fn newest_under(dir: &Path) -> Option<std::time::SystemTime> {
    let mut newest = None;
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        let t = if path.is_dir() {
            newest_under(&path)
        } else {
            entry.metadata().ok()?.modified().ok()
        };
        newest = newest.max(t);
    }
    newest
}

/// Fails if `so` is older than the Rust sources it is built from: `cargo test` does
/// not rebuild a cdylib-only crate (its integration tests do not link it), so after
/// an edit only `cargo build` (as `scripts/test` runs first) refreshes it.
fn assert_fresh(so: &Path) {
    let built = std::fs::metadata(so).and_then(|m| m.modified()).ok();
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    for src in [manifest.join("src"), manifest.join("../vdestack/src")] {
        if let (Some(b), Some(s)) = (built, newest_under(&src)) {
            assert!(
                b >= s,
                "{} is older than {}: run `cargo build -p vdestack-capi` first",
                so.display(),
                src.display()
            );
        }
    }
}

/// Whether gcc, Debian's libvdestack-dev and nlinline-dev are here; if not, prints
/// the skip message.
pub fn have_c_toolchain(test: &str) -> bool {
    if !have_tool(test, "gcc") {
        return false;
    }
    for (header, package) in [
        ("/usr/include/vdestack.h", "libvdestack-dev"),
        ("/usr/include/nlinline+.h", "nlinline-dev"),
    ] {
        if !Path::new(header).exists() {
            skip(
                test,
                &format!("{header} is missing (apt install {package}, or run .ci/run)"),
            );
            return false;
        }
    }
    true
}

/// C programs built against one library, in a temporary folder.
pub struct Built {
    pub lib: Lib,
    dir: TempDir,
}

impl Built {
    /// Builds `programs` (names of `tests/c/NAME.c`) against `lib`. `None` (after a
    /// skip message) if our library is not built.
    pub fn new(test: &str, lib: Lib, programs: &[&str]) -> Option<Built> {
        let dir = TempDir::new(&format!("capi-{}", lib.name()));
        let mut flags: Vec<String> = Vec::new();
        if lib == Lib::Ours {
            let Some(so) = our_library() else {
                skip(
                    test,
                    "our libvdestack_capi.so is not built next to the tests \
                     (cargo build -p vdestack-capi, or set VDESTACK_CAPI_LIB)",
                );
                return None;
            };
            assert_fresh(&so);
            for link in ["libvdestack.so", "libvdestack.so.0"] {
                std::os::unix::fs::symlink(&so, dir.path(link)).unwrap();
            }
            let include = Path::new(env!("CARGO_MANIFEST_DIR")).join("include");
            flags.push(format!("-I{}", include.display()));
            flags.push(format!("-L{}", dir.0.display()));
        }
        for prog in programs {
            let out = Command::new("gcc")
                .args(["-Wall", "-o"])
                .arg(dir.path(prog))
                .arg(c_dir().join(format!("{prog}.c")))
                .args(&flags)
                .arg("-lvdestack")
                .output()
                .expect("running gcc");
            assert!(
                out.status.success(),
                "gcc {prog}.c against {} failed:\n{}",
                lib.name(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Some(Built { lib, dir })
    }

    /// A command running `program`, loading this build's library.
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new(self.dir.path(program));
        if self.lib == Lib::Ours {
            c.env("LD_LIBRARY_PATH", &self.dir.0);
        }
        c
    }

    /// The program's path.
    pub fn path(&self, program: &str) -> PathBuf {
        self.dir.path(program)
    }

    /// The folder of the build (`LD_LIBRARY_PATH` for ours).
    pub fn dir(&self) -> &Path {
        &self.dir.0
    }

    /// Checks that `program` loads the library it was built for (ldd's answer).
    pub fn assert_loads_its_library(&self, program: &str) {
        let mut c = Command::new("ldd");
        c.arg(self.path(program));
        if self.lib == Lib::Ours {
            c.env("LD_LIBRARY_PATH", &self.dir.0);
        }
        let Ok(out) = c.output() else { return };
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text
            .lines()
            .find(|l| l.contains("libvdestack.so.0"))
            .unwrap_or("");
        let ours = line.contains(&*self.dir.0.to_string_lossy());
        assert_eq!(
            ours,
            self.lib == Lib::Ours,
            "{program} ({}) loads: {line}",
            self.lib.name()
        );
    }
}
