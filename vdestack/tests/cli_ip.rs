//! `vdestack ip` against the kernel in a private namespace: it configures what iproute2
//! then reads back, and its output reads like iproute2's.

mod common;

use std::process::Command;

use common::*;

/// Runs `vdestack ip ARGS`, returns (success, stdout, stderr).
fn vip(args: &str) -> (bool, String, String) {
    let out = Command::new(vdestack_bin())
        .arg("ip")
        .args(args.split_whitespace())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ok(args: &str) -> String {
    let (good, out, err) = vip(args);
    assert!(good, "vdestack ip {args}: {err}");
    out
}

fn iproute(args: &str) -> String {
    let out = Command::new("ip")
        .args(args.split_whitespace())
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

sandbox_test! {
    fn vdestack_ip_configures_and_shows_like_iproute2() {
        ok("link add vi0 type veth peer name vi1");
        ok("link add br0 type bridge");
        ok("link set vi1 up master br0");
        ok("link set dev br0 up");
        ok("link set vi0 up mtu 1400 address 02:76:64:00:00:07");
        ok("addr add 10.0.2.1/24 dev vi0");
        ok("addr add fc00:2::1/64 dev vi0");
        ok("route add default via 10.0.2.254");
        ok("route add 10.9.0.0/16 via 10.0.2.253 dev vi0");
        ok("-6 route add default via fc00:2::fe dev vi0");

        // iproute2 reads back what we set.
        let l = &ipj("link show dev vi0")[0];
        assert_eq!(l["mtu"], 1400);
        assert_eq!(l["address"], "02:76:64:00:00:07");
        assert_eq!(ipj("link show dev vi1")[0]["master"], "br0");
        let a: Vec<String> = ipj("addr show dev vi0")[0]["addr_info"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| format!("{}/{}", a["local"].as_str().unwrap(), a["prefixlen"]))
            .collect();
        assert!(a.contains(&"10.0.2.1/24".into()) && a.contains(&"fc00:2::1/64".into()), "{a:?}");
        let r = iproute("route show");
        assert!(r.contains("default via 10.0.2.254 dev vi0"), "{r}");
        assert!(r.contains("10.9.0.0/16 via 10.0.2.253 dev vi0"), "{r}");
        assert!(iproute("-6 route show").contains("default via fc00:2::fe dev vi0"));

        // Our output reads like iproute2's, line for line where the data is the same.
        let ours = ok("link show lo");
        let theirs = iproute("link show lo");
        let head = |s: &str| s.lines().next().unwrap().split(" qdisc").next().unwrap().split(" state").next().unwrap().to_string();
        assert_eq!(head(&ours), head(&theirs));
        let ours = ok("-4 addr show dev vi0");
        assert!(ours.contains("    inet 10.0.2.1/24 scope global vi0"), "{ours}");
        assert!(iproute("-4 addr show dev vi0").contains("inet 10.0.2.1/24"));
        let ours = ok("route");
        for line in ["default via 10.0.2.254 dev vi0", "10.9.0.0/16 via 10.0.2.253 dev vi0", "10.0.2.0/24 dev vi0 proto kernel scope link"] {
            assert!(ours.lines().any(|l| l == line), "missing `{line}` in:\n{ours}");
            assert!(iproute("route show").lines().any(|l| l.starts_with(line)), "iproute2 lacks `{line}`");
        }
        assert!(ok("-6 route").contains("default via fc00:2::fe dev vi0"));

        // Deleting, and the one-line configuration.
        ok("route del 10.9.0.0/16 via 10.0.2.253 dev vi0");
        ok("addr del fc00:2::1/64 dev vi0");
        assert!(!iproute("route show").contains("10.9.0.0/16"));
        ok("config iface=vi0 -all");
        assert!(!iproute("addr show dev vi0").contains("10.0.2.1"));
        ok("link del vi0");
        assert!(!iproute("link show").contains("vi0"));

        // Errors: the kernel's reason and what was asked, never a panic.
        for (args, needle) in [
            ("link set nosuch0 up", "nosuch0"),
            ("addr add 10.0.2.1/33 dev br0", "33"),
            ("route add default via 10.77.0.1", "unreachable"),
            ("link add br0 type bridge", "exists"),
            ("link show nosuch0", "does not exist"),
            ("wibble", "wibble"),
        ] {
            let (good, _, err) = vip(args);
            assert!(!good, "{args} should fail");
            assert!(err.to_lowercase().contains(needle), "{args}: {err}");
            assert!(!err.contains("panicked"), "{args}: {err}");
        }
    }
}

/// `vdestack ip -j ARGS`, parsed.
fn ours_j(args: &str) -> serde_json::Value {
    serde_json::from_str(&ok(&format!("-j {args}"))).unwrap_or_else(|e| panic!("-j {args}: {e}"))
}

/// Every object of `theirs` has one in `ours` with the same `id` keys, agreeing on
/// each of `keys` that iproute2 printed; and `ours` has no object more.
fn same_objects(
    what: &str,
    ours: &serde_json::Value,
    theirs: &serde_json::Value,
    id: &[&str],
    keys: &[&str],
) {
    let (ours, theirs) = (ours.as_array().unwrap(), theirs.as_array().unwrap());
    assert_eq!(
        ours.len(),
        theirs.len(),
        "{what}: ours {ours:?}\ntheirs {theirs:?}"
    );
    for t in theirs {
        let name: Vec<&serde_json::Value> = id.iter().map(|k| &t[k]).collect();
        let o = ours
            .iter()
            .find(|o| id.iter().all(|k| o[k] == t[k]))
            .unwrap_or_else(|| panic!("{what}: no {id:?} {name:?} in ours: {ours:?}"));
        for k in keys {
            if !t[k].is_null() {
                assert_eq!(o[k], t[k], "{what} {name:?}: key {k}");
            }
        }
    }
}

sandbox_test! {
    fn vdestack_ip_json_has_iproute2s_keys_and_values() {
        for cmd in [
            "link add vj0 type veth peer name vj1",
            "link add br1 type bridge",
            "link set vj1 master br1",
            "link set vj1 up",
            "link set br1 up",
            "link set vj0 up",
            "link set vj0 mtu 1400",
            "addr add 10.0.3.1/24 dev vj0",
            "addr add fc00:3::1/64 dev vj0 nodad",
            "route add default via 10.0.3.254",
            "route add 10.9.0.0/16 via 10.0.3.253 dev vj0",
            "route add 10.8.0.7 dev vj0",
            "route add blackhole 10.66.0.0/16",
            "-6 route add default via fc00:3::fe dev vj0",
        ] {
            let st = Command::new("ip").args(cmd.split_whitespace()).status().unwrap();
            assert!(st.success(), "ip {cmd}");
        }
        let link_keys = ["ifname", "flags", "mtu", "operstate", "link_type", "address", "broadcast", "master", "link"];
        same_objects("link", &ours_j("link show"), &ipj("link show"), &["ifindex"], &link_keys);
        let (ours, theirs) = (ours_j("addr show"), ipj("addr show"));
        same_objects("addr", &ours, &theirs, &["ifindex"], &link_keys);
        for t in theirs.as_array().unwrap() {
            let o = ours.as_array().unwrap().iter().find(|o| o["ifindex"] == t["ifindex"]).unwrap();
            let set = |v: &serde_json::Value| {
                let mut s: Vec<String> = v["addr_info"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|a| format!("{} {}/{} {}", a["family"], a["local"], a["prefixlen"], a["scope"]))
                    .collect();
                s.sort();
                s
            };
            assert_eq!(set(o), set(t), "addr_info of {}", t["ifname"]);
        }
        let vj0 = ours.as_array().unwrap().iter().find(|o| o["ifname"] == "vj0").unwrap();
        assert!(
            vj0["addr_info"].as_array().unwrap().iter().any(|a| a["local"] == "fc00:3::1" && a["prefixlen"] == 64 && a["family"] == "inet6"),
            "{vj0}"
        );
        let route_keys = ["gateway", "dev", "protocol", "scope", "metric", "type"];
        for v6 in ["", "-6 "] {
            let what = format!("{v6}route");
            same_objects(&what, &ours_j(&format!("{v6}route show")), &ipj(&format!("{v6}route show")), &["dst", "dev"], &route_keys);
        }
        let r = ours_j("route show");
        assert!(r.as_array().unwrap().iter().any(|r| r["dst"] == "default" && r["gateway"] == "10.0.3.254"), "{r}");
        assert!(r.as_array().unwrap().iter().any(|r| r["dst"] == "10.8.0.7" && r["dev"] == "vj0"), "{r}");
    }
}
