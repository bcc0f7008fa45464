//! Frames cut by `gso` are joined back into the segment they came from, and what
//! must not be joined is not.

use super::*;
use crate::vde::gso::{to_plain, MAX_GSO_FRAME};

/// An IPv4 TCP large segment as a tap with TSO hands it out, with `opts` (a
/// multiple of 4 bytes) after the TCP header.
fn large(data_len: usize, flags: u8, mss: u16, opts: &[u8]) -> (VnetHdr, Vec<u8>) {
    let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
    let doff = 20 + opts.len();
    let total = 20 + doff + data_len;
    let mut ip = vec![
        0x45, 0, 0, 0, 0x12, 0x34, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 2, 10, 0, 0, 1,
    ];
    ip[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    f.extend_from_slice(&ip);
    let mut t = vec![0u8; 20];
    t[0..2].copy_from_slice(&40000u16.to_be_bytes());
    t[2..4].copy_from_slice(&80u16.to_be_bytes());
    t[4..8].copy_from_slice(&0xffff_f000u32.to_be_bytes());
    t[8..12].copy_from_slice(&7u32.to_be_bytes());
    t[12] = ((doff / 4) as u8) << 4;
    t[13] = flags;
    t[14..16].copy_from_slice(&0x2000u16.to_be_bytes());
    f.extend_from_slice(&t);
    f.extend_from_slice(opts);
    f.extend((0..data_len).map(|i| (i * 7 + 3) as u8));
    let hdr = VnetHdr {
        flags: F_NEEDS_CSUM,
        gso_type: GSO_TCPV4,
        hdr_len: (14 + 20 + doff) as u16,
        gso_size: mss,
        csum_start: 34,
        csum_offset: 16,
    };
    (hdr, f)
}

fn cut(hdr: &VnetHdr, frame: &[u8]) -> Vec<Vec<u8>> {
    let mut scratch = vec![0u8; MAX_GSO_FRAME];
    let mut out = Vec::new();
    to_plain(hdr, frame, &mut scratch, |s| out.push(s.to_vec())).unwrap();
    out
}

/// Joins `frames` as the relay does: returns each flushed (header, frame).
fn join(frames: &[Vec<u8>]) -> Vec<(VnetHdr, Vec<u8>)> {
    let mut out = Vec::new();
    let mut joined: Vec<u8> = Vec::new();
    let mut run: Option<Run> = None;
    for f in frames {
        let seg = segment(f);
        if let (Some(r), Some(s)) = (run.as_mut(), seg.as_ref()) {
            if r.continues(&joined, f, s) {
                joined.extend_from_slice(&f[s.hdr_len..]);
                r.push(s);
                continue;
            }
        }
        if let Some(r) = run.take() {
            let h = r.finish(&mut joined);
            out.push((h, joined.clone()));
        }
        match seg {
            Some(s) => {
                joined = f.clone();
                run = Some(Run::start(s));
            }
            None => out.push((VnetHdr::PLAIN, f.clone())),
        }
    }
    if let Some(r) = run {
        let h = r.finish(&mut joined);
        out.push((h, joined));
    }
    out
}

#[test]
fn cut_frames_join_back() {
    let ts = [1, 1, 8, 10, 0, 0, 0, 5, 0, 0, 0, 9];
    for (len, flags, mss, opts) in [
        (10_000, 0x18, 1448, &[][..]),
        (60_000, 0x10, 1448, &ts[..]),
        (4_000, 0x18, 1000, &ts[..]),
        (1_448 * 3, 0x10, 1448, &[][..]),
    ] {
        let (hdr, frame) = large(len, flags, mss, opts);
        let frames = cut(&hdr, &frame);
        let joined = join(&frames);
        assert_eq!(joined.len(), 1, "one large segment for {len}");
        let (h, j) = &joined[0];
        assert_eq!((h.gso_type, h.gso_size), (GSO_TCPV4, mss));
        assert_eq!(usize::from(h.hdr_len), 54 + opts.len());
        assert_eq!(cut(h, j), frames, "re-cut of {len} bytes");
    }
}

#[test]
fn a_single_segment_stays_plain() {
    let (hdr, frame) = large(500, 0x18, 1448, &[]);
    let frames = cut(&hdr, &frame);
    let joined = join(&frames);
    assert_eq!(joined, vec![(VnetHdr::PLAIN, frames[0].clone())]);
}

#[test]
fn what_must_not_be_joined_is_not() {
    let (hdr, frame) = large(1448 * 4, 0x10, 1448, &[]);
    let frames = cut(&hdr, &frame);
    // A bad TCP checksum: that frame goes alone, as it came.
    let mut bad = frames.clone();
    bad[1][60] ^= 1;
    assert!(segment(&bad[1]).is_none());
    let j = join(&bad);
    assert_eq!(j.len(), 3);
    assert_eq!(j[1], (VnetHdr::PLAIN, bad[1].clone()));
    // A gap in the sequence (a lost frame): two runs.
    let gap = vec![frames[0].clone(), frames[2].clone(), frames[3].clone()];
    let j = join(&gap);
    assert_eq!(j.len(), 2);
    assert_eq!(j[0], (VnetHdr::PLAIN, frames[0].clone()));
    assert_eq!(cut(&j[1].0, &j[1].1), frames[2..].to_vec());
    // Another flow (other port), SYN, no payload, IPv6, short frames: not joined.
    let mut other = frames[1].clone();
    other[35] ^= 1;
    let tcp_fix = |f: &mut Vec<u8>| {
        f[50..52].copy_from_slice(&[0, 0]);
        let c = !fold(pseudo_sum(f, f.len() - 34) + sum_words(&f[34..]));
        f[50..52].copy_from_slice(&c.to_be_bytes());
    };
    tcp_fix(&mut other);
    assert!(segment(&other).is_some());
    let j = join(&[frames[0].clone(), other.clone()]);
    assert_eq!(j.len(), 2);
    let mut syn = frames[0].clone();
    syn[47] = 0x02;
    tcp_fix(&mut syn);
    assert!(segment(&syn).is_none());
    assert!(segment(&frames[0][..54]).is_none());
    assert!(segment(&[0u8; 10]).is_none());
    let mut v6 = frames[0].clone();
    v6[12..14].copy_from_slice(&[0x86, 0xdd]);
    assert!(segment(&v6).is_none());
    // After a PSH or a short segment nothing more is joined.
    let (hdr, frame) = large(1448 + 100, 0x18, 1448, &[]);
    let mut two = cut(&hdr, &frame);
    let (hdr, frame) = large(1448 * 2, 0x10, 1448, &[]);
    two.extend(cut(&hdr, &frame));
    let j = join(&two);
    assert!(j.len() >= 2);
}
