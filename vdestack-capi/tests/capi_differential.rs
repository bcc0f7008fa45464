//! One C probe (`tests/c/probe.c`), built against Debian's libvdestack and against
//! ours, prints `key=value` observations of the whole C ABI: errors and errnos,
//! `vde_stackcmd` statuses, nlinline+ over `vde_msocket`, the default stack (plain
//! `socket()` lands in the stack, and back in the host after `vde_default_stack(NULL)`
//! or deleting the default stack), sockets in forked children, and the fd table
//! (hidden fds, close-on-exec, what `vde_delstack` leaves behind). Both outputs must
//! agree, except where ours differs from upstream on purpose; those keys are checked
//! on each side against what each library is known to do.
//!
//! Ours runs with `VDESTACK_HELPER_LINGER_MS=0`: its namespace helper then ends
//! with the last stack, as Debian's helpers do, so "what `vde_delstack` leaves" is
//! what it leaves, not the lingering helper's fds (`capi_valgrind` and
//! `capi_zombies` check that nothing is left after the default linger).

#[path = "../../vdestack/tests/common/mod.rs"]
mod common;

mod capi;

use std::collections::BTreeMap;

use capi::{have_c_toolchain, Built, Lib};
use common::*;

type Observations = BTreeMap<String, String>;

fn probe(built: &Built, vnl: &str) -> Observations {
    built.assert_loads_its_library("probe");
    let mut cmd = built.command("probe");
    cmd.arg(vnl)
        .env("VDESTACK_HELPER_LINGER_MS", "0")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped());
    let mut p = Proc::spawn(cmd);
    let status = p
        .wait_exit(std::time::Duration::from_secs(60))
        .unwrap_or_else(|| panic!("probe ({}) on {vnl} hangs", built.lib.name()));
    let mut text = String::new();
    std::io::Read::read_to_string(p.child.stdout.as_mut().unwrap(), &mut text).unwrap();
    eprintln!("--- probe {vnl} ({}):\n{text}", built.lib.name());
    assert!(
        status.success(),
        "probe ({}) on {vnl}: {status}\n{text}",
        built.lib.name()
    );
    let obs: Observations = text
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(obs.get("end").map(String::as_str), Some("ok"), "{text}");
    obs
}

