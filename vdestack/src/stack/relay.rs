//! The frame relay: one shared thread moves frames between every stack's taps and
//! their plugs, over one epoll set.
//!
//! * It never blocks on a peer: taps are non-blocking and plugs never block on send,
//!   so a full peer drops the frame.
//! * It never spins: level-triggered epoll, at most [`BATCH`] frames per event per
//!   round, and a side that fails for good leaves the set.
//! * A plug that reports [`Recv::Closed`] (or a hard error) leaves the set: its
//!   interface stays but goes quiet.
//! * The thread starts with the first stack that has an interface and is joined
//!   when the last one goes, so an idle process has no relay thread.
//! * Pairs are added and removed through a queue and an eventfd; removal hands the
//!   tap and plug back to the caller (the dropping stack), so slow plug clean-up
//!   (a coprocess's grace period) never stalls other stacks' frames.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use rustix::event::epoll;
use rustix::event::{eventfd, EventfdFlags};

use crate::vde::gso::{VnetHdr, MAX_GSO_FRAME, VNET_HDR_LEN};
use crate::vde::{Plug, Recv};

/// Frames moved per ready fd before looking at the others.
const BATCH: usize = 32;
/// Token of the wake-up eventfd.
const WAKE: u64 = u64::MAX;

/// One interface: its tap and its plug.
pub(crate) struct Pair {
    pub tap: OwnedFd,
    pub plug: Box<dyn Plug>,
    /// The tap has `IFF_VNET_HDR` (and the plug said yes to offload): frames move
    /// with their vnet header, large segments whole.
    pub vnet: bool,
}

enum Ctl {
    Add(u64, Vec<Pair>),
    Remove(u64, mpsc::Sender<Vec<Pair>>),
    Stop,
}

struct Shared {
    queue: Mutex<VecDeque<Ctl>>,
    wake: OwnedFd,
}

impl Shared {
    fn push(&self, c: Ctl) {
        self.queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push_back(c);
        // A full counter (never, in practice) still leaves the fd readable.
        let _ = rustix::io::write(&self.wake, &1u64.to_ne_bytes());
    }
}

struct Running {
    shared: Arc<Shared>,
    thread: JoinHandle<()>,
    stacks: usize,
    /// The process whose thread this is: a forked child has the record, not the
    /// thread, and starts a relay of its own.
    pid: rustix::process::Pid,
}

static RELAY: Mutex<Option<Running>> = Mutex::new(None);
static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// Hands the pairs of a new stack to the relay; returns the key to remove them.
pub(crate) fn add(pairs: Vec<Pair>) -> io::Result<u64> {
    let id = NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut g = RELAY.lock().unwrap_or_else(|e| e.into_inner());
    if g.as_ref()
        .is_some_and(|r| r.pid != rustix::process::getpid())
    {
        // Inherited through fork: that thread does not exist here. Its fds and
        // handle are the parent's business; forget our copy of them.
        std::mem::forget(g.take());
    }
    if g.is_none() {
        let wake = eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)?;
        let ep = epoll::create(epoll::CreateFlags::CLOEXEC)?;
        epoll::add(
            &ep,
            &wake,
            epoll::EventData::new_u64(WAKE),
            epoll::EventFlags::IN,
        )?;
        let shared = Arc::new(Shared {
            queue: Mutex::new(VecDeque::new()),
            wake,
        });
        let s2 = shared.clone();
        let thread = std::thread::Builder::new()
            .name("vdestack-relay".into())
            .spawn(move || run(ep, s2))?;
        *g = Some(Running {
            shared,
            thread,
            stacks: 0,
            pid: rustix::process::getpid(),
        });
    }
    let r = g.as_mut().expect("relay just started");
    r.stacks += 1;
    r.shared.push(Ctl::Add(id, pairs));
    Ok(id)
}

/// Takes a stack's pairs back from the relay (waiting until it has let go of
/// them); stops the relay thread when no stack is left.
pub(crate) fn remove(id: u64) -> Vec<Pair> {
    let mut g = RELAY.lock().unwrap_or_else(|e| e.into_inner());
    let Some(r) = g.as_mut().filter(|r| r.pid == rustix::process::getpid()) else {
        return Vec::new();
    };
    let (tx, rx) = mpsc::channel();
    r.shared.push(Ctl::Remove(id, tx));
    let pairs = rx.recv().unwrap_or_default();
    r.stacks -= 1;
    if r.stacks == 0 {
        let r = g.take().expect("relay present");
        r.shared.push(Ctl::Stop);
        let _ = r.thread.join();
    }
    pairs
}

/// Whether the relay thread is running (for tests and diagnostics).
pub fn relay_running() -> bool {
    RELAY
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .is_some_and(|r| r.pid == rustix::process::getpid())
}

struct Entry {
    pairs: Vec<Option<Pair>>,
    /// Pairs whose plug closed: kept (so the stack gets them back) but quiet.
    quiet: Vec<Pair>,
}

fn token(id: u64, index: usize, plug_side: bool) -> u64 {
    (id << 20) | ((index as u64) << 1) | plug_side as u64
}

