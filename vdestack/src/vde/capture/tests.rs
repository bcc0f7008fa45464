//! The plug over a socket pair: what it writes, rotation, bad input.

use rustix::net::{socketpair, AddressFamily, SocketFlags, SocketType};

use super::*;
use crate::vde::seqpacket::SeqPacket;
use crate::vde::MAX_FRAME;

fn pair() -> (Box<dyn Plug>, SeqPacket) {
    let (a, b) = socketpair(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
        None,
    )
    .unwrap();
    (
        Box::new(SeqPacket::from_fd(a).unwrap()),
        SeqPacket::from_fd(b).unwrap(),
    )
}

fn tmp(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("vdestack-cap-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

/// The (direction flag, frame) of each Enhanced Packet Block of a pcapng file.
fn packets(file: &[u8]) -> Vec<(u32, Vec<u8>)> {
    let mut at = 0;
    let mut out = Vec::new();
    while at < file.len() {
        let (kind, len) = (u32_at(file, at), u32_at(file, at + 4) as usize);
        if kind == 6 {
            let caplen = u32_at(file, at + 20) as usize;
            let data = file[at + 28..at + 28 + caplen].to_vec();
            let opt = at + 28 + caplen.div_ceil(4) * 4;
            assert_eq!(u32_at(file, opt) & 0xffff, 2, "epb_flags first");
            out.push((u32_at(file, opt + 4), data));
        }
        at += len;
    }
    out
}

#[test]
fn urls_and_bad_input() {
    let s = parse("/tmp/x.pcapng").unwrap();
    assert_eq!(s.target, Target::File("/tmp/x.pcapng".into()));
    assert_eq!((s.format, s.limit, s.files), (Format::PcapNg, None, 2));
    assert_eq!(parse("/tmp/x.pcap").unwrap().format, Format::Pcap);
    assert_eq!(
        parse("/tmp/x.pcap[format=pcapng]").unwrap().format,
        Format::PcapNg
    );
    assert_eq!(parse("-").unwrap().target, Target::Stdout);
    let s = parse("/tmp/x[limit=1m/files=5]").unwrap();
    assert_eq!((s.limit, s.files), (Some(1 << 20), 5));
    for (url, needle) in [
        ("", "file"),
        ("/tmp/x[format=tcpdump]", "format"),
        ("-[limit=1m]", "limit"),
        ("/tmp/x[limit=0]", "limit"),
        ("/tmp/x[limit=10]", "limit"),
        ("/tmp/x[files=0]", "files"),
        ("/tmp/x[colour=red]", "colour"),
    ] {
        let e = parse(url).unwrap_err().to_string();
        assert!(e.contains("capture") && e.contains(needle), "{url}: {e}");
    }
}

#[test]
fn an_unwritable_file_is_named() {
    let (inner, _net) = pair();
    let spec = parse("/no/such/dir/x.pcapng").unwrap();
    let e = Capture::wrap(spec, inner, "").unwrap_err().to_string();
    assert!(
        e.contains("/no/such/dir/x.pcapng") && e.contains("capture"),
        "{e}"
    );
}

#[test]
fn frames_both_ways_are_recorded_with_their_direction() {
    let d = tmp("both");
    let f = d.join("c.pcapng");
    let (inner, mut net) = pair();
    let mut c = Capture::wrap(parse(f.to_str().unwrap()).unwrap(), inner, "null://").unwrap();
    let out: Vec<u8> = (0..60).collect();
    let back: Vec<u8> = (0..75).rev().collect();
    c.send(&out).unwrap();
    let mut buf = vec![0u8; MAX_FRAME];
    assert_eq!(net.recv(&mut buf).unwrap(), Recv::Frame(60));
    net.send(&back).unwrap();
    assert_eq!(c.recv(&mut buf).unwrap(), Recv::Frame(75));
    c.send(&[0u8; 5]).unwrap(); // shorter than a frame: not recorded
    drop(c);
    let file = std::fs::read(&f).unwrap();
    assert_eq!(packets(&file), vec![(2, out), (1, back)]);
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_size_limit_rotates_files() {
    let d = tmp("rot");
    let f = d.join("c");
    let (inner, mut net) = pair();
    let spec = parse(&format!("{}[limit=1k/files=3]", f.display())).unwrap();
    let mut c = Capture::wrap(spec, inner, "").unwrap();
    let mut buf = vec![0u8; MAX_FRAME];
    for i in 0..40u8 {
        c.send(&[i; 100]).unwrap();
        let _ = net.recv(&mut buf);
    }
    drop(c);
    let name = |k: &str| d.join(format!("c{k}"));
    let (cur, one, two) = (
        std::fs::read(name("")).unwrap(),
        std::fs::read(name(".1")).unwrap(),
        std::fs::read(name(".2")).unwrap(),
    );
    assert!(!name(".3").exists(), "files=3 keeps three");
    for file in [&cur, &one, &two] {
        assert!(file.len() <= 1024);
        assert_eq!(
            u32_at(file, 0),
            0x0a0d0d0a,
            "each file starts with its header"
        );
    }
    // The newest file ends with the last frame; the files hold consecutive frames.
    let last = packets(&cur).last().unwrap().1.clone();
    assert_eq!(last, vec![39u8; 100]);
    let first_of_cur = packets(&cur)[0].1[0];
    let last_of_one = packets(&one).last().unwrap().1[0];
    assert_eq!(last_of_one + 1, first_of_cur);
    std::fs::remove_dir_all(&d).unwrap();
}
