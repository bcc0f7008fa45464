//! Back-pressure in the relay: two of our stacks on a Debian `vde_switch`. While
//! the switch is stopped (SIGSTOP), one stack sends UDP datagrams (no flow
//! control) until the plug's socket to the switch is full: what the socket
//! refuses then waits in the plug, the relay stops reading the tap, and what
//! follows waits in the tap; once the switch runs again, every datagram
//! arrives, in order. Stopped for longer than the relay's patience, what waits
//! is dropped (and counted) and the interface goes on. Bulk TCP through such
//! stops loses no byte.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr};

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use vdestack::net::UdpSocket;

use common::stacks::*;
use common::*;

use rustix::process::{kill_process, Pid, Signal};
use vdestack::diagnostics::relay_backlog_counts;
use vdestack::stack::Stack;

/// Waits (a generous bound, not a timing claim) until `cond` holds.
fn wait_until(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "never happened: {what} ({:?})",
            relay_backlog_counts()
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Runs `f` while `pid` is stopped, then lets it run again.
fn while_stopped(pid: Pid, f: impl FnOnce()) {
    kill_process(pid, Signal::STOP).unwrap();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    kill_process(pid, Signal::CONT).unwrap();
    if let Err(e) = r {
        std::panic::resume_unwind(e);
    }
}

/// Datagram `i` of a burst.
fn datagram(i: usize) -> Vec<u8> {
    let mut d = vec![(i % 251) as u8; 1000];
    d[..8].copy_from_slice(&(i as u64).to_be_bytes());
    d
}

/// Every datagram waiting at `rx` within a second of the last one.
fn receive_all(rx: &UdpSocket) -> Vec<Vec<u8>> {
    rx.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 2048];
    while let Ok(n) = rx.recv(&mut buf) {
        got.push(buf[..n].to_vec());
    }
    got
}

/// Bulk TCP from `b` to `a` at `addr` until the returned flag is set; the
/// threads return the bytes sent and the bytes received (each checked).
struct Bulk {
    stop: Arc<AtomicBool>,
    received: Arc<AtomicUsize>,
    source: std::thread::JoinHandle<usize>,
    sink: std::thread::JoinHandle<usize>,
}

/// The stream's bytes: a period no write or read lines up with.
const PERIOD: usize = (1 << 20) + 7;

fn pattern() -> Arc<Vec<u8>> {
    Arc::new(
        (0..2 * PERIOD)
            .map(|i| i % PERIOD)
            .map(|i| (i % 251) as u8 ^ (i >> 12) as u8)
            .collect(),
    )
}

impl Bulk {
    fn start(a: &Stack, b: &Stack, addr: SocketAddr) -> Self {
        let l = a.tcp_listener(addr).unwrap();
        let received = Arc::new(AtomicUsize::new(0));
        let sink = {
            let received = received.clone();
            let p = pattern();
            std::thread::spawn(move || {
                let (mut c, _) = l.accept().unwrap();
                let mut buf = vec![0u8; 1 << 16];
                let mut at = 0usize;
                loop {
                    let n = c.read(&mut buf).unwrap();
                    if n == 0 {
                        return at;
                    }
                    let want = &p[at % PERIOD..][..n];
                    assert!(buf[..n] == *want, "bytes from {at} on differ");
                    at += n;
                    received.store(at, Ordering::Relaxed);
                }
            })
        };
        let stop = Arc::new(AtomicBool::new(false));
        let mut s = b.tcp_connect(addr).unwrap();
        let source = {
            let stop = stop.clone();
            let p = pattern();
            std::thread::spawn(move || {
                let mut at = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    let chunk = &p[at % PERIOD..][..1 << 16];
                    s.write_all(chunk).unwrap();
                    at += chunk.len();
                }
                s.shutdown(Shutdown::Write).unwrap();
                at
            })
        };
        Bulk {
            stop,
            received,
            source,
            sink,
        }
    }

    /// Waits until `more` bytes beyond those received so far have arrived.
    fn goes_on(&self, more: usize) {
        let now = self.received.load(Ordering::Relaxed);
        let r = self.received.clone();
        wait_until("more TCP data", move || {
            r.load(Ordering::Relaxed) >= now + more
        });
    }

    fn finish(self) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        let sent = self.source.join().unwrap();
        let received = self.sink.join().unwrap();
        assert_eq!(received, sent, "TCP bytes received");
        received
    }
}

/// Two of our stacks on a Debian switch (10.`net`.0.1 and .2), the switch's pid,
/// and a UDP socket of the second connected to one of the first.
struct Setup {
    _dir: TempDir,
    _sw: Proc,
    switch: Pid,
    a: Stack,
    b: Stack,
    rx: UdpSocket,
    tx: UdpSocket,
}

