//! The filter in front of an interface with more addresses than smoltcp's table
//! holds: smoltcp then takes packets for any address (its "any IP" mode), so
//! this drops, before smoltcp sees them, the frames that are not for the
//! stack: ARP requests and IPv6 neighbour solicitations for other addresses
//! (smoltcp would answer them, claiming other hosts' addresses), and unicast
//! IP packets to other addresses. No I/O.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The link's addresses and prefix lengths.
pub(super) type Addrs = [(IpAddr, u8)];

fn ours(addrs: &Addrs, ip: IpAddr) -> bool {
    addrs.iter().any(|(a, _)| *a == ip)
}

/// Whether `ip` is the broadcast address of one of the link's IPv4 prefixes.
fn subnet_broadcast(addrs: &Addrs, ip: Ipv4Addr) -> bool {
    addrs.iter().any(|(a, p)| match a {
        IpAddr::V4(a) if *p < 31 => {
            let host = u32::MAX >> p;
            u32::from(ip) == (u32::from(*a) | host)
        }
        _ => false,
    })
}

fn v4_at(f: &[u8], at: usize) -> Option<Ipv4Addr> {
    let b: [u8; 4] = f.get(at..at + 4)?.try_into().ok()?;
    Some(Ipv4Addr::from(b))
}

fn v6_at(f: &[u8], at: usize) -> Option<Ipv6Addr> {
    let b: [u8; 16] = f.get(at..at + 16)?.try_into().ok()?;
    Some(Ipv6Addr::from(b))
}

/// Whether an Ethernet frame arriving on a link with `addrs` is for the stack.
pub(super) fn wanted(frame: &[u8], addrs: &Addrs) -> bool {
    let Some(ty) = frame.get(12..14) else {
        return false;
    };
    match u16::from_be_bytes([ty[0], ty[1]]) {
        // ARP: a request must ask for one of ours; replies pass.
        0x0806 => match (frame.get(20..22), v4_at(frame, 38)) {
            (Some([0, 1]), Some(target)) => ours(addrs, target.into()),
            (Some(_), _) => true,
            (None, _) => false,
        },
        0x0800 => match v4_at(frame, 30) {
            Some(dst) => {
                dst.is_broadcast()
                    || dst.is_multicast()
                    || subnet_broadcast(addrs, dst)
                    || ours(addrs, dst.into())
            }
            None => false,
        },
        0x86dd => match v6_at(frame, 38) {
            Some(dst) if dst.is_multicast() => {
                // A neighbour solicitation must ask for one of ours.
                let ns = frame.get(20) == Some(&58) && frame.get(54) == Some(&135);
                !ns || v6_at(frame, 62).is_some_and(|t| ours(addrs, t.into()))
            }
            Some(dst) => ours(addrs, dst.into()),
            None => false,
        },
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs() -> Vec<(IpAddr, u8)> {
        vec![
            ("10.0.0.1".parse().unwrap(), 24),
            ("10.0.0.2".parse().unwrap(), 24),
            ("fc00::1".parse().unwrap(), 64),
        ]
    }

    fn arp_request(target: [u8; 4]) -> Vec<u8> {
        let mut f = vec![0u8; 42];
        f[12..14].copy_from_slice(&[0x08, 0x06]);
        f[20..22].copy_from_slice(&[0, 1]);
        f[38..42].copy_from_slice(&target);
        f
    }

    fn ipv4_to(dst: [u8; 4]) -> Vec<u8> {
        let mut f = vec![0u8; 34];
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        f[30..34].copy_from_slice(&dst);
        f
    }

    fn ipv6_to(dst: Ipv6Addr, ns_target: Option<Ipv6Addr>) -> Vec<u8> {
        let mut f = vec![0u8; 86];
        f[12..14].copy_from_slice(&[0x86, 0xdd]);
        f[38..54].copy_from_slice(&dst.octets());
        if let Some(t) = ns_target {
            f[20] = 58;
            f[54] = 135;
            f[62..78].copy_from_slice(&t.octets());
        }
        f
    }

    #[test]
    fn arp_only_for_our_addresses() {
        assert!(wanted(&arp_request([10, 0, 0, 2]), &addrs()));
        assert!(!wanted(&arp_request([10, 0, 0, 9]), &addrs()));
        let mut reply = arp_request([10, 0, 0, 9]);
        reply[21] = 2;
        assert!(wanted(&reply, &addrs()));
    }

    #[test]
    fn ipv4_unicast_only_to_us() {
        let a = addrs();
        assert!(wanted(&ipv4_to([10, 0, 0, 1]), &a));
        assert!(!wanted(&ipv4_to([10, 0, 0, 7]), &a));
        assert!(wanted(&ipv4_to([10, 0, 0, 255]), &a));
        assert!(wanted(&ipv4_to([255, 255, 255, 255]), &a));
        assert!(wanted(&ipv4_to([224, 0, 0, 1]), &a));
    }

    #[test]
    fn ipv6_and_neighbour_solicitations() {
        let a = addrs();
        let sn: Ipv6Addr = "ff02::1:ff00:1".parse().unwrap();
        assert!(wanted(&ipv6_to("fc00::1".parse().unwrap(), None), &a));
        assert!(!wanted(&ipv6_to("fc00::9".parse().unwrap(), None), &a));
        assert!(wanted(&ipv6_to(sn, Some("fc00::1".parse().unwrap())), &a));
        assert!(!wanted(&ipv6_to(sn, Some("fc01::1".parse().unwrap())), &a));
        assert!(wanted(&ipv6_to("ff02::1".parse().unwrap(), None), &a));
        assert!(!wanted(&[0u8; 5], &a));
    }
}
