//! Batched receive (`Plug::recv_batch`, one `recvmmsg` for up to 32 datagrams) on
//! `vxvde://` and `vxlan://`: batch boundaries, bad datagrams in the middle of a
//! batch skipped and the others kept in order, each plug's checks and learning as
//! with `recv`. Every test runs in a private network namespace; crafted datagrams
//! are sent to the plug over that namespace's loopback.

mod common;

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use common::*;
use vdestack::vde::vxlan::Vxlan;
use vdestack::vde::vxvde::Vxvde;
use vdestack::vde::{Plug, Recv, RecvBatch};

/// The VXLAN header of `vni`.
fn header(vni: u32) -> [u8; 8] {
    let v = vni.to_be_bytes();
    [0x08, 0, 0, 0, v[1], v[2], v[3], 0]
}

/// `frame` after the VXLAN header of `vni`.
fn datagram(vni: u32, frame: &[u8]) -> Vec<u8> {
    let mut d = header(vni).to_vec();
    d.extend_from_slice(frame);
    d
}

/// Calls `recv_batch` until the plug is empty (waiting a little for stragglers):
/// the frames of each call that returned some.
fn drain(p: &mut dyn Plug, batch: &mut RecvBatch) -> Vec<Vec<Vec<u8>>> {
    let mut calls = Vec::new();
    loop {
        match p
            .recv_batching()
            .expect("a datagram plug batches")
            .recv_batch(batch)
        {
            Ok(Recv::Frame(n)) => {
                assert_eq!(n, batch.len());
                calls.push(batch.frames().map(<[u8]>::to_vec).collect());
            }
            Ok(Recv::Nothing) => {}
            Ok(Recv::Closed) => panic!("a datagram plug never closes"),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if !vdestack::vde::wait_readable(p, Some(Duration::from_millis(200))).unwrap() {
                    return calls;
                }
            }
            Err(e) => panic!("{e}"),
        }
    }
}

fn sender() -> UdpSocket {
    UdpSocket::bind("127.0.0.1:0").unwrap()
}

sandbox_test! {
    fn vxvde_batch_boundaries() {
        let url = "239.6.0.1/port=24201";
        for queued in [0usize, 1, 31, 32, 33] {
            let mut p = Vxvde::open(url).unwrap();
            let to = p.local_addr();
            let s = sender();
            let frames = test_frames(queued, mac(1), mac(2), queued as u64);
            for f in &frames {
                s.send_to(&datagram(1, f), to).unwrap();
            }
            let mut batch = RecvBatch::new();
            let calls = drain(&mut p, &mut batch);
            let sizes: Vec<usize> = calls.iter().map(Vec::len).collect();
            let want = match queued {
                0 => vec![],
                33 => vec![32, 1],
                n => vec![n],
            };
            assert_eq!(sizes, want, "{queued} queued");
            assert_eq!(calls.concat(), frames, "{queued} queued: the frames, in order");
        }
    }
}

sandbox_test! {
    fn vxvde_batch_skips_bad_datagrams_and_learns() {
        let mut p = Vxvde::open("239.6.0.2/port=24202").unwrap();
        let to = p.local_addr();
        let (s, other) = (sender(), sender());
        let good = test_frames(4, mac(1), mac(2), 7);
        s.send_to(&datagram(1, &good[0]), to).unwrap();
        s.send_to(&datagram(2, &good[1]), to).unwrap(); // another VNI
        s.send_to(&datagram(1, &good[1][..13]), to).unwrap(); // a runt
        s.send_to(&header(1)[..5], to).unwrap(); // not even a header
        s.send_to(&datagram(1, &good[1]), to).unwrap();
        let from_other = test_frames(1, mac(3), mac(2), 8).remove(0);
        other.send_to(&datagram(1, &from_other), to).unwrap();
        other.send_to(&header(1), to).unwrap(); // its goodbye
        s.send_to(&datagram(1, &good[2]), to).unwrap();
        let mut batch = RecvBatch::new();
        let calls = drain(&mut p, &mut batch);
        assert_eq!(calls.len(), 1, "one batch");
        let want = [good[0].clone(), good[1].clone(), from_other, good[2].clone()];
        assert_eq!(calls[0], want);

        // mac(1) was learned behind `s`: a frame to it goes there, unicast.
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let back = test_frames(1, mac(2), mac(1), 9);
        p.send(&back[0]).unwrap();
        let mut buf = [0u8; 2048];
        let n = s.recv(&mut buf).expect("the unicast reaches the learned sender");
        assert_eq!(&buf[..n], &datagram(1, &back[0])[..]);
        // mac(3)'s sender said goodbye: a frame to it floods, `other` gets nothing.
        other.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
        p.send(&test_frames(1, mac(2), mac(3), 10)[0]).unwrap();
        assert!(other.recv(&mut buf).is_err(), "forgotten after the goodbye");
    }
}

sandbox_test! {
    fn vxvde_batch_drops_our_own_multicast() {
        let url = "239.6.0.3/port=24203";
        let mut a = Vxvde::open(url).unwrap();
        let mut b = Vxvde::open(url).unwrap();
        let hello = test_frames(3, mac(9), [0xff; 6], 11);
        for f in &hello {
            a.send(f).unwrap();
        }
        let mut batch = RecvBatch::new();
        assert_eq!(drain(&mut b, &mut batch).concat(), hello, "b hears a's broadcasts");
        assert!(drain(&mut a, &mut batch).is_empty(), "a must not hear itself");
    }
}

sandbox_test! {
    fn vxlan_batch_checks_the_vni_and_learns() {
        // The kernel-compatible plug listens on the wildcard address at its port.
        let mut p = Vxlan::open("239.6.0.4/port=24204/vni=42").unwrap();
        let to: SocketAddr = "127.0.0.1:24204".parse().unwrap();
        let s = sender();
        let frames = test_frames(33, mac(1), mac(2), 12);
        for (i, f) in frames.iter().enumerate() {
            s.send_to(&datagram(42, f), to).unwrap();
            if i == 10 {
                s.send_to(&datagram(43, f), to).unwrap(); // another VNI
                s.send_to(&datagram(42, &f[..13]), to).unwrap(); // a runt
            }
        }
        let mut batch = RecvBatch::new();
        let calls = drain(&mut p, &mut batch);
        let sizes: Vec<usize> = calls.iter().map(Vec::len).collect();
        // 35 datagrams: 32 (two of them bad) in the first batch, 3 in the second.
        assert_eq!(sizes, [30, 3]);
        assert_eq!(calls.concat(), frames);
        // mac(1) was learned behind 127.0.0.1 at the VXLAN port, which is this
        // plug itself: a frame to it comes back (a flood would not: loop is off).
        p.send(&test_frames(1, mac(2), mac(1), 13)[0]).unwrap();
        let got = drain(&mut p, &mut batch).concat();
        assert_eq!(got, test_frames(1, mac(2), mac(1), 13), "sent unicast to the learned peer");
    }
}
