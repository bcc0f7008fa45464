//! `nl::config::configure` against the kernel, in a private namespace: the issue's
//! example line, undo with `-tag`, errors that name what was wrong, and nothing left
//! half-applied when a step fails.

mod common;

use common::*;
use serde_json::Value;
use vdestack::error::errno_of;
use vdestack::nl::config::{configure, Done};
use vdestack::nl::NlClient;

fn addrs(dev: &str) -> Vec<String> {
    let j = ipj(&format!("addr show dev {dev}"));
    j[0]["addr_info"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["scope"] == "global")
        .map(|a| format!("{}/{}", a["local"].as_str().unwrap(), a["prefixlen"]))
        .collect()
}

fn default_routes() -> Vec<String> {
    let mut v: Vec<String> = Vec::new();
    for fam in ["-4", "-6"] {
        let j: Value = ipj(&format!("{fam} route show default"));
        for r in j.as_array().unwrap() {
            v.push(format!(
                "{} dev {}",
                r["gateway"].as_str().unwrap_or("-"),
                r["dev"].as_str().unwrap_or("-")
            ));
        }
    }
    v
}

fn is_up(dev: &str) -> bool {
    ipj(&format!("link show dev {dev}"))[0]["flags"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f == "UP")
}

sandbox_test! {
    fn configure_applies_undoes_and_rolls_back() {
        ip("link add vc0 type veth peer name vc1");
        ip("link set vc1 up");
        let nl = NlClient::new().unwrap();

        let done = configure(
            &nl,
            "iface=vc0,eth,ip=10.0.0.1/24,ip=fc00::1/64,gw=10.0.0.254,mac=02:76:64:00:00:01",
        )
        .unwrap();
        assert_eq!(done, Done(Done::STATIC | Done::ETH));
        assert!(is_up("vc0"));
        assert_eq!(ipj("link show dev vc0")[0]["address"], "02:76:64:00:00:01");
        let a = addrs("vc0");
        assert!(a.contains(&"10.0.0.1/24".to_string()) && a.contains(&"fc00::1/64".to_string()), "{a:?}");
        assert_eq!(default_routes(), vec!["10.0.0.254 dev vc0".to_string()]);

        // Applying it again is no error (already there).
        configure(&nl, "iface=vc0,eth,ip=10.0.0.1/24,gw=10.0.0.254").unwrap();

        // Undo piece by piece.
        configure(&nl, "iface=vc0,-gw=10.0.0.254").unwrap();
        assert!(default_routes().is_empty());
        configure(&nl, "iface=vc0,-ip=fc00::1/64").unwrap();
        assert_eq!(addrs("vc0"), vec!["10.0.0.1/24".to_string()]);
        configure(&nl, "iface=vc0,gw=10.0.0.254").unwrap();
        configure(&nl, "iface=vc0,-all").unwrap();
        assert!(addrs("vc0").is_empty() && default_routes().is_empty() && !is_up("vc0"));

        // A failing step puts back what the earlier ones did: the gateway is not on any
        // of vc0's networks, so the route fails; the address and the link come back down.
        let e = configure(&nl, "iface=vc0,eth,ip=10.0.1.1/24,gw=10.99.0.1").unwrap_err();
        assert_eq!(errno_of(&e), libc::ENETUNREACH, "{e}");
        assert!(e.to_string().contains("10.99.0.1"), "{e}");
        assert!(addrs("vc0").is_empty(), "half-applied: {:?}", addrs("vc0"));
        assert!(!is_up("vc0"), "half-applied: link left up");

        // Errors that name what was wrong, before anything is sent.
        let e = configure(&nl, "iface=nosuch0,eth").unwrap_err();
        assert_eq!(errno_of(&e), libc::ENODEV, "{e}");
        let e = configure(&nl, "iface=vc0,eth,colour=blue").unwrap_err();
        assert!(e.to_string().contains("colour"), "{e}");
        assert!(!is_up("vc0"), "an unknown tag applied nothing");
        let e = configure(&nl, "iface=vc0,ip=10.0.0.1/40").unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
        let e = configure(&nl, "iface=vc0,dhcp6").unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::Unsupported);
        // DHCP on a link that is down fails at once, saying so.
        let e = configure(&nl, "iface=vc0,dhcp").unwrap_err();
        assert!(e.to_string().contains("dhcp on vc0"), "{e}");
    }
}