fn run(ep: OwnedFd, shared: Arc<Shared>) {
    let mut stacks: HashMap<u64, Entry> = HashMap::new();
    // One buffer for every pair, big enough for a large segment and its header.
    let mut buf = vec![0u8; VNET_HDR_LEN + MAX_GSO_FRAME];
    let mut events: Vec<epoll::Event> = Vec::with_capacity(256);
    loop {
        events.clear();
        match epoll::wait(&ep, rustix::buffer::spare_capacity(&mut events), None) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => {
                log::error!("vdestack relay: epoll_wait: {e}");
                // Nothing sensible to do but wait for control messages slowly.
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        }
        for ev in &events {
            let t = ev.data.u64();
            if t == WAKE {
                continue;
            }
            let (id, index, plug_side) = ((t >> 20), ((t & 0xfffff) >> 1) as usize, t & 1 == 1);
            let Some(entry) = stacks.get_mut(&id) else {
                continue;
            };
            let Some(Some(pair)) = entry.pairs.get_mut(index) else {
                continue;
            };
            let closed = if plug_side {
                plug_to_tap(pair, &mut buf)
            } else {
                tap_to_plug(pair, &mut buf)
            };
            if closed {
                if let Some(p) = entry.pairs[index].take() {
                    let _ = epoll::delete(&ep, &p.tap);
                    let _ = epoll::delete(&ep, p.plug.data_fd());
                    entry.quiet.push(p);
                }
            }
        }
        // Control messages (after the frames: a removed stack's events above were
        // handled while its fds were still ours).
        let mut buf8 = [0u8; 8];
        let _ = rustix::io::read(&shared.wake, &mut buf8);
        loop {
            let c = shared
                .queue
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .pop_front();
            match c {
                None => break,
                Some(Ctl::Stop) => return,
                Some(Ctl::Add(id, pairs)) => {
                    let mut entry = Entry {
                        pairs: Vec::new(),
                        quiet: Vec::new(),
                    };
                    for (i, p) in pairs.into_iter().enumerate() {
                        let ok = epoll::add(
                            &ep,
                            &p.tap,
                            epoll::EventData::new_u64(token(id, i, false)),
                            epoll::EventFlags::IN,
                        )
                        .and_then(|_| {
                            epoll::add(
                                &ep,
                                p.plug.data_fd(),
                                epoll::EventData::new_u64(token(id, i, true)),
                                epoll::EventFlags::IN,
                            )
                        });
                        if let Err(e) = ok {
                            log::warn!("vdestack relay: cannot watch an interface: {e}");
                            let _ = epoll::delete(&ep, &p.tap);
                            entry.pairs.push(None);
                            entry.quiet.push(p);
                        } else {
                            entry.pairs.push(Some(p));
                        }
                    }
                    stacks.insert(id, entry);
                }
                Some(Ctl::Remove(id, reply)) => {
                    let mut back = Vec::new();
                    if let Some(entry) = stacks.remove(&id) {
                        for p in entry.pairs.into_iter().flatten() {
                            let _ = epoll::delete(&ep, &p.tap);
                            let _ = epoll::delete(&ep, p.plug.data_fd());
                            back.push(p);
                        }
                        back.extend(entry.quiet);
                    }
                    let _ = reply.send(back);
                }
            }
        }
    }
}

/// Moves up to [`BATCH`] frames from the tap to the plug; a full plug drops them.
/// Returns whether the tap failed for good (the pair then goes quiet rather than
/// waking the relay for ever).
fn tap_to_plug(pair: &mut Pair, buf: &mut [u8]) -> bool {
    for _ in 0..BATCH {
        match rustix::io::read(&pair.tap, &mut *buf) {
            Ok(0) => return true,
            Ok(n) if pair.vnet => {
                // Shorter than a header: nothing the kernel would send.
                if let Some(hdr) = VnetHdr::parse(&buf[..n]) {
                    let _ = pair.plug.send_offload(&hdr, &buf[VNET_HDR_LEN..n]);
                }
            }
            Ok(n) => {
                // WouldBlock: a full peer, the frame is dropped; other errors are
                // per-frame too (a transport's unreachable peer).
                let _ = pair.plug.send(&buf[..n]);
            }
            Err(rustix::io::Errno::AGAIN | rustix::io::Errno::INTR) => return false,
            Err(e) => {
                log::warn!("vdestack relay: reading a tap failed, it goes quiet: {e}");
                return true;
            }
        }
    }
    false
}

/// Moves up to [`BATCH`] frames from the plug to the tap. Returns whether the plug
/// is finished (closed, or failing for good).
fn plug_to_tap(pair: &mut Pair, buf: &mut [u8]) -> bool {
    if pair.vnet {
        return plug_to_vnet_tap(pair, buf);
    }
    for _ in 0..BATCH {
        match pair.plug.recv(buf) {
            Ok(Recv::Frame(n)) => {
                if n >= crate::vde::MIN_FRAME {
                    // A down interface (EIO) or a full queue drops the frame.
                    let _ = rustix::io::write(pair.tap.as_fd(), &buf[..n.min(buf.len())]);
                }
            }
            Ok(Recv::Nothing) => {}
            Ok(Recv::Closed) => return true,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                log::warn!("vdestack relay: a plug failed, its interface goes quiet: {e}");
                return true;
            }
        }
    }
    false
}

/// [`plug_to_tap`] for a tap with `IFF_VNET_HDR`: each frame is written after its
/// header in one `write` (a plain frame gets an empty header: the kernel checks its
/// checksums as for any frame).
fn plug_to_vnet_tap(pair: &mut Pair, buf: &mut [u8]) -> bool {
    let mut hdr = VnetHdr::PLAIN;
    for _ in 0..BATCH {
        let (head, body) = buf.split_at_mut(VNET_HDR_LEN);
        match pair.plug.recv_offload(&mut hdr, body) {
            Ok(Recv::Frame(n)) => {
                if n >= crate::vde::MIN_FRAME {
                    head.copy_from_slice(&hdr.to_bytes());
                    // A down interface (EIO) or a full queue drops the frame.
                    let _ = rustix::io::write(pair.tap.as_fd(), &buf[..VNET_HDR_LEN + n]);
                }
            }
            Ok(Recv::Nothing) => {}
            Ok(Recv::Closed) => return true,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                log::warn!("vdestack relay: a plug failed, its interface goes quiet: {e}");
                return true;
            }
        }
    }
    false
}
