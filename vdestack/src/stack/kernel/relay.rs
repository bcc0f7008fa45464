//! The frame relay: a few shared threads move frames between every stack's taps
//! and their plugs, each over an epoll set of its own.
//!
//! * Each stack is relayed by one thread of a bounded pool ([`threads_max`]), the
//!   least busy one when it is added: stacks that talk to each other run on
//!   different CPUs (as libvdestack's helper processes do), while a thousand
//!   stacks still share a few threads.
//!
//! * It never blocks on a peer: taps are non-blocking and plugs never block on send,
//!   so a full peer drops the frame; or, for the datagram plugs, keeps the rest of
//!   the burst while the relay stops reading that tap until the peer has room
//!   ([`relay_backlog`]: back-pressure, so TCP slows down rather than loses).
//! * It never spins for long: level-triggered epoll, at most [`BATCH`] frames per
//!   event per round, and a side that fails for good leaves the set. A thread that
//!   just moved frames looks for more for a short, adaptive while (at most
//!   [`poll_window::MAX`], yielding its CPU) before it sleeps: on a
//!   request/response exchange that saves waking a sleeping CPU per hop.
//! * A plug that reports [`Recv::Closed`] (or a hard error) leaves the set: its
//!   interface stays but goes quiet, and a warning says so, once.
//! * A thread starts with its first stack and is joined when its last one goes,
//!   so an idle process has no relay thread.
//! * Pairs are added and removed through a queue and an eventfd; removal hands the
//!   tap and plug back to the caller (the dropping stack), so slow plug clean-up
//!   (a coprocess's grace period) never stalls other stacks' frames.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use rustix::event::epoll;
use rustix::event::{eventfd, EventfdFlags};

use crate::vde::gro;
use crate::vde::gso::{VnetHdr, MAX_GSO_FRAME, VNET_HDR_LEN};
use crate::vde::poll_window::PollWindow;
use crate::vde::MAX_FRAME;
use crate::vde::{self, Plug, Recv};

mod batched;

use super::relay_backlog::{self, Backlogs, Tokens};

/// Frames moved per ready fd before looking at the others.
const BATCH: usize = 32;
/// Token of the wake-up eventfd.
const WAKE: u64 = u64::MAX;
/// An `epoll_wait` timeout that only looks.
const NO_WAIT: rustix::event::Timespec = rustix::event::Timespec {
    tv_sec: 0,
    tv_nsec: 0,
};

/// One interface: its tap and its plug.
pub(crate) struct Pair {
    pub tap: OwnedFd,
    pub plug: Box<dyn Plug>,
    /// The tap has `IFF_VNET_HDR` (and the plug said yes to offload): frames move
    /// with their vnet header, large segments whole.
    pub vnet: bool,
    /// The plug passes large segments whole ([`crate::vde::Offload`] turned on): it
    /// receives into the whole buffer, and its frames are not joined.
    pub whole: bool,
    /// The interface and its network (`vde0 (vde:///tmp/sw)`), for the log.
    pub name: String,
}

/// Says, once, that a pair leaves the relay: its interface stays but goes quiet.
/// Without this line a dead switch looks like a silent network.
fn goes_quiet(pair: &Pair, why: std::fmt::Arguments<'_>) {
    log::warn!("vdestack: interface {}: {why}; it goes quiet", pair.name);
}

/// Why a plug that reported [`Recv::Closed`] is gone.
const PLUG_CLOSED: &str = "the network closed the connection (its switch or peer went away)";

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
        self.push_all([c]);
    }

    /// Queues `cs` at once: the thread sees them all in the same wake-up.
    fn push_all<const N: usize>(&self, cs: [Ctl; N]) {
        self.queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(cs);
        // A full counter (never, in practice) still leaves the fd readable.
        let _ = rustix::io::write(&self.wake, &1u64.to_ne_bytes());
    }
}

struct Running {
    shared: Arc<Shared>,
    thread: JoinHandle<()>,
    stacks: usize,
}

/// The relay threads of this process: at most [`threads_max`], each started with
/// its first stack and joined when its last one goes.
struct Pool {
    workers: Vec<Option<Running>>,
    /// Which worker relays each stack.
    owner: BTreeMap<u64, usize>,
    /// The process whose threads these are: a forked child has the records, not
    /// the threads, and starts relays of its own.
    pid: Option<rustix::process::Pid>,
}

