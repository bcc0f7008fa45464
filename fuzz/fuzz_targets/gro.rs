//! Frames from a datagram transport (any peer's bytes) joined by the relay's
//! software GRO: parsing, joining and finishing never panic, and a joined run cut
//! back into ordinary frames ([`to_plain`]) carries exactly the payloads that
//! went in, in order. Checksums are repaired before parsing, or almost nothing
//! would get past [`segment`].
#![no_main]
use libfuzzer_sys::fuzz_target;
use vdestack::vde::gro::{segment, Run};
use vdestack::vde::gso::to_plain;

const ETH: usize = 14;

fn sum(data: &[u8]) -> u32 {
    let mut s = 0u32;
    for c in data.chunks(2) {
        s += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    }
    s
}

fn fold(mut s: u32) -> u16 {
    while s >> 16 != 0 {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

/// Makes the IPv4 and TCP checksums of `f` right where it looks like IPv4/TCP.
fn repair(f: &mut [u8]) {
    if f.len() < ETH + 40 || f[12..14] != [8, 0] || f[ETH] != 0x45 || f[ETH + 9] != 6 {
        return;
    }
    f[ETH + 10..ETH + 12].fill(0);
    let c = !fold(sum(&f[ETH..ETH + 20]));
    f[ETH + 10..ETH + 12].copy_from_slice(&c.to_be_bytes());
    let l4 = ETH + 20;
    let tcp_len = f.len() - l4;
    f[l4 + 16..l4 + 18].fill(0);
    let pseudo = sum(&f[ETH + 12..ETH + 20]) + 6 + tcp_len as u32;
    let c = !fold(pseudo + sum(&f[l4..]));
    f[l4 + 16..l4 + 18].copy_from_slice(&c.to_be_bytes());
}

fuzz_target!(|data: &[u8]| {
    // Frames: a 2-byte length, then that many bytes (a frame may copy its
    // predecessor's headers, so runs form: a flag bit of the length).
    let mut frames: Vec<Vec<u8>> = Vec::new();
    let mut rest = data;
    while rest.len() >= 2 {
        let n = usize::from(u16::from_be_bytes([rest[0], rest[1]]) & 0x7fff).min(9000);
        let like_last = rest[0] & 0x80 != 0;
        rest = &rest[2..];
        let take = n.min(rest.len());
        let mut f = rest[..take].to_vec();
        rest = &rest[take..];
        if like_last {
            if let Some(prev) = frames.last() {
                let h = (ETH + 40).min(prev.len()).min(f.len());
                f[..h].copy_from_slice(&prev[..h]);
                if f.len() >= ETH + 40 && prev.len() >= ETH + 40 {
                    let total = (f.len() - ETH) as u16;
                    f[ETH + 2..ETH + 4].copy_from_slice(&total.to_be_bytes());
                    // The next IP id and sequence number, as a sender's next
                    // segment would have (with 40-byte headers).
                    let id = u16::from_be_bytes([prev[ETH + 4], prev[ETH + 5]]);
                    f[ETH + 4..ETH + 6].copy_from_slice(&id.wrapping_add(1).to_be_bytes());
                    let seq = u32::from_be_bytes(prev[ETH + 24..ETH + 28].try_into().unwrap());
                    let next = seq.wrapping_add((prev.len() - ETH - 40) as u32);
                    f[ETH + 24..ETH + 28].copy_from_slice(&next.to_be_bytes());
                }
            }
        }
        repair(&mut f);
        frames.push(f);
    }
    let mut joined = vec![0u8; 70000];
    let mut run: Option<Run> = None;
    let mut payloads: Vec<u8> = Vec::new();
    let check = |run: &Run, joined: &mut [u8], payloads: &mut Vec<u8>| {
        let len = run.frame_len();
        let hdr = run.finish(&mut joined[..len]);
        let mut scratch = vec![0u8; 9234];
        let mut got: Vec<u8> = Vec::new();
        let first_hdr = segment(&joined[..len]).map(|s| s.hdr_len);
        let made = to_plain(&hdr, &joined[..len], &mut scratch, |piece| {
            if let Some(s) = segment(piece) {
                got.extend_from_slice(&piece[s.hdr_len..]);
            } else if let Some(h) = first_hdr {
                got.extend_from_slice(&piece[h.min(piece.len())..]);
            }
        });
        assert!(made.is_ok(), "a joined run does not cut: {made:?}");
        assert_eq!(&got, payloads, "payloads differ after join and cut");
        payloads.clear();
    };
    for f in &frames {
        let Some(seg) = segment(f) else { continue };
        if let Some(r) = run.as_mut() {
            let at = r.frame_len();
            if at + seg.payload <= joined.len() && r.continues(&joined[..at], f, &seg) {
                joined[at..at + seg.payload].copy_from_slice(&f[seg.hdr_len..]);
                payloads.extend_from_slice(&f[seg.hdr_len..]);
                r.push(&seg);
                continue;
            }
            let r = run.take().unwrap();
            check(&r, &mut joined, &mut payloads);
        }
        joined[..f.len()].copy_from_slice(f);
        payloads.extend_from_slice(&f[seg.hdr_len..]);
        run = Some(Run::start(seg));
    }
    if let Some(r) = run {
        check(&r, &mut joined, &mut payloads);
    }
});