/// What a key must show on one side.
#[derive(Clone, Copy)]
enum Want {
    /// Any value (printed, not compared).
    Any,
    /// This value.
    Is(&'static str),
    /// No such line.
    Absent,
}
use Want::*;

/// Keys where ours differs from upstream on purpose, with (Debian's, ours)
/// expected values.
fn on_purpose(vnl_fds_left: &'static str) -> Vec<(&'static str, Want, Want)> {
    vec![
        // Which fds a stack holds is an implementation detail (upstream: the helper's
        // whole fd table is the application's; ours: a shared helper's pair, pidfd,
        // namespaces, the tap and the plug's own).
        ("fds_novnl_hidden", Any, Any),
        ("fds_novnl_hidden_kinds", Any, Any),
        ("fds_vnl_hidden", Any, Any),
        ("fds_vnl_hidden_kinds", Any, Any),
        // Upstream leaks the tap and the plug's fds on delstack; ours closes all.
        ("fds_vnl_left_after_delstack", Is(vnl_fds_left), Is("0")),
        // Upstream truncates an interface name to 15 bytes; ours refuses it.
        ("addstack_long_ifname", Is("ok"), Is("EINVAL")),
        ("addstack_long_ifname_truncated", Is("2"), Absent),
        // Upstream's helper is the application's child (its wait() can reap it);
        // ours is not.
        ("children_with_stack", Is("1"), Is("0")),
        ("waitpid_any", Is("child_running"), Is("ECHILD")),
        // Upstream leaves a "=command" coprocess running after delstack; ours ends it.
        ("coprocess_children_after_delstack", Is("1"), Is("0")),
        // Upstream reads a status from a signal with WEXITSTATUS (0); ours 128+9.
        ("stackcmd_killed", Is("0"), Is("137")),
        // Upstream's helper shares the parent's fd table, not the child's: the fd
        // number it returns is not open in a forked child. Ours works there.
        ("child_makes_socket", Is("EBADF"), Is("found")),
    ]
}

/// What both must show (upstream's documented behaviour, §1 of upstream.md).
const BOTH: &[(&str, &str)] = &[
    ("children_before", "0"),
    ("children_after_delstack", "0"),
    ("fds_novnl_hidden_inheritable", "0"),
    ("fds_vnl_hidden_inheritable", "0"),
    ("fds_novnl_left_after_delstack", "0"),
    ("addstack_bad_url", "EPROTONOSUPPORT"),
    ("addstack_ifname", "ok"),
    ("addstack_ifname_index", "2"),
    ("addstack_coprocess", "ok"),
    ("addstack_coprocess_vde0", "2"),
    ("addstack", "ok"),
    ("msocket_bad_domain", "-1/EAFNOSUPPORT"),
    ("msocket_vde0", "found"),
    ("msocket_lo", "down"),
    ("stackcmd_true", "0"),
    ("stackcmd_false_then_true", "1"),
    ("stackcmd_relative", "2"),
    ("stackcmd_missing", "2"),
    ("stackcmd_exit3", "3"),
    ("stackcmd_empty", "0"),
    ("nl_lo", "1"),
    ("nl_vde0", "2"),
    ("nl_lo_up", "0"),
    ("msocket_lo_after_nl", "up"),
    ("default_socket_vde0", "found"),
    ("default_socket6_vde0", "found"),
    ("host_socket_vde0", "ENODEV"),
    ("child_uses_parent_socket", "found"),
    ("msocket_after_children", "found"),
    ("socket_after_delstack_of_default", "ENODEV"),
];

fn compare(vnl: &str, vnl_fds_left: &'static str, debian: &Built, ours: &Built) {
    let mut d = probe(debian, vnl);
    let mut o = probe(ours, vnl);
    let mut problems = Vec::new();
    for (key, want_d, want_o) in on_purpose(vnl_fds_left) {
        let (got_d, got_o) = (d.remove(key), o.remove(key));
        for (side, want, got) in [("debian", want_d, got_d), ("ours", want_o, got_o)] {
            match (want, got) {
                (Absent, None) => {}
                (Absent, Some(g)) => problems.push(format!("{side}: {key}={g}, expected none")),
                (_, None) => problems.push(format!("{side}: {key} missing")),
                (Is(w), Some(g)) if w != g => {
                    problems.push(format!("{side}: {key}={g}, expected {w}"))
                }
                _ => {}
            }
        }
    }
    for (key, want) in BOTH {
        for (side, obs) in [("debian", &d), ("ours", &o)] {
            if obs.get(*key).map(String::as_str) != Some(want) {
                problems.push(format!(
                    "{side}: {key}={:?}, expected {want}",
                    obs.get(*key)
                ));
            }
        }
    }
    let keys: std::collections::BTreeSet<&String> = d.keys().chain(o.keys()).collect();
    for key in keys {
        if d.get(key) != o.get(key) {
            problems.push(format!(
                "{key}: debian {:?}, ours {:?}",
                d.get(key),
                o.get(key)
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "probe on {vnl}:\n{}",
        problems.join("\n")
    );
}

sandbox_test! {
    fn probe_agrees_with_debian_libvdestack() {
        const T: &str = "probe_agrees_with_debian_libvdestack";
        if !have_c_toolchain(T) || !have_tun(T) {
            return;
        }
        let Some(debian) = Built::new(T, Lib::Debian, &["probe"]) else { return };
        let Some(ours) = Built::new(T, Lib::Ours, &["probe"]) else { return };
        // Upstream's delstack leaves the tap and the plug's fds: null:// has one
        // (an eventfd), vxvde:// three (its sockets and an epoll).
        compare("null://", "2", &debian, &ours);
        compare("vxvde://239.79.1.1/port=14810", "4", &debian, &ours);
    }
}