fn setup(test: &str, net: u8) -> Option<Setup> {
    if !have_tool(test, "vde_switch") || !have_tun(test) {
        return None;
    }
    let dir = TempDir::new("backpressure-sw");
    let sw = debian_vde_switch(&dir.0);
    let switch = Pid::from_child(&sw.child);
    let url = format!("vde://{}", dir.0.display());
    let a = Stack::with_interfaces(&[url.as_str()]).unwrap();
    let b = Stack::with_interfaces(&[url.as_str()]).unwrap();
    let (ia, ib) = (format!("10.{net}.0.1"), format!("10.{net}.0.2"));
    configure(&a, "vde0", &[(&ia, 24)]);
    configure(&b, "vde0", &[(&ib, 24)]);
    let rx = a.udp_bind(format!("{ia}:7031").parse().unwrap()).unwrap();
    let tx = b.udp_bind(format!("{ib}:7031").parse().unwrap()).unwrap();
    tx.connect(format!("{ia}:7031")).unwrap();
    // Both ways once, so no datagram below waits for ARP.
    tx.send(b"hello").unwrap();
    assert_eq!(receive_all(&rx), vec![b"hello".to_vec()]);
    let back = a.udp_bind(format!("{ia}:7032").parse().unwrap()).unwrap();
    back.send_to(b"hello", format!("{ib}:7031")).unwrap();
    Some(Setup {
        _dir: dir,
        _sw: sw,
        switch,
        a,
        b,
        rx,
        tx,
    })
}

/// While the switch is stopped: sends datagrams until the relay waits for the
/// switch (the plug's socket is full), then `extra` more; returns how many.
fn fill_then(tx: &UdpSocket, extra: usize) -> usize {
    let before = relay_backlog_counts();
    let mut n = 0;
    while relay_backlog_counts().waited == before.waited {
        assert!(n < 100_000, "the relay never waited for the stopped switch");
        tx.send(&datagram(n)).unwrap();
        n += 1;
        // Let the relay catch up: the tap's queue must not overflow.
        if n % 16 == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    for _ in 0..extra {
        tx.send(&datagram(n)).unwrap();
        n += 1;
    }
    n
}

sandbox_test! {
    fn a_burst_larger_than_the_switch_takes_arrives_whole_once_it_reads_again() {
        let Some(s) = setup("a_burst_larger_than_the_switch_takes_arrives_whole_once_it_reads_again", 79) else {
            return;
        };
        let reader = std::thread::spawn(move || receive_all(&s.rx));
        let before = relay_backlog_counts();
        let mut sent = 0;
        // The switch stopped, the plug's socket fills up; then what the socket
        // refuses waits in the plug, what follows waits in the tap.
        while_stopped(s.switch, || sent = fill_then(&s.tx, 10));
        let got = reader.join().unwrap();
        let dropped = (relay_backlog_counts().dropped - before.dropped) as usize;
        eprintln!(
            "a burst of {sent} datagrams: {} arrived, {dropped} frames dropped",
            got.len()
        );
        // The switch took nothing for the relay's whole patience after it ran
        // again: the rest is dropped, but counted.
        assert!(got.len() + dropped >= sent, "datagrams lost unaccounted");
        if dropped == 0 {
            let want: Vec<Vec<u8>> = (0..sent).map(datagram).collect();
            assert_eq!(got, want, "the burst, whole and in order");
        }
    }
}

sandbox_test! {
    fn a_switch_stopped_for_long_costs_frames_not_the_interface() {
        let Some(s) = setup("a_switch_stopped_for_long_costs_frames_not_the_interface", 80) else {
            return;
        };
        // Stopped for longer than the relay waits: what it kept is dropped.
        let before = relay_backlog_counts();
        while_stopped(s.switch, || {
            fill_then(&s.tx, 10);
            wait_until("the relay giving up on the switch", || {
                relay_backlog_counts().dropped > before.dropped
            });
        });
        receive_all(&s.rx);
        // The interface goes on.
        s.tx.send(b"still there").unwrap();
        assert_eq!(receive_all(&s.rx), vec![b"still there".to_vec()]);
        tcp_echo(&s.a, &s.b, "10.80.0.1:7030", "after the switch ran again");
    }
}

sandbox_test! {
    fn bulk_tcp_through_a_switch_that_stops_now_and_then_loses_no_byte() {
        let Some(s) = setup("bulk_tcp_through_a_switch_that_stops_now_and_then_loses_no_byte", 81) else {
            return;
        };
        let bulk = Bulk::start(&s.a, &s.b, "10.81.0.1:7030".parse().unwrap());
        bulk.goes_on(1 << 20);
        for _ in 0..3 {
            // Datagrams make the relay wait whatever TCP is doing; the stop lasts
            // until it does.
            while_stopped(s.switch, || {
                fill_then(&s.tx, 10);
            });
            bulk.goes_on(4 << 20);
        }
        let total = bulk.finish();
        eprintln!(
            "{} MiB of TCP; relay back-pressure: {:?}",
            total >> 20,
            relay_backlog_counts()
        );
    }
}
