//! Every URL example of Debian's vdeplug 4.0.1 man pages (libvdeplug_*.1, vde_plug.1)
//! for the plugins we implement, parsed by our plugins' own parsers. (A shell-quoted
//! example is given unquoted, as the library sees it.)

mod common;

use std::path::PathBuf;

use vdestack::vde::netnode::{Config, Kind};
use vdestack::vde::url::{split_command, split_scheme};
use vdestack::vde::vde_client::Target;
use vdestack::vde::vxvde::common::parse_config;
use vdestack::vde::{udp, OpenArgs};

use vdestack::vde::vxvde::TAGS as VX_TAGS;

fn arg_of<'a>(url: &'a str, scheme: &str) -> &'a str {
    let (s, a) = split_scheme(url);
    assert_eq!(s, scheme, "{url}");
    a
}

#[test]
fn hub_and_switch_examples() {
    let args = OpenArgs::default();
    for (url, kind, dir, mode) in [
        ("hub:///tmp/hub", Kind::Hub, "/tmp/hub", 0o600),
        ("hub:///tmp/hub[mode=0666]", Kind::Hub, "/tmp/hub", 0o666),
        ("multi:///tmp/multi", Kind::Multi, "/tmp/multi", 0o600),
        (
            "multi:///tmp/multi[mode=0666]",
            Kind::Multi,
            "/tmp/multi",
            0o666,
        ),
        (
            "bonding:///tmp/bonding",
            Kind::Bonding,
            "/tmp/bonding",
            0o600,
        ),
        (
            "bonding:///tmp/bonding[mode=0666]",
            Kind::Bonding,
            "/tmp/bonding",
            0o666,
        ),
        ("switch:///tmp/switch", Kind::Switch, "/tmp/switch", 0o600),
        (
            "switch:///tmp/switch[mode=0666/hashsize=1024]",
            Kind::Switch,
            "/tmp/switch",
            0o666,
        ),
        (
            "switch:///tmp/myswitch",
            Kind::Switch,
            "/tmp/myswitch",
            0o600,
        ),
    ] {
        let c = Config::parse(kind, arg_of(url, kind.scheme()), &args).unwrap();
        assert_eq!(c.dir, PathBuf::from(dir), "{url}");
        assert_eq!(c.mode, mode, "{url}");
    }
    let c = Config::parse(Kind::Switch, "/tmp/switch[mode=0666/hashsize=1024]", &args).unwrap();
    assert_eq!(c.hashsize, 1024);
}

#[test]
fn vde_examples() {
    let args = OpenArgs::default();
    let t = Target::parse(arg_of("vde:///tmp/myswitch", "vde"), &args).unwrap();
    assert_eq!(t.dirs, vec![PathBuf::from("/tmp/myswitch")]);
    let t = Target::parse(arg_of("/tmp/vde.ctl", "vde"), &args).unwrap();
    assert_eq!(t.dirs, vec![PathBuf::from("/tmp/vde.ctl")]);
    let t = Target::parse(arg_of("vde:///var/run/vde.ctl[privatelan]", "vde"), &args).unwrap();
    assert_eq!(t.portgroup.as_deref(), Some("privatelan"));
    assert_eq!(t.port, None);
    let t = Target::parse(arg_of("vde:///home/user/myswitch", "vde"), &args).unwrap();
    assert_eq!(t.dirs, vec![PathBuf::from("/home/user/myswitch")]);
    // The default switch: vde:///run/vde.ctl or /tmp/vde.ctl (ours: /var/run, /tmp).
    let t = Target::parse(arg_of("vde://", "vde"), &args).unwrap();
    assert_eq!(t.dirs.last(), Some(&PathBuf::from("/tmp/vde.ctl")));
}

sandbox_test! {
    // Relative switch paths are resolved against the working directory, so this one
    // runs in its own process, where changing directory disturbs no other test.
    fn vde_relative_examples() {
        let dir = common::TempDir::new("man");
        std::fs::create_dir_all(dir.path("thisswitch")).unwrap();
        std::fs::create_dir_all(dir.path("tmp/myswitch")).unwrap();
        std::env::set_current_dir(&dir.0).unwrap();
        let args = OpenArgs::default();
        let t = Target::parse(arg_of("vde://thisswitch[3]", "vde"), &args).unwrap();
        assert_eq!(t.port, Some(3));
        assert!(t.dirs[0].ends_with("thisswitch") && t.dirs[0].is_absolute());
        let t = Target::parse(arg_of("vde://tmp/myswitch[10]", "vde"), &args).unwrap();
        assert_eq!(t.port, Some(10));
        // A relative path that does not exist is an error naming it.
        let e = Target::parse("nosuchswitch[3]", &args).unwrap_err();
        assert!(e.to_string().contains("nosuchswitch"), "{e}");
    }
}

#[test]
fn vxvde_and_vxlan_examples() {
    for scheme in ["vxvde", "vxlan"] {
        let dflt = if scheme == "vxvde" { 14789 } else { 4789 };
        let url = format!("{scheme}://239.0.0.1");
        let c = parse_config(
            if scheme == "vxvde" { "vxvde" } else { "vxlan" },
            arg_of(&url, scheme),
            VX_TAGS,
            dflt,
        )
        .unwrap();
        assert_eq!(c.groups[0].to_string(), format!("239.0.0.1:{dflt}"));
        assert_eq!(c.vni, 1);
        let url = format!("{scheme}://ff15::3/port=12345/vni=42");
        let c = parse_config("vxvde", arg_of(&url, scheme), VX_TAGS, dflt).unwrap();
        assert_eq!(c.groups[0].to_string(), "[ff15::3]:12345");
        assert_eq!(c.vni, 42);
    }
    let c = parse_config(
        "vxvde",
        arg_of("vxvde://239.1.2.3", "vxvde"),
        VX_TAGS,
        14789,
    )
    .unwrap();
    assert_eq!(c.groups[0].to_string(), "239.1.2.3:14789");
}

#[test]
fn udp_examples() {
    let s = udp::parse(arg_of("udp://2000->host_b.domain_b.org:3000", "udp")).unwrap();
    assert_eq!(s.src_port, 2000);
    assert_eq!(s.dst_host, "host_b.domain_b.org");
    assert_eq!(s.dst_port, 3000);
    let s = udp::parse(arg_of("udp://3000->host_a.domain_a.org:2000", "udp")).unwrap();
    assert_eq!((s.src_port, s.dst_port), (3000, 2000));
}

#[test]
fn cmd_ptp_tap_null_examples() {
    assert_eq!(
        split_command(arg_of(
            "cmd://\"ssh remote.host.org vde_plug vxvde://\"",
            "cmd"
        ))
        .unwrap(),
        vec!["ssh remote.host.org vde_plug vxvde://"],
        "quoted as one word, as libexecs does"
    );
    assert_eq!(
        split_command("ssh remote.host.org vde_plug vxvde://").unwrap(),
        vec!["ssh", "remote.host.org", "vde_plug", "vxvde://"]
    );
    assert_eq!(arg_of("ptp:///tmp/sock", "ptp"), "/tmp/sock");
    assert_eq!(arg_of("tap://mytap", "tap"), "mytap");
    assert_eq!(arg_of("null://", "null"), "");
}
