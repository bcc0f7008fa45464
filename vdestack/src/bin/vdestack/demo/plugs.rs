//! The demo's plug part: an embedded switch (and hub) in this process, three `vde://`
//! clients on it, the switch learning where each station is, a burst of frames
//! through it, and everything it made removed.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use vdestack::vde::netnode::{Kind, NetNode};
use vdestack::vde::null::Null;
use vdestack::vde::{self, cable, recv_timeout, Plug, MAX_FRAME};

/// A switch or hub served by a thread of this process until dropped.
struct Embedded {
    dir: PathBuf,
    stop: Option<OwnedFd>,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl Embedded {
    fn start(kind: Kind, dir: &Path) -> io::Result<Self> {
        let mut node = NetNode::open(kind, &dir.to_string_lossy(), &Default::default())?;
        let (stop_r, stop_w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
        let thread = std::thread::spawn(move || {
            let mut host = Null::open("")?;
            cable::run(&mut node, &mut host, Some(stop_r.as_fd()))?;
            Ok(())
        });
        Ok(Self {
            dir: dir.to_path_buf(),
            stop: Some(stop_w),
            thread: Some(thread),
        })
    }

    fn url(&self) -> String {
        format!("vde://{}", self.dir.display())
    }
}

impl Drop for Embedded {
    fn drop(&mut self) {
        if let Some(w) = self.stop.take() {
            let _ = rustix::io::write(&w, b"x");
        }
        if let Some(t) = self.thread.take() {
            match t.join() {
                Ok(Err(e)) => eprintln!("  the embedded node failed: {e}"),
                Err(_) => eprintln!("  the embedded node's thread panicked"),
                Ok(Ok(())) => {}
            }
        }
    }
}

fn frame(dst: [u8; 6], src: [u8; 6], len: usize, seq: u32) -> Vec<u8> {
    let mut f = Vec::with_capacity(len);
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&[0x88, 0xb5]); // local experimental ethertype
    f.extend_from_slice(&seq.to_be_bytes());
    f.resize(len.max(18), 0x5a);
    f
}

fn station(n: u8) -> [u8; 6] {
    [0x02, 0x76, 0x64, 0x65, 0x00, n]
}

/// Whether `plug` receives a frame within a short time.
fn hears(plug: &mut dyn Plug) -> io::Result<bool> {
    let mut buf = vec![0; MAX_FRAME];
    Ok(recv_timeout(plug, &mut buf, Duration::from_millis(300))?.is_some())
}

fn learning(kind: Kind, dir: &Path) -> io::Result<()> {
    let node = Embedded::start(kind, dir)?;
    println!(
        "- {} at {} (any `vde_plug vde://{}` could join it too)",
        kind.scheme(),
        dir.display(),
        dir.display()
    );
    let url = node.url();
    let mut a = vde::open(&url)?;
    let mut b = vde::open(&url)?;
    let mut c = vde::open(&url)?;
    println!("  three clients joined with {url}");
    a.send(&frame([0xff; 6], station(1), 60, 0))?;
    println!(
        "  A broadcasts: B hears it: {}, C hears it: {}",
        hears(b.as_mut())?,
        hears(c.as_mut())?
    );
    b.send(&frame(station(1), station(2), 60, 1))?;
    println!(
        "  B answers A by unicast: A hears it: {}, C hears it: {}{}",
        hears(a.as_mut())?,
        hears(c.as_mut())?,
        if kind == Kind::Switch {
            " (the switch learned where A is)"
        } else {
            " (a hub sends everything everywhere)"
        }
    );
    Ok(())
}

fn throughput(dir: &Path, count: u32) -> io::Result<()> {
    let node = Embedded::start(Kind::Switch, dir)?;
    let url = node.url();
    let mut a = vde::open(&url)?;
    let mut b = vde::open(&url)?;
    // Let the switch learn both stations first.
    a.send(&frame([0xff; 6], station(1), 60, 0))?;
    b.send(&frame([0xff; 6], station(2), 60, 0))?;
    let mut buf = vec![0; MAX_FRAME];
    while recv_timeout(a.as_mut(), &mut buf, Duration::from_millis(100))?.is_some() {}
    while recv_timeout(b.as_mut(), &mut buf, Duration::from_millis(100))?.is_some() {}

    let start = Instant::now();
    let (mut sent, mut got, mut bytes) = (0u32, 0u32, 0u64);
    // Windows of 8 frames: a unix datagram queue holds only 10 by default.
    while sent < count {
        let window = (count - sent).min(8);
        for _ in 0..window {
            let f = frame(station(2), station(1), 1514, sent);
            if a.send(&f).is_ok() {
                sent += 1;
            }
        }
        while got < sent {
            match recv_timeout(b.as_mut(), &mut buf, Duration::from_millis(200))? {
                Some(n) => {
                    got += 1;
                    bytes += n as u64;
                }
                None => break,
            }
        }
        if got < sent {
            sent = got; // a frame was dropped; carry on from what arrived
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "- {got} frames of 1514 bytes A -> switch -> B in {:.2} s: {:.0} frames/s, {:.1} MB/s",
        secs,
        got as f64 / secs,
        bytes as f64 / secs / 1e6
    );
    Ok(())
}

/// Runs the plug part of the demo.
pub fn run(frames: u32) -> io::Result<()> {
    let base = std::env::temp_dir().join(format!("vdestack-demo-{}", std::process::id()));
    std::fs::create_dir_all(&base)?;
    let result = (|| {
        learning(Kind::Switch, &base.join("switch"))?;
        learning(Kind::Hub, &base.join("hub"))?;
        throughput(&base.join("bench"), frames)
    })();
    let leftovers = std::fs::read_dir(&base)?.count();
    std::fs::remove_dir(&base)?;
    println!(
        "- closed everything: {leftovers} files left behind in {}",
        base.display()
    );
    result
}