static RELAY: Mutex<Pool> = Mutex::new(Pool {
    workers: Vec::new(),
    owner: BTreeMap::new(),
    pid: None,
});
static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// The most relay threads a process runs ([`crate::Config::relay_threads`]): by
/// default one per CPU, at most 4, so two stacks that talk to each other have a
/// CPU each, and a thousand stacks still share a few threads.
pub(crate) fn threads_max() -> usize {
    if let Some(n) = crate::Config::current().relay_threads {
        return n;
    }
    // Asked once: `available_parallelism` reads the cgroup's CPU quota files, a
    // dozen system calls that every relayed stack's creation would otherwise pay.
    static CPUS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CPUS.get_or_init(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .clamp(1, 4)
    })
}

fn start_worker() -> io::Result<Running> {
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
    // Its timer made here, not in the thread: the worker's fds all exist once
    // it is started (tests count them).
    let backlogs = Backlogs::new(&ep);
    let thread = std::thread::Builder::new()
        .name("vdestack-relay".into())
        .spawn(move || run(ep, s2, backlogs))?;
    Ok(Running {
        shared,
        thread,
        stacks: 0,
    })
}

/// A place for one stack on a relay thread, taken before the stack's taps exist
/// so that a thread to start starts meanwhile; [`Slot::fill`] hands it the pairs.
/// Dropped unfilled, it gives the place back (and stops the thread if it was the
/// thread's only one).
pub(crate) struct Slot {
    index: usize,
    /// Taken in this process (a forked child's copy gives nothing back).
    pid: rustix::process::Pid,
    filled: bool,
}

/// Takes a place on the least busy relay thread, starting it if needed.
pub(crate) fn reserve() -> io::Result<Slot> {
    let mut g = RELAY.lock().unwrap_or_else(|e| e.into_inner());
    let me = rustix::process::getpid();
    if g.pid != Some(me) {
        // Inherited through fork: those threads do not exist here. Their fds and
        // handles are the parent's business; forget our copies of them.
        std::mem::forget(std::mem::take(&mut g.workers));
        g.owner.clear();
        g.pid = Some(me);
    }
    let max = threads_max();
    if g.workers.len() < max {
        g.workers.resize_with(max, || None);
    }
    // The least busy worker (a stopped one counts as idle): stacks spread over
    // the threads, so two stacks in a conversation run on two CPUs. (Workers
    // beyond a lowered maximum keep their stacks but take no new one.)
    let index = (0..max)
        .min_by_key(|&i| g.workers[i].as_ref().map_or(0, |r| r.stacks))
        .expect("at least one worker");
    if g.workers[index].is_none() {
        g.workers[index] = Some(start_worker()?);
    }
    // Counted now: the thread is not stopped under the slot's feet.
    g.workers[index]
        .as_mut()
        .expect("worker just started")
        .stacks += 1;
    Ok(Slot {
        index,
        pid: me,
        filled: false,
    })
}

impl Slot {
    /// Hands the pairs to the slot's thread; returns the key to remove them.
    pub(crate) fn fill(mut self, pairs: Vec<Pair>) -> io::Result<u64> {
        let id = NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut g = RELAY.lock().unwrap_or_else(|e| e.into_inner());
        let worker = match g.pid == Some(self.pid) {
            true => g.workers.get_mut(self.index).and_then(Option::as_mut),
            false => None,
        };
        // The slot's count keeps its thread running: only a fork in between
        // (not from this call's thread) could leave none.
        let Some(r) = worker else {
            self.filled = true;
            return Err(io::Error::from_raw_os_error(libc::ESRCH));
        };
        r.shared.push(Ctl::Add(id, pairs));
        g.owner.insert(id, self.index);
        self.filled = true;
        Ok(id)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if self.filled {
            return;
        }
        let mut g = RELAY.lock().unwrap_or_else(|e| e.into_inner());
        if g.pid != Some(self.pid) || self.pid != rustix::process::getpid() {
            return;
        }
        let Some(r) = g.workers.get_mut(self.index).and_then(Option::as_mut) else {
            return;
        };
        r.stacks -= 1;
        if r.stacks == 0 {
            let r = g.workers[self.index].take().expect("worker present");
            r.shared.push(Ctl::Stop);
            let _ = r.thread.join();
        }
    }
}

