//! Hand-built frames cut and completed; every checksum checked with a naive
//! implementation of its own.

use super::*;

/// RFC 1071 the slow way: 16-bit words, carries folded at every step.
fn naive_sum(parts: &[&[u8]]) -> u16 {
    let mut bytes = Vec::new();
    for p in parts {
        bytes.extend_from_slice(p);
    }
    if bytes.len() % 2 == 1 {
        bytes.push(0);
    }
    let mut s: u32 = 0;
    for w in bytes.chunks(2) {
        s += u16::from_be_bytes([w[0], w[1]]) as u32;
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

fn mac_header(ty: u16) -> Vec<u8> {
    let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1];
    f.extend_from_slice(&ty.to_be_bytes());
    f
}

fn tcp_header(seq: u32, flags: u8) -> Vec<u8> {
    let mut t = vec![0u8; 20];
    t[0..2].copy_from_slice(&40000u16.to_be_bytes());
    t[2..4].copy_from_slice(&80u16.to_be_bytes());
    t[4..8].copy_from_slice(&seq.to_be_bytes());
    t[8..12].copy_from_slice(&7u32.to_be_bytes());
    t[12] = 5 << 4;
    t[13] = flags;
    t[14..16].copy_from_slice(&0xffffu16.to_be_bytes());
    t
}

fn payload(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 + 3) as u8).collect()
}

