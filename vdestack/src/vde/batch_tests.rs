//! Keeping what a full peer does not take: a unix datagram socket whose peer is
//! not connected back refuses datagrams (`EAGAIN`) once `net.unix.max_dgram_qlen`
//! of them wait, as a `vde_switch`'s port socket does.

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};

use rustix::event::{poll, PollFd, PollFlags};

use super::*;
use crate::vde::gso::F_NEEDS_CSUM;

/// An IPv4 TCP segment of `len` payload bytes, as a tap with TSO hands it out.
fn segment(len: usize, mss: u16) -> (VnetHdr, Vec<u8>) {
    let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
    let total = (40 + len) as u16;
    let mut ip = vec![
        0x45, 0, 0, 0, 0x12, 0x34, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 2, 10, 0, 0, 1,
    ];
    ip[2..4].copy_from_slice(&total.to_be_bytes());
    f.extend_from_slice(&ip);
    let mut tcp = vec![0u8; 20];
    tcp[0..2].copy_from_slice(&40000u16.to_be_bytes());
    tcp[2..4].copy_from_slice(&80u16.to_be_bytes());
    tcp[12] = 5 << 4;
    tcp[13] = 0x18;
    f.extend_from_slice(&tcp);
    f.extend((0..len).map(|i| (i * 7 + 3) as u8));
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

/// A sender connected to a receiver that is not connected back (so the
/// receiver's queue length limits the sender), both non-blocking.
fn peers() -> (UnixDatagram, UnixDatagram) {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let name = format!(
        "vdestack-batch-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let rx = UnixDatagram::bind_addr(&addr).unwrap();
    let tx = UnixDatagram::unbound().unwrap();
    tx.connect_addr(&addr).unwrap();
    rx.set_nonblocking(true).unwrap();
    tx.set_nonblocking(true).unwrap();
    (tx, rx)
}

/// Every datagram waiting at `rx`.
fn drain(rx: &UnixDatagram, got: &mut Vec<Vec<u8>>) {
    let mut buf = [0u8; 2048];
    while let Ok(n) = rx.recv(&mut buf) {
        got.push(buf[..n].to_vec());
    }
}

fn writable(tx: &UnixDatagram) -> bool {
    let mut fds = [PollFd::new(tx, PollFlags::OUT)];
    let zero = rustix::time::Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    poll(&mut fds, Some(&zero)).unwrap();
    fds[0].revents().contains(PollFlags::OUT)
}

/// The frames `hdr` and `frame` are cut into, in order.
fn expected(hdr: &VnetHdr, frame: &[u8]) -> Vec<Vec<u8>> {
    let mut b = SegmentBatch::default();
    let frames = b.cut(hdr, frame).unwrap();
    frames.map(<[u8]>::to_vec).collect()
}

#[test]
fn a_burst_larger_than_the_peers_queue_arrives_whole_once_the_peer_reads() {
    let (tx, rx) = peers();
    let (hdr, frame) = segment(64000, 1448);
    let want = expected(&hdr, &frame);
    assert_eq!(want.len(), 45);

    let mut b = SegmentBatch::default();
    b.keep_backlog();
    b.cut(&hdr, &frame).unwrap();
    b.send_cut(&tx, &[], None).unwrap();
    if b.kept() == 0 {
        eprintln!("skipped: this host's net.unix.max_dgram_qlen takes 45 datagrams");
        return;
    }
    // Full: the socket says so (what the relay waits on), and so does a flush.
    assert!(!writable(&tx));
    assert_eq!(b.flush(&tx, &[]), Ok(false));

    let mut got = Vec::new();
    let mut rounds = 0;
    loop {
        drain(&rx, &mut got);
        assert!(writable(&tx), "room again once the peer has read");
        rounds += 1;
        if b.flush(&tx, &[]).unwrap() {
            break;
        }
        assert!(rounds < 100, "the kept frames never went");
    }
    drain(&rx, &mut got);
    assert_eq!(b.kept(), 0);
    assert_eq!(got, want, "every frame, once, in order");
    assert!(rounds > 1);
}

#[test]
fn without_keeping_a_full_peer_gets_the_first_frames_only() {
    let (tx, rx) = peers();
    let (hdr, frame) = segment(64000, 1448);
    let want = expected(&hdr, &frame);
    let mut b = SegmentBatch::default();
    b.cut(&hdr, &frame).unwrap();
    b.send_cut(&tx, &[], None).unwrap();
    assert_eq!(b.kept(), 0);
    let mut got = Vec::new();
    drain(&rx, &mut got);
    assert!(!got.is_empty() && got.len() <= want.len());
    assert_eq!(got[..], want[..got.len()]);
    // Nothing is left to send.
    assert_eq!(b.flush(&tx, &[]), Ok(true));
    let mut more = Vec::new();
    drain(&rx, &mut more);
    assert!(more.is_empty());
}

#[test]
fn a_kept_frame_goes_after_the_queue_drains_with_its_prefix() {
    let (tx, rx) = peers();
    let filler = [0x55u8; 100];
    let mut queued = 0;
    while send_all(&tx, b"P", None, std::iter::once(&filler[..])).is_ok() {
        queued += 1;
        assert!(queued < 100_000, "the peer's queue never filled");
    }
    let mut b = SegmentBatch::default();
    b.keep_backlog();
    let frame = [0xaau8; 60];
    b.keep_frame(&frame, None);
    assert_eq!(b.kept(), 1);
    assert_eq!(b.flush(&tx, b"P"), Ok(false));
    let mut got = Vec::new();
    drain(&rx, &mut got);
    assert_eq!(got.len(), queued);
    assert_eq!(b.flush(&tx, b"P"), Ok(true));
    got.clear();
    drain(&rx, &mut got);
    let mut want = b"P".to_vec();
    want.extend_from_slice(&frame);
    assert_eq!(got, vec![want]);
    assert_eq!(b.drop_kept(), 0);
}

#[test]
fn a_peer_that_goes_away_drops_what_is_kept() {
    let (tx, rx) = peers();
    let (hdr, frame) = segment(64000, 1448);
    let mut b = SegmentBatch::default();
    b.keep_backlog();
    b.cut(&hdr, &frame).unwrap();
    b.send_cut(&tx, &[], None).unwrap();
    if b.kept() == 0 {
        eprintln!("skipped: this host's net.unix.max_dgram_qlen takes 45 datagrams");
        return;
    }
    drop(rx);
    assert_eq!(b.flush(&tx, &[]), Err(rustix::io::Errno::CONNREFUSED));
    assert_eq!(b.kept(), 0);
}
