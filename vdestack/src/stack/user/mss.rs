//! Large segments toward peers that announce an ordinary MSS (no I/O).
//!
//! On a link that carries large segments (`inproc://`, see `device.rs`),
//! smoltcp sends segments of up to 64 KiB that the link cuts into frames of
//! its real MTU, as a NIC's TSO does. But smoltcp never sends more than the
//! peer's MSS, and a kernel stack announces the MSS of its tap's MTU (1460 at
//! 1500): toward kernel stacks it sent 1460-byte segments, one tap write each
//! (user to kernel moved a quarter of kernel to user). So in a SYN that comes
//! in on such a link announcing exactly the MSS of the link's MTU, the MSS is
//! raised to the large link's: smoltcp then sends large segments, and the
//! link cuts them at the link's MSS, which is what the peer announced. An MSS
//! below that (a peer clamping it) is left alone, and so is every other frame.

use super::device::LARGE_MTU;

/// Ethernet header bytes.
const ETH: usize = 14;

/// If `frame` is a TCP SYN announcing the MSS of an `mtu` link, raises that
/// MSS to a large link's (fixing the TCP checksum); whether it did.
pub(super) fn widen_syn_mss(frame: &mut [u8], mtu: usize) -> bool {
    let Some((mss_at, ordinary, large)) = syn_mss(frame, mtu) else {
        return false;
    };
    let old = u16::from_be_bytes([frame[mss_at], frame[mss_at + 1]]);
    if usize::from(old) != ordinary {
        return false;
    }
    // The checksum sums 16-bit words from the TCP header's start; the option's
    // value may straddle two of them (it follows a 1-byte NOP, often).
    let l4 = tcp_start(frame).expect("found above");
    let words = [l4 + ((mss_at - l4) & !1), l4 + ((mss_at + 1 - l4) & !1)];
    let word = |f: &[u8], i: usize| u16::from_be_bytes([f[i], f[i + 1]]);
    let before = words.map(|w| word(frame, w));
    frame[mss_at..mss_at + 2].copy_from_slice(&large.to_be_bytes());
    let csum_at = l4 + 16;
    let mut sum = word(frame, csum_at);
    for (k, w) in words.iter().enumerate() {
        if k == 1 && words[1] == words[0] {
            break;
        }
        sum = csum_replace(sum, before[k], word(frame, *w));
    }
    frame[csum_at..csum_at + 2].copy_from_slice(&sum.to_be_bytes());
    true
}

/// Where a SYN's MSS option value is, the MSS of an `mtu` link, and a large
/// link's, for this IP version.
fn syn_mss(frame: &[u8], mtu: usize) -> Option<(usize, usize, u16)> {
    let l4 = tcp_start(frame)?;
    let headers = l4 - ETH + 20;
    let flags = *frame.get(l4 + 13)?;
    if flags & 0x02 == 0 {
        return None;
    }
    let tcp_len = usize::from(frame.get(l4 + 12)? >> 4) * 4;
    let options = frame.get(l4 + 20..l4 + tcp_len)?;
    let mut i = 0;
    while i < options.len() {
        match options[i] {
            0 => return None,
            1 => i += 1,
            kind => {
                let len = usize::from(*options.get(i + 1)?);
                if len < 2 {
                    return None;
                }
                if kind == 2 && len == 4 && i + 4 <= options.len() {
                    let large = u16::try_from(LARGE_MTU - headers).ok()?;
                    return Some((l4 + 20 + i + 2, mtu.checked_sub(headers)?, large));
                }
                i += len;
            }
        }
    }
    None
}

/// Where the TCP header of an IPv4 (no options beyond its IHL) or IPv6 (no
/// extension header) packet starts, if `frame` carries TCP.
fn tcp_start(frame: &[u8]) -> Option<usize> {
    match u16::from_be_bytes([*frame.get(12)?, *frame.get(13)?]) {
        0x0800 if *frame.get(23)? == 6 => Some(ETH + usize::from(frame.get(ETH)? & 0x0f) * 4),
        0x86dd if *frame.get(20)? == 6 => Some(ETH + 40),
        _ => None,
    }
}

