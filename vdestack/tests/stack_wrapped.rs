//! Stacks on wrapping plugs (`vlan://`, `agno://`) over an in-process network: a
//! TCP echo of 1 MB crosses them, although the bare network would carry large
//! segments whole (`inproc://` offload): the wrappers must not pass that on, as
//! every frame has to be tagged or encrypted on its own. A stack on another VLAN or
//! with another key does not reach them.

mod common;

use common::stacks::*;
use common::*;
use vdestack::stack::Stack;

sandbox_test! {
    fn tcp_crosses_vlan_and_agno_wrappers_and_stays_inside() {
        if !have_tun("tcp_crosses_vlan_and_agno_wrappers_and_stays_inside") {
            return;
        }
        let dir = TempDir::new("wrapped");
        let key = dir.join_str("key");
        std::fs::write(&key, "00112233445566778899aabbccddeeff").unwrap();
        let other_key = dir.join_str("other");
        std::fs::write(&other_key, "ffeeddccbbaa99887766554433221100").unwrap();
        for (n, (mine, theirs)) in [
            ("vlan://5{inproc://wrapped-v}".to_string(), "vlan://6{inproc://wrapped-v}".to_string()),
            (
                format!("agno://{key}{{inproc://wrapped-a}}"),
                format!("agno://{other_key}{{inproc://wrapped-a}}"),
            ),
            (
                format!("vlan://5{{agno://{key}[ethtype=copy]{{inproc://wrapped-va}}}}"),
                format!("vlan://5{{agno://{other_key}[ethtype=copy]{{inproc://wrapped-va}}}}"),
            ),
        ]
        .iter()
        .enumerate()
        {
            let a = Stack::with_interfaces(&[mine.as_str()]).unwrap();
            let b = Stack::with_interfaces(&[mine.as_str()]).unwrap();
            let c = Stack::with_interfaces(&[theirs.as_str()]).unwrap();
            let net = 81 + n;
            configure(&a, "vde0", &[(&format!("10.{net}.0.1"), 24)]);
            configure(&b, "vde0", &[(&format!("10.{net}.0.2"), 24)]);
            configure(&c, "vde0", &[(&format!("10.{net}.0.3"), 24)]);
            tcp_echo(&a, &b, &format!("10.{net}.0.1:7000"), mine);
            // The outsider's pings go unanswered.
            let out = c
                .command("ping")
                .args(["-c", "2", "-i", "0.2", "-w", "2", &format!("10.{net}.0.1")])
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(
                text.contains(" 0 received"),
                "{theirs} reached {mine}:\n{text}"
            );
        }
    }
}