/// A stack's pairs, back from the relay. When that stopped the stack's relay
/// thread, dropping this closes the pairs first and then joins the thread, which
/// ends meanwhile.
pub(crate) struct Removed {
    pub pairs: Vec<Pair>,
    /// The relay knew the stack (else nothing came back).
    pub found: bool,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Removed {
    fn drop(&mut self) {
        drop(std::mem::take(&mut self.pairs));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Takes a stack's pairs back from the relay (waiting until it has let go of
/// them); stops its relay thread when no stack is left on it (see [`Removed`]).
pub(crate) fn remove(id: u64) -> Removed {
    let mut out = Removed {
        pairs: Vec::new(),
        found: false,
        thread: None,
    };
    let mut g = RELAY.lock().unwrap_or_else(|e| e.into_inner());
    if g.pid != Some(rustix::process::getpid()) {
        return out;
    }
    let Some(index) = g.owner.remove(&id) else {
        return out;
    };
    let Some(r) = g.workers.get_mut(index).and_then(Option::as_mut) else {
        return out;
    };
    out.found = true;
    let (tx, rx) = mpsc::channel();
    r.stacks -= 1;
    if r.stacks > 0 {
        r.shared.push(Ctl::Remove(id, tx));
    } else {
        // Its last stack: the removal and the stop go in one wake-up (the thread
        // hands the pairs back, then ends), not in two round trips.
        let r = g.workers[index].take().expect("worker present");
        r.shared.push_all([Ctl::Remove(id, tx), Ctl::Stop]);
        out.thread = Some(r.thread);
    }
    drop(g);
    out.pairs = rx.recv().unwrap_or_default();
    out
}

/// Whether a relay thread is running (for tests and diagnostics).
#[cfg(feature = "diagnostics")]
pub(crate) fn relay_running() -> bool {
    let g = RELAY.lock().unwrap_or_else(|e| e.into_inner());
    g.pid == Some(rustix::process::getpid()) && g.workers.iter().any(Option::is_some)
}

struct Entry {
    pairs: Vec<Option<Pair>>,
    /// Pairs whose plug closed: kept (so the stack gets them back) but quiet.
    quiet: Vec<Pair>,
}

fn token(id: u64, index: usize, plug_side: bool) -> u64 {
    (id << 20) | ((index as u64) << 1) | plug_side as u64
}

/// The tokens of pair `index` of stack `id`.
fn tokens(id: u64, index: usize) -> Tokens {
    Tokens {
        tap: token(id, index, false),
        plug: token(id, index, true),
    }
}

/// The pair a token names, if it is still relayed.
fn pair_of(stacks: &mut HashMap<u64, Entry>, t: u64) -> Option<&mut Pair> {
    let (id, index) = (t >> 20, ((t & 0xfffff) >> 1) as usize);
    stacks.get_mut(&id)?.pairs.get_mut(index)?.as_mut()
}

fn run(ep: OwnedFd, shared: Arc<Shared>, mut backlogs: Backlogs) {
    let mut stacks: HashMap<u64, Entry> = HashMap::new();
    // One buffer for every pair, big enough for a large segment and its header.
    let mut buf = vec![0u8; VNET_HDR_LEN + MAX_GSO_FRAME];
    let mut events: Vec<epoll::Event> = Vec::with_capacity(256);
    let mut window = PollWindow::new(crate::Config::current().relay_poll);
    // Bytes moved since the thread last looked for events.
    let mut moved = 0usize;
    loop {
        events.clear();
        window.moved(moved, Instant::now());
        moved = 0;
        poll_briefly(&ep, &mut events, &mut window);
        let waited = if events.is_empty() {
            let asleep = Instant::now();
            let r = epoll::wait(&ep, rustix::buffer::spare_capacity(&mut events), None);
            window.slept(asleep.elapsed());
            r
        } else {
            Ok(0)
        };
        match waited {
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
            if t == relay_backlog::TIMER {
                for tk in backlogs.expired() {
                    if let Some(pair) = pair_of(&mut stacks, tk.plug) {
                        backlogs.give_up(&ep, tk, pair);
                    }
                }
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
                backlog_room(&ep, &mut backlogs, tokens(id, index), pair, ev.flags);
                wants_recv(ev.flags) && plug_to_tap(pair, &mut buf, &mut moved)
            } else {
                let closed = tap_to_plug(pair, &mut buf, &mut moved);
                if !closed {
                    backlogs.park_if_kept(&ep, tokens(id, index), pair);
                }
                closed
            };
            if closed {
                if let Some(mut p) = entry.pairs[index].take() {
                    backlogs.forget(&ep, tokens(id, index), &mut p);
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
                    for (i, mut p) in pairs.into_iter().enumerate() {
                        backlogs.offer(&mut p);
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
                            goes_quiet(&p, format_args!("the relay cannot watch it: {e}"));
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
                        let pairs = entry.pairs.into_iter().enumerate();
                        for (i, mut p) in pairs.filter_map(|(i, p)| Some((i, p?))) {
                            drain_tap(&mut p, &mut buf);
                            backlogs.forget(&ep, tokens(id, i), &mut p);
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

/// Looks for events without sleeping for as long as `window` says, yielding the
/// CPU between looks (see [`poll_window`]).
fn poll_briefly(ep: &OwnedFd, events: &mut Vec<epoll::Event>, window: &mut PollWindow) {
    let span = window.window();
    if span.is_zero() {
        return;
    }
    let start = Instant::now();
    let mut last = start;
    loop {
        let now = epoll::wait(ep, rustix::buffer::spare_capacity(events), Some(&NO_WAIT));
        if now.is_ok() && !events.is_empty() {
            window.found();
            return;
        }
        if !window.next_look(start, span, &mut last) {
            return;
        }
    }
}

/// The plug side of a pair that waits for room ([`relay_backlog`]) has it, or an
/// error to tell.
fn backlog_room(
    ep: &OwnedFd,
    backlogs: &mut Backlogs,
    t: Tokens,
    pair: &mut Pair,
    flags: epoll::EventFlags,
) {
    use epoll::EventFlags as F;
    if flags.intersects(F::OUT | F::ERR | F::HUP) && backlogs.waiting(t.plug) {
        backlogs.writable(ep, t, pair);
    }
}

/// Whether a plug-side event asks for a receive (not only room to send).
fn wants_recv(flags: epoll::EventFlags) -> bool {
    use epoll::EventFlags as F;
    flags.intersects(F::IN | F::ERR | F::HUP)
}

/// Moves up to [`BATCH`] frames from the tap to the plug; a full plug drops them,
/// or keeps them ([`crate::vde::Backlog`]): then it stops, and the relay waits for
/// the plug to have room before the tap is read again ([`relay_backlog`]).
/// Returns whether the tap failed for good (the pair then goes quiet rather than
/// waking the relay for ever).
fn tap_to_plug(pair: &mut Pair, buf: &mut [u8], moved: &mut usize) -> bool {
    for _ in 0..BATCH {
        if kept(pair) > 0 {
            return false;
        }
        let got = rustix::io::read(&pair.tap, &mut *buf);
        if let Ok(n) = got {
            *moved += n;
        }
        match got {
            Ok(0) => {
                goes_quiet(pair, format_args!("its tap closed"));
                return true;
            }
            Ok(n) if pair.vnet => {
                // Shorter than a header: nothing the kernel would send.
                if let Some(hdr) = VnetHdr::parse(&buf[..n]) {
                    let _ = vde::send_segment(&mut *pair.plug, &hdr, &buf[VNET_HDR_LEN..n]);
                }
            }
            Ok(n) => {
                // WouldBlock: a full peer, the frame is dropped; other errors are
                // per-frame too (a transport's unreachable peer).
                let _ = pair.plug.send(&buf[..n]);
            }
            Err(rustix::io::Errno::AGAIN | rustix::io::Errno::INTR) => return false,
            Err(e) => {
                goes_quiet(pair, format_args!("reading its tap failed: {e}"));
                return true;
            }
        }
    }
    false
}

/// How many frames the pair's plug keeps for a full peer.
fn kept(pair: &mut Pair) -> usize {
    pair.plug.backlog().map_or(0, |b| b.kept())
}

/// How many frames a removed stack's tap may still hand over ([`drain_tap`]).
const DRAIN_FRAMES: usize = 1024;
/// How long a removed stack's last frames may wait for a full peer ([`drain_tap`]).
const DRAIN_WAIT: std::time::Duration = std::time::Duration::from_millis(100);

/// Sends what a removed stack's kernel already queued in its tap: a program that
/// writes its last bytes, closes its socket and drops the stack at once (a
/// one-shot server) would otherwise lose that data and its FIN, which the kernel
/// handed to the tap before the drop. Bounded ([`DRAIN_FRAMES`], [`DRAIN_WAIT`]
/// for a full peer), so a removal never stalls the thread's other stacks for long.
fn drain_tap(pair: &mut Pair, buf: &mut [u8]) {
    let deadline = Instant::now() + DRAIN_WAIT;
    let mut budget = DRAIN_FRAMES / BATCH;
    while budget > 0 {
        budget -= 1;
        if let Some(b) = pair.plug.backlog().filter(|b| b.kept() > 0) {
            let left = deadline.saturating_duration_since(Instant::now());
            let room = !left.is_zero()
                && crate::sys::poll_writable(b.room_fd(), Some(left)).unwrap_or(false);
            if !room || !matches!(b.flush(), Ok(true)) {
                b.drop_kept();
                return;
            }
        }
        let mut moved = 0;
        if tap_to_plug(pair, buf, &mut moved) || moved == 0 && kept(pair) == 0 {
            return;
        }
    }
}

/// Moves up to [`BATCH`] frames from the plug to the tap. Returns whether the plug
/// is finished (closed, or failing for good).
fn plug_to_tap(pair: &mut Pair, buf: &mut [u8], moved: &mut usize) -> bool {
    if !pair.whole && pair.plug.recv_batching().is_some() {
        return batched::plug_to_tap(pair, buf, moved);
    }
    if pair.vnet {
        return plug_to_vnet_tap(pair, buf, moved);
    }
    for _ in 0..BATCH {
        match pair.plug.recv(buf) {
            Ok(Recv::Frame(n)) => {
                *moved += n;
                if n >= crate::vde::MIN_FRAME {
                    // A down interface (EIO) or a full queue drops the frame.
                    let _ = rustix::io::write(pair.tap.as_fd(), &buf[..n.min(buf.len())]);
                }
            }
            Ok(Recv::Nothing) => {}
            Ok(Recv::Closed) => {
                goes_quiet(pair, format_args!("{PLUG_CLOSED}"));
                return true;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                goes_quiet(pair, format_args!("its plug failed: {e}"));
                return true;
            }
        }
    }
    false
}

/// [`plug_to_tap`] for a tap with `IFF_VNET_HDR`: each frame is written after its
/// header in one `write` (a plain frame gets an empty header: the kernel checks its
/// checksums as for any frame). Consecutive TCP segments of one flow are joined
/// first ([`gro`]): one write and one pass through the kernel's TCP per run.
fn plug_to_vnet_tap(pair: &mut Pair, buf: &mut [u8], moved: &mut usize) -> bool {
    let mut hdr = VnetHdr::PLAIN;
    // The run being joined: its frame is at buf[VNET_HDR_LEN..][..run.frame_len()].
    let mut run: Option<gro::Run> = None;
    for _ in 0..BATCH {
        let mut at = VNET_HDR_LEN + run.as_ref().map_or(0, |r| r.frame_len());
        if run.is_some() && buf.len() - at < MAX_FRAME {
            flush_run(pair, buf, &mut run);
            at = VNET_HDR_LEN;
        }
        match vde::recv_segment(&mut *pair.plug, &mut hdr, &mut buf[at..]) {
            Ok(Recv::Frame(n)) if n >= crate::vde::MIN_FRAME => {
                let n = n.min(buf.len() - at);
                *moved += n;
                let seg = if !pair.whole && hdr.is_plain() && hdr.gso_type == 0 {
                    gro::segment(&buf[at..at + n])
                } else {
                    None
                };
                if let (Some(r), Some(s)) = (run.as_mut(), seg.as_ref()) {
                    let (joined, next) = buf.split_at(at);
                    if r.continues(&joined[VNET_HDR_LEN..], &next[..n], s) {
                        // Its payload follows the run's.
                        buf.copy_within(at + s.hdr_len..at + n, at);
                        r.push(s);
                        continue;
                    }
                }
                flush_run(pair, buf, &mut run);
                match seg {
                    Some(s) => {
                        buf.copy_within(at..at + n, VNET_HDR_LEN);
                        run = Some(gro::Run::start(s));
                    }
                    None => {
                        // The header goes just before the frame (over the tail of
                        // the run just written, if any).
                        buf[at - VNET_HDR_LEN..at].copy_from_slice(&hdr.to_bytes());
                        // A down interface (EIO) or a full queue drops the frame.
                        let _ =
                            rustix::io::write(pair.tap.as_fd(), &buf[at - VNET_HDR_LEN..at + n]);
                    }
                }
            }
            Ok(Recv::Frame(_) | Recv::Nothing) => {}
            Ok(Recv::Closed) => {
                flush_run(pair, buf, &mut run);
                goes_quiet(pair, format_args!("{PLUG_CLOSED}"));
                return true;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                flush_run(pair, buf, &mut run);
                return false;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                flush_run(pair, buf, &mut run);
                goes_quiet(pair, format_args!("its plug failed: {e}"));
                return true;
            }
        }
    }
    flush_run(pair, buf, &mut run);
    false
}

/// Writes the run being joined (if any) to the tap, as one large segment.
fn flush_run(pair: &Pair, buf: &mut [u8], run: &mut Option<gro::Run>) {
    let Some(r) = run.take() else {
        return;
    };
    let end = VNET_HDR_LEN + r.frame_len();
    let hdr = r.finish(&mut buf[VNET_HDR_LEN..end]);
    buf[..VNET_HDR_LEN].copy_from_slice(&hdr.to_bytes());
    // A down interface (EIO) or a full queue drops it.
    let _ = rustix::io::write(pair.tap.as_fd(), &buf[..end]);
}