/// A one's complement checksum with a 16-bit word changed from `old` to
/// `new` (RFC 1624, eqn. 3).
fn csum_replace(sum: u16, old: u16, new: u16) -> u16 {
    let mut s = u32::from(!sum) + u32::from(!old) + u32::from(new);
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An IPv4 or IPv6 TCP frame with `flags` and an MSS option of `mss`
    /// (after a NOP), its TCP checksum computed.
    fn syn(v6: bool, flags: u8, mss: u16) -> Vec<u8> {
        let mut f = vec![0u8; if v6 { 54 } else { 34 }];
        if v6 {
            f[12..14].copy_from_slice(&0x86ddu16.to_be_bytes());
            f[14] = 0x60;
            f[20] = 6;
            f[22..38].copy_from_slice(&[0xfc, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        } else {
            f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
            f[14] = 0x45;
            f[23] = 6;
            f[26..30].copy_from_slice(&[10, 0, 0, 1]);
        }
        let mut tcp = vec![0u8; 28];
        tcp[12] = 7 << 4;
        tcp[13] = flags;
        tcp[20..28].copy_from_slice(&[1, 2, 4, (mss >> 8) as u8, mss as u8, 1, 1, 0]);
        f.extend_from_slice(&tcp);
        let l4 = tcp_start(&f).unwrap();
        let sum = full_sum(&f[l4..]);
        f[l4 + 16..l4 + 18].copy_from_slice(&sum.to_be_bytes());
        f
    }

    /// The checksum of `bytes` from scratch (no pseudo-header: the update
    /// must agree with it either way).
    fn full_sum(bytes: &[u8]) -> u16 {
        let mut s: u32 = bytes
            .chunks(2)
            .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
            .sum();
        while s > 0xffff {
            s = (s & 0xffff) + (s >> 16);
        }
        !(s as u16)
    }

    fn mss_of(f: &[u8]) -> u16 {
        let (at, _, _) = syn_mss(f, 1500).unwrap();
        u16::from_be_bytes([f[at], f[at + 1]])
    }

    #[test]
    fn a_syn_announcing_the_links_mss_gets_a_large_one() {
        for (v6, ordinary, large) in [(false, 1460, 65495), (true, 1440, 65475)] {
            for flags in [0x02, 0x12] {
                let mut f = syn(v6, flags, ordinary);
                assert!(widen_syn_mss(&mut f, 1500));
                assert_eq!(mss_of(&f), large);
                let l4 = tcp_start(&f).unwrap();
                let mut zeroed = f[l4..].to_vec();
                let sum = u16::from_be_bytes([zeroed[16], zeroed[17]]);
                zeroed[16..18].copy_from_slice(&[0, 0]);
                assert_eq!(sum, full_sum(&zeroed), "the checksum is updated");
            }
        }
    }

    /// An MSS option first in the options (its value on a word boundary).
    #[test]
    fn an_aligned_mss_is_raised_too() {
        let mut f = syn(false, 0x02, 1460);
        let l4 = tcp_start(&f).unwrap();
        f[l4 + 20..l4 + 28].copy_from_slice(&[2, 4, 0x05, 0xb4, 1, 1, 1, 0]);
        f[l4 + 16..l4 + 18].copy_from_slice(&[0, 0]);
        let sum = full_sum(&f[l4..]);
        f[l4 + 16..l4 + 18].copy_from_slice(&sum.to_be_bytes());
        assert!(widen_syn_mss(&mut f, 1500));
        assert_eq!(mss_of(&f), 65495);
        let stored = u16::from_be_bytes([f[l4 + 16], f[l4 + 17]]);
        f[l4 + 16..l4 + 18].copy_from_slice(&[0, 0]);
        assert_eq!(stored, full_sum(&f[l4..]));
    }

    #[test]
    fn other_frames_are_left_alone() {
        // A clamped MSS, a segment that is no SYN, another link's MTU.
        for (mut f, mtu) in [
            (syn(false, 0x02, 1400), 1500),
            (syn(false, 0x10, 1460), 1500),
            (syn(false, 0x02, 1460), 9000),
        ] {
            let before = f.clone();
            assert!(!widen_syn_mss(&mut f, mtu));
            assert_eq!(f, before);
        }
        let mut udp = syn(false, 0x02, 1460);
        udp[23] = 17;
        assert!(!widen_syn_mss(&mut udp, 1500));
        assert!(!widen_syn_mss(&mut [0u8; 20], 1500));
        let mut cut = syn(false, 0x02, 1460);
        cut.truncate(50);
        assert!(!widen_syn_mss(&mut cut, 1500));
    }
}