/// An IPv4 TCP large segment as a tap with TSO hands it out: the TCP checksum field
/// holds the pseudo-header sum only, the IP header checksum is whatever.
fn tcp4_gso(data: &[u8], flags: u8, mss: u16) -> (VnetHdr, Vec<u8>) {
    let mut f = mac_header(0x0800);
    let total = 20 + 20 + data.len();
    let mut ip = vec![
        0x45, 0, 0, 0, 0x12, 0x34, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 2, 10, 0, 0, 1,
    ];
    ip[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(&tcp_header(0xffff_f000, flags));
    f.extend_from_slice(data);
    let hdr = VnetHdr {
        flags: F_NEEDS_CSUM,
        gso_type: GSO_TCPV4,
        hdr_len: 54,
        gso_size: mss,
        csum_start: 34,
        csum_offset: 16,
    };
    (hdr, f)
}

fn tcp6_gso(data: &[u8], flags: u8, mss: u16) -> (VnetHdr, Vec<u8>) {
    let mut f = mac_header(0x86dd);
    let mut ip = vec![0x60, 0, 0, 0, 0, 0, 6, 64];
    ip[4..6].copy_from_slice(&((20 + data.len()) as u16).to_be_bytes());
    ip.extend_from_slice(&[0xfc, 0, 0, 0x31, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
    ip.extend_from_slice(&[0xfc, 0, 0, 0x31, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    f.extend_from_slice(&ip);
    f.extend_from_slice(&tcp_header(1000, flags));
    f.extend_from_slice(data);
    let hdr = VnetHdr {
        flags: F_NEEDS_CSUM,
        gso_type: GSO_TCPV6,
        hdr_len: 74,
        gso_size: mss,
        csum_start: 54,
        csum_offset: 16,
    };
    (hdr, f)
}

/// Checks one IPv4 or IPv6 TCP frame's lengths and checksums; returns (seq, flags,
/// payload, ip id).
fn check_tcp(seg: &[u8]) -> (u32, u8, Vec<u8>, u16) {
    let ty = u16::from_be_bytes([seg[12], seg[13]]);
    let (l4, pseudo, id) = if ty == 0x0800 {
        let ip = &seg[14..34];
        assert_eq!(naive_sum(&[ip]), 0xffff, "IPv4 header checksum");
        assert_eq!(
            u16::from_be_bytes([ip[2], ip[3]]) as usize,
            seg.len() - 14,
            "IPv4 total length"
        );
        let tcp_len = (seg.len() - 34) as u16;
        let mut p = ip[12..20].to_vec();
        p.extend_from_slice(&[0, 6]);
        p.extend_from_slice(&tcp_len.to_be_bytes());
        (34, p, u16::from_be_bytes([ip[4], ip[5]]))
    } else {
        let ip = &seg[14..54];
        assert_eq!(
            u16::from_be_bytes([ip[4], ip[5]]) as usize,
            seg.len() - 54,
            "IPv6 payload length"
        );
        let mut p = ip[8..40].to_vec();
        p.extend_from_slice(&((seg.len() - 54) as u32).to_be_bytes());
        p.extend_from_slice(&[0, 0, 0, 6]);
        (54, p, 0)
    };
    assert_eq!(naive_sum(&[&pseudo, &seg[l4..]]), 0xffff, "TCP checksum");
    let tcp = &seg[l4..];
    let seq = u32::from_be_bytes([tcp[4], tcp[5], tcp[6], tcp[7]]);
    (seq, tcp[13], tcp[20..].to_vec(), id)
}

fn cut(hdr: &VnetHdr, frame: &[u8]) -> Vec<Vec<u8>> {
    let mut scratch = vec![0u8; 9234];
    let mut out = Vec::new();
    let n = to_plain(hdr, frame, &mut scratch, |s| out.push(s.to_vec())).unwrap();
    assert_eq!(n, out.len());
    out
}

#[test]
fn header_round_trip() {
    let h = VnetHdr {
        flags: 1,
        gso_type: 4,
        hdr_len: 66,
        gso_size: 1448,
        csum_start: 54,
        csum_offset: 16,
    };
    assert_eq!(VnetHdr::parse(&h.to_bytes()), Some(h));
    assert_eq!(VnetHdr::parse(&[0; 9]), None);
    assert!(VnetHdr::PLAIN.is_plain());
    assert!(!h.is_plain());
    let ecn_only = VnetHdr {
        gso_type: GSO_ECN,
        ..VnetHdr::PLAIN
    };
    assert!(ecn_only.is_plain());
}

#[test]
fn tcp4_cut_at_gso_size() {
    let data = payload(3000);
    // FIN|PSH|ACK|CWR on the large segment.
    let (hdr, frame) = tcp4_gso(&data, 0x80 | 0x10 | 0x08 | 0x01, 1000);
    let segs = cut(&hdr, &frame);
    assert_eq!(segs.len(), 3);
    let mut joined = Vec::new();
    for (i, s) in segs.iter().enumerate() {
        assert_eq!(s.len(), 54 + 1000);
        let (seq, flags, p, id) = check_tcp(s);
        assert_eq!(
            seq,
            0xffff_f000u32.wrapping_add(i as u32 * 1000),
            "seq wraps"
        );
        assert_eq!(id, 0x1234 + i as u16);
        assert_eq!(flags & 0x10, 0x10, "ACK on all");
        assert_eq!(flags & 0x80 != 0, i == 0, "CWR on the first only");
        assert_eq!(flags & 0x09 != 0, i == 2, "FIN/PSH on the last only");
        assert_eq!(flags & 0x09, if i == 2 { 0x09 } else { 0 });
        joined.extend(p);
    }
    assert_eq!(joined, data);
}

#[test]
fn tcp4_uneven_tail_and_single_segment() {
    let data = payload(2501);
    let (hdr, frame) = tcp4_gso(&data, 0x18, 1448);
    let segs = cut(&hdr, &frame);
    assert_eq!(segs.len(), 2);
    assert_eq!(segs[1].len(), 54 + 2501 - 1448);
    let mut joined = Vec::new();
    for s in &segs {
        joined.extend(check_tcp(s).2);
    }
    assert_eq!(joined, data);
    // A large segment no bigger than one MSS still comes out with good checksums.
    let (hdr, frame) = tcp4_gso(&payload(11), 0x18, 1448);
    let segs = cut(&hdr, &frame);
    assert_eq!(segs.len(), 1);
    assert_eq!(check_tcp(&segs[0]).2, payload(11));
}

#[test]
fn tcp6_cut_at_gso_size() {
    let data = payload(64000);
    let (hdr, frame) = tcp6_gso(&data, 0x18, 1428);
    let segs = cut(&hdr, &frame);
    assert_eq!(segs.len(), 64000usize.div_ceil(1428));
    let mut joined = Vec::new();
    for (i, s) in segs.iter().enumerate() {
        assert!(s.len() <= 1514);
        let (seq, flags, p, _) = check_tcp(s);
        assert_eq!(seq, 1000 + (i * 1428) as u32);
        assert_eq!(
            flags & 0x08 != 0,
            i + 1 == segs.len(),
            "PSH on the last only"
        );
        joined.extend(p);
    }
    assert_eq!(joined, data);
}

#[test]
fn vlan_tagged_segment() {
    let data = payload(3000);
    let (mut hdr, mut frame) = tcp4_gso(&data, 0x10, 1400);
    frame.splice(12..12, [0x81, 0x00, 0x00, 0x05]);
    hdr.csum_start += 4;
    let segs = cut(&hdr, &frame);
    assert_eq!(segs.len(), 3);
    for s in segs {
        // Strip the tag and check as untagged.
        let mut u = s.clone();
        u.drain(12..16);
        check_tcp(&u);
    }
}

#[test]
fn pending_checksum_completed() {
    // UDP over IPv4 with the pseudo-header sum in the checksum field.
    let data = payload(333);
    let mut f = mac_header(0x0800);
    let ulen = (8 + data.len()) as u16;
    let mut ip = vec![
        0x45, 0, 0, 0, 0, 1, 0, 0, 64, 17, 0, 0, 10, 0, 0, 2, 10, 0, 0, 1,
    ];
    ip[2..4].copy_from_slice(&(20 + ulen).to_be_bytes());
    let c = !naive_sum(&[&ip]);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let mut pseudo = ip[12..20].to_vec();
    pseudo.extend_from_slice(&[0, 17]);
    pseudo.extend_from_slice(&ulen.to_be_bytes());
    let partial = naive_sum(&[&pseudo]);
    f.extend_from_slice(&ip);
    f.extend_from_slice(&5353u16.to_be_bytes());
    f.extend_from_slice(&53u16.to_be_bytes());
    f.extend_from_slice(&ulen.to_be_bytes());
    f.extend_from_slice(&partial.to_be_bytes());
    f.extend_from_slice(&data);
    let hdr = VnetHdr {
        flags: F_NEEDS_CSUM,
        csum_start: 34,
        csum_offset: 6,
        ..VnetHdr::PLAIN
    };
    let out = cut(&hdr, &f);
    assert_eq!(out.len(), 1);
    let o = &out[0];
    assert_eq!(o.len(), f.len());
    assert_eq!(naive_sum(&[&pseudo, &o[34..]]), 0xffff, "UDP checksum");
    assert_ne!(&o[40..42], &[0, 0], "never UDP's 'no checksum'");
    // The same frame without the flag passes untouched.
    let out = cut(&VnetHdr::PLAIN, &f);
    assert_eq!(out, vec![f.clone()]);
}

#[test]
fn bad_input_is_an_error() {
    let mut scratch = vec![0u8; 9234];
    let errno = |h: &VnetHdr, f: &[u8], s: &mut [u8]| {
        crate::error::errno_of(&to_plain(h, f, s, |_| {}).unwrap_err())
    };
    let (hdr, frame) = tcp4_gso(&payload(3000), 0x10, 1000);
    // Truncated anywhere in the headers.
    for n in [0, 5, 13, 14, 20, 33, 40, 53] {
        assert_eq!(
            errno(&hdr, &frame[..n], &mut scratch),
            libc::EINVAL,
            "len {n}"
        );
    }
    // gso_size 0, IPv6 type on an IPv4 frame, UDP kinds.
    let h0 = VnetHdr { gso_size: 0, ..hdr };
    assert_eq!(errno(&h0, &frame, &mut scratch), libc::EINVAL);
    let h6 = VnetHdr {
        gso_type: GSO_TCPV6,
        ..hdr
    };
    assert_eq!(errno(&h6, &frame, &mut scratch), libc::EINVAL);
    for t in [GSO_UDP, GSO_UDP_L4, 9] {
        let h = VnetHdr { gso_type: t, ..hdr };
        assert_eq!(errno(&h, &frame, &mut scratch), libc::EPROTONOSUPPORT);
    }
    // A segment bigger than the scratch buffer.
    let big = VnetHdr {
        gso_size: 2000,
        ..hdr
    };
    assert_eq!(errno(&big, &frame, &mut scratch[..1500]), libc::EMSGSIZE);
    // A pending checksum past the end.
    let h = VnetHdr {
        flags: F_NEEDS_CSUM,
        csum_start: 60,
        csum_offset: 0,
        ..VnetHdr::PLAIN
    };
    assert_eq!(errno(&h, &frame[..61], &mut scratch), libc::EINVAL);
    // Not TCP inside.
    let mut udp = frame.clone();
    udp[14 + 9] = 17;
    assert_eq!(errno(&hdr, &udp, &mut scratch), libc::EINVAL);
}

#[test]
fn fast_sum_matches_naive() {
    for n in [0, 1, 2, 3, 4, 5, 7, 8, 9, 1500, 1501] {
        let d = payload(n);
        assert_eq!(fold(sum_words(&d)), naive_sum(&[&d]), "len {n}");
    }
}

#[test]
fn packed_segments_match_one_by_one() {
    for (hdr, frame) in [
        tcp4_gso(&payload(10_000), 0x18, 1448),
        tcp6_gso(&payload(3_001), 0x19, 1000),
        tcp4_gso(&payload(100), 0x10, 1448),
    ] {
        let one_by_one = cut(&hdr, &frame);
        let mut out = vec![0u8; MAX_GSO_FRAME * 2];
        let mut ends = vec![7];
        let n = segment_tcp_packed(&hdr, &frame, &mut out, &mut ends).unwrap();
        assert_eq!(n, one_by_one.len());
        let mut start = 0;
        let packed: Vec<Vec<u8>> = ends
            .iter()
            .map(|&e| {
                let s = out[start..e].to_vec();
                start = e;
                s
            })
            .collect();
        assert_eq!(packed, one_by_one);
        // Too small a buffer: an error, not a panic.
        let mut small = vec![0u8; frame.len()];
        let e = segment_tcp_packed(&hdr, &frame, &mut small, &mut ends);
        if n > 1 {
            assert_eq!(crate::error::errno_of(&e.unwrap_err()), libc::EMSGSIZE);
        }
    }
}
