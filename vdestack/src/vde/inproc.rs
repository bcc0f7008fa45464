//! `inproc://NAME[/hub]`: an Ethernet segment inside this process. Plugs of one
//! process that open the same NAME share it, as ports of a learning switch (or of a
//! hub, with `/hub`), with no socket and no extra process: a frame sent on one plug is
//! copied straight into the receive queue of the plugs it is for. It is the embedded
//! default network of stacks of one program, and of tests.
//!
//! Each plug's [`Plug::data_fd`] is an eventfd that is readable exactly while its
//! queue holds frames. A full queue (a reader that does not keep up) drops new frames
//! for it; a sender whose every destination is full gets `WouldBlock`. The segment
//! goes away with its last plug.
//!
//! Large segments: a plug that said yes to [`Offload::enable`] (a stack whose
//! tap has `IFF_VNET_HDR`) sends and receives frames with a [`VnetHdr`]: TCP
//! segments of up to 64 KiB, checksums pending. Queues hold (header, frame), so such
//! a frame reaches another offloading port whole, in one copy; every other port
//! gets it cut into ordinary frames with complete checksums ([`gso::to_plain`]),
//! so plain plugs and cables to C switches see only what a wire would carry.
//!
//! A user-space stack's plug needs no fd at all ([`InProc::open_with_waker`]):
//! rather than an eventfd, the port calls the stack's waker when its queue stops
//! being empty, so 100,000 such stacks fit in one process's fd limit.
//!
//! A stack's plug goes one step further ([`TapDelivery::attach_tap`]): its port writes
//! frames straight into the stack's tap from the sender's thread, so a frame from
//! one stack to another is one tap read and one tap write in a single relay
//! thread, with no queue and no second thread to wake. The segment's lock is held
//! only to pick the destinations, never across a copy or a tap write.

use std::collections::{HashMap, VecDeque};
use std::io::{self, IoSlice};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Instant;

use rustix::event::{eventfd, EventfdFlags};

use super::gso::{self, VnetHdr};
use super::netnode::forward::{Forwarder, PortId, DEFAULT_EXPIRE, HOST};
use super::netnode::Kind;
use super::url::{bad_value, parse_url_style};
use super::{Offload, Plug, Recv, TapDelivery, MAX_FRAME, MIN_FRAME};

/// Frames one plug may have waiting before new ones for it are dropped.
const QUEUE_FRAMES: usize = 512;

/// Bytes one plug may have waiting (large segments fill a queue in fewer frames).
const QUEUE_BYTES: usize = 4 << 20;

/// Spare buffers a plug keeps for reuse, so a steady flow does not allocate.
const SPARE_BUFFERS: usize = 64;

/// How many addresses a segment's switch learns.
const TABLE_SIZE: usize = 1024;

/// The segments of this process, by name.
static SEGMENTS: Mutex<Option<HashMap<String, Weak<Segment>>>> = Mutex::new(None);

/// Locks a mutex, going on if a panicking thread poisoned it: the data under these
/// locks (queues, tables) stays consistent at every step.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[derive(Debug)]
struct Queue {
    frames: VecDeque<(VnetHdr, Vec<u8>)>,
    /// Bytes in `frames`.
    bytes: usize,
    spare: Vec<Vec<u8>>,
    /// The tap frames go straight into, once [`TapDelivery::attach_tap`] set it: then the
    /// queue stays empty and the sender's thread writes the frame to the tap.
    tap: Option<DirectTap>,
}

/// A stack's tap that a port writes its frames into (a duplicate of the relay's fd:
/// the same open tap, non-blocking).
#[derive(Debug)]
struct DirectTap {
    fd: OwnedFd,
    /// The tap has `IFF_VNET_HDR`: each frame goes after its header.
    vnet: bool,
}

impl DirectTap {
    /// Writes one frame (a down interface's EIO drops it, as a wire would).
    fn write(&self, hdr: &VnetHdr, frame: &[u8]) {
        if self.vnet {
            let h = hdr.to_bytes();
            let _ = rustix::io::writev(&self.fd, &[IoSlice::new(&h), IoSlice::new(frame)]);
        } else {
            let _ = rustix::io::write(&self.fd, frame);
        }
    }
}

/// What a plug's owner is woken with when frames arrive for it
/// ([`InProc::open_with_waker`]): called by the sender's thread, after it let go
/// of the port's queue (the waker may receive them), each time the queue stops
/// being empty.
pub type Waker = Arc<dyn Fn() + Send + Sync>;

/// How a port says it has frames.
enum Ready {
    /// An eventfd readable while the queue is not empty; written and read only
    /// under the queue's lock.
    Fd(OwnedFd),
    /// A waker called when the queue stops being empty.
    Waker(Waker),
}

impl std::fmt::Debug for Ready {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ready::Fd(fd) => f.debug_tuple("Fd").field(fd).finish(),
            Ready::Waker(_) => f.write_str("Waker"),
        }
    }
}

impl Ready {
    fn signal(&self) {
        match self {
            // 1 is never near the eventfd's limit, so this cannot block or fail.
            Ready::Fd(fd) => {
                let _ = rustix::io::write(fd, &1u64.to_ne_bytes());
            }
            Ready::Waker(w) => w(),
        }
    }

    fn clear(&self) {
        if let Ready::Fd(fd) = self {
            let mut counter = [0u8; 8];
            let _ = rustix::io::read(fd, &mut counter);
        }
    }
}

/// The fd a waker's plug shows as its [`Plug::data_fd`]: an eventfd never
/// signalled (its owner is woken by the waker), one for the process.
fn never_ready() -> BorrowedFd<'static> {
    static NEVER: std::sync::OnceLock<OwnedFd> = std::sync::OnceLock::new();
    NEVER
        .get_or_init(|| {
            eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)
                .expect("an eventfd for inproc's waker plugs")
        })
        .as_fd()
}

/// One plug's receive side.
#[derive(Debug)]
struct Port {
    queue: Mutex<Queue>,
    /// Says when `queue` has frames.
    ready: Ready,
    /// Takes large segments whole (set once by [`Offload::enable`], read under
    /// the segment's lock).
    offload: AtomicBool,
}

impl Port {
    /// Queues a copy of `frame` with its header. Returns false if the queue was full.
    fn push(&self, hdr: &VnetHdr, frame: &[u8]) -> bool {
        let mut q = lock(&self.queue);
        if let Some(tap) = &q.tap {
            // Under the queue's lock: frames for one port stay in order.
            tap.write(hdr, frame);
            return true;
        }
        if q.frames.len() >= QUEUE_FRAMES || q.bytes + frame.len() > QUEUE_BYTES {
            return false;
        }
        let mut buf = q.spare.pop().unwrap_or_default();
        buf.clear();
        buf.extend_from_slice(frame);
        q.bytes += buf.len();
        q.frames.push_back((*hdr, buf));
        if q.frames.len() == 1 {
            match &self.ready {
                // Under the lock: the eventfd is readable exactly while frames wait.
                Ready::Fd(_) => self.ready.signal(),
                // After it: the waker may take the frames at once (a user-space
                // stack polled by this very thread, `stack/user/pool.rs`).
                Ready::Waker(w) => {
                    drop(q);
                    w();
                }
            }
        }
        true
    }
}

#[derive(Debug)]
struct Inner {
    fwd: Forwarder,
    ports: HashMap<PortId, Arc<Port>>,
    next_id: PortId,
    dests: Vec<PortId>,
    stats: Stats,
}

/// What a segment carried (diagnostics and tests), from [`stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Frames sent into the segment.
    pub frames: u64,
    /// Large or checksum-pending frames handed whole to an offloading port (counted
    /// per destination).
    pub passed_whole: u64,
    /// Such frames made plain for a port that does not offload (per destination).
    pub made_plain: u64,
    /// The ordinary frames that made.
    pub plain_pieces: u64,
    /// Such frames dropped because [`gso::to_plain`] refused them.
    pub refused: u64,
    /// The largest frame sent into the segment, in bytes.
    pub largest: usize,
}

/// The counters of segment `name` (as in `inproc://NAME`), while it exists.
pub fn stats(name: &str) -> Option<Stats> {
    let all = lock(&SEGMENTS);
    let seg = all.as_ref()?.get(name)?.upgrade()?;
    drop(all);
    let s = lock(&seg.inner).stats;
    Some(s)
}

/// A named segment.
#[derive(Debug)]
struct Segment {
    inner: Mutex<Inner>,
    /// Its name in [`SEGMENTS`].
    name: String,
}

/// A segment whose last plug is gone leaves the table (a dead entry would keep
/// the segment's memory, and looking through many would make each open slow).
impl Drop for Segment {
    fn drop(&mut self) {
        let mut all = lock(&SEGMENTS);
        if let Some(all) = all.as_mut() {
            // A new segment of the same name may already stand there.
            if all.get(&self.name).is_some_and(|w| w.strong_count() == 0) {
                all.remove(&self.name);
            }
        }
    }
}

/// A plug on an in-process segment.
#[derive(Debug)]
pub struct InProc {
    segment: Arc<Segment>,
    id: PortId,
    port: Arc<Port>,
    /// Where large frames are cut for plain ports (empty until the first one).
    scratch: Vec<u8>,
    /// The ports a frame goes to (kept to reuse its memory).
    targets: Vec<(Arc<Port>, bool)>,
}

impl InProc {
    /// Opens `inproc://NAME` (a learning switch) or `inproc://NAME/hub`. The first
    /// plug of a NAME decides which; the segment lives while any plug is open.
    pub fn open(arg: &str) -> io::Result<Self> {
        let ready = Ready::Fd(eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)?);
        Self::open_ready(arg, ready)
    }

    /// Opens `inproc://NAME` as [`InProc::open`] does, with no fd of its own:
    /// `waker` is called (by the sender's thread) each time frames arrive in an
    /// empty queue; the owner then calls [`Plug::recv`] until `WouldBlock`. Its
    /// [`Plug::data_fd`] is never readable.
    pub fn open_with_waker(arg: &str, waker: Waker) -> io::Result<Self> {
        Self::open_ready(arg, Ready::Waker(waker))
    }

    fn open_ready(arg: &str, ready: Ready) -> io::Result<Self> {
        let (name, opts) = parse_url_style("inproc", arg, &["hub", "switch"])?;
        if name.is_empty() {
            return Err(bad_value("inproc", "name", arg, "inproc://NAME needs a name").into());
        }
        if opts.has("hub") && opts.has("switch") {
            return Err(bad_value(
                "inproc",
                "hub",
                arg,
                "a segment is a hub or a switch, not both",
            )
            .into());
        }
        let kind = if opts.has("hub") {
            Kind::Hub
        } else {
            Kind::Switch
        };
        let segment = {
            let mut all = lock(&SEGMENTS);
            let all = all.get_or_insert_with(HashMap::new);
            match all.get(&name).and_then(Weak::upgrade) {
                Some(s) => s,
                None => {
                    let mut fwd = Forwarder::new(kind, DEFAULT_EXPIRE, TABLE_SIZE);
                    fwd.remove_port(HOST); // nobody stands behind the host port here
                    let s = Arc::new(Segment {
                        inner: Mutex::new(Inner {
                            fwd,
                            ports: HashMap::new(),
                            next_id: 1,
                            dests: Vec::new(),
                            stats: Stats::default(),
                        }),
                        name: name.clone(),
                    });
                    all.insert(name.clone(), Arc::downgrade(&s));
                    s
                }
            }
        };
        let port = Arc::new(Port {
            queue: Mutex::new(Queue {
                frames: VecDeque::new(),
                bytes: 0,
                spare: Vec::new(),
                tap: None,
            }),
            ready,
            offload: AtomicBool::new(false),
        });
        let id = {
            let mut inner = lock(&segment.inner);
            let id = inner.next_id;
            inner.next_id += 1;
            inner.fwd.add_port(id);
            inner.ports.insert(id, Arc::clone(&port));
            id
        };
        Ok(Self {
            segment,
            id,
            port,
            scratch: Vec::new(),
            targets: Vec::new(),
        })
    }

    /// Hands `frame` to the ports the switch picks: whole to a port that offloads or
    /// when it is plain, made plain otherwise. The segment's lock is held only to
    /// pick them: the copies (and the receiving stacks' work, for ports that write
    /// into a tap) happen outside it, so senders on one segment run in parallel.
    fn deliver(&mut self, hdr: &VnetHdr, frame: &[u8]) -> io::Result<usize> {
        if frame.len() < MIN_FRAME {
            return Ok(frame.len());
        }
        let plain = hdr.is_plain();
        let targets = &mut self.targets;
        targets.clear();
        {
            let mut inner = lock(&self.segment.inner);
            let Inner {
                fwd,
                ports,
                dests,
                stats,
                ..
            } = &mut *inner;
            stats.frames += 1;
            stats.largest = stats.largest.max(frame.len());
            fwd.forward(self.id, frame, Instant::now(), dests);
            for d in dests.iter() {
                if let Some(p) = ports.get(d) {
                    let whole = plain || p.offload.load(Ordering::Relaxed);
                    stats.passed_whole += u64::from(whole && !plain);
                    targets.push((Arc::clone(p), whole));
                }
            }
            if dests.is_empty() {
                return Ok(frame.len()); // nobody to send to: like a cable to nothing
            }
        }
        let mut delivered = false;
        for (p, whole) in targets.drain(..) {
            if whole {
                delivered |= p.push(hdr, frame);
                continue;
            }
            let scratch = &mut self.scratch;
            if scratch.is_empty() {
                scratch.resize(MAX_FRAME, 0); // once per plug that sends large frames
            }
            let mut any = false;
            let made = gso::to_plain(hdr, frame, scratch, |seg| {
                any |= p.push(&VnetHdr::PLAIN, seg);
            });
            let mut inner = lock(&self.segment.inner);
            match made {
                Ok(n) => {
                    inner.stats.made_plain += 1;
                    inner.stats.plain_pieces += n as u64;
                }
                Err(e) => {
                    inner.stats.refused += 1;
                    log::debug!("inproc: a large frame dropped: {e}");
                }
            }
            delivered |= any;
        }
        if delivered {
            Ok(frame.len())
        } else {
            Err(io::ErrorKind::WouldBlock.into())
        }
    }

    /// Takes the next queued frame and its header, copying the frame into `buf`
    /// (truncated if longer); `Err(WouldBlock)` when the queue is empty.
    fn take(&mut self, buf: &mut [u8]) -> io::Result<(VnetHdr, usize, usize)> {
        let mut q = lock(&self.port.queue);
        let Some((hdr, frame)) = q.frames.pop_front() else {
            return Err(io::ErrorKind::WouldBlock.into());
        };
        q.bytes -= frame.len();
        if q.frames.is_empty() {
            self.port.ready.clear();
        }
        let n = frame.len().min(buf.len());
        buf[..n].copy_from_slice(&frame[..n]);
        let full = frame.len();
        if q.spare.len() < SPARE_BUFFERS {
            q.spare.push(frame);
        }
        Ok((hdr, n, full))
    }
}

/// A plug that leaves its segment: the switch forgets its port (frames stop
/// being copied for it) and its queue, with any tap it writes into, is let go of
/// here, not when the segment's last plug closes.
impl Drop for InProc {
    fn drop(&mut self) {
        let mut inner = lock(&self.segment.inner);
        inner.fwd.remove_port(self.id);
        inner.ports.remove(&self.id);
        drop(inner);
        // A sender may still hold the port for a copy in flight; the tap goes now.
        lock(&self.port.queue).tap = None;
    }
}

impl Plug for InProc {
    fn send(&mut self, frame: &[u8]) -> io::Result<usize> {
        self.deliver(&VnetHdr::PLAIN, frame)
    }

    /// On a plug that offloads, a frame with a pending checksum comes back completed
    /// and a large segment is dropped (`Recv::Nothing`): receive those with
    /// [`Offload::recv_offload`].
    fn recv(&mut self, buf: &mut [u8]) -> io::Result<Recv> {
        let (hdr, n, full) = self.take(buf)?;
        if hdr.is_plain() {
            return Ok(Recv::Frame(n));
        }
        if hdr.gso_type & !gso::GSO_ECN == gso::GSO_NONE
            && n == full
            && gso::complete_checksum(&hdr, &mut buf[..n]).is_ok()
        {
            return Ok(Recv::Frame(n));
        }
        Ok(Recv::Nothing)
    }

    fn data_fd(&self) -> BorrowedFd<'_> {
        match &self.port.ready {
            Ready::Fd(fd) => fd.as_fd(),
            Ready::Waker(_) => never_ready(),
        }
    }

    fn offload(&mut self) -> Option<&mut dyn Offload> {
        Some(self)
    }

    fn tap_delivery(&mut self) -> Option<&mut dyn TapDelivery> {
        Some(self)
    }
}

impl Offload for InProc {
    fn enable(&mut self) {
        self.port.offload.store(true, Ordering::Relaxed);
    }

    fn send_offload(&mut self, hdr: &VnetHdr, frame: &[u8]) -> io::Result<usize> {
        self.deliver(hdr, frame)
    }

    /// A large frame that does not fit `buf` is dropped (`Recv::Nothing`): cut
    /// short, it would be garbage.
    fn recv_offload(&mut self, hdr: &mut VnetHdr, buf: &mut [u8]) -> io::Result<Recv> {
        let (h, n, full) = self.take(buf)?;
        if n < full && !h.is_plain() {
            return Ok(Recv::Nothing);
        }
        *hdr = h;
        Ok(Recv::Frame(n))
    }
}

impl TapDelivery for InProc {
    /// From now on the sender's thread writes this port's frames into `tap`
    /// (frames already queued go first), so a frame between two stacks of this
    /// process costs one read and one write, with no queue and no second thread.
    fn attach_tap(&mut self, tap: BorrowedFd<'_>, vnet: bool) -> io::Result<()> {
        let fd = rustix::io::fcntl_dupfd_cloexec(tap, 3)?;
        let direct = DirectTap { fd, vnet };
        let mut q = lock(&self.port.queue);
        while let Some((hdr, frame)) = q.frames.pop_front() {
            if vnet || hdr.is_plain() {
                direct.write(&hdr, &frame);
            }
        }
        q.bytes = 0;
        self.port.ready.clear();
        q.tap = Some(direct);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ports_of(plug: &InProc) -> usize {
        lock(&plug.segment.inner).ports.len()
    }

    /// A dropped plug leaves its segment: no queue is kept (and filled) for it.
    #[test]
    fn a_dropped_plug_leaves_its_segment() {
        let a = InProc::open("unit-leave").unwrap();
        let b = InProc::open("unit-leave").unwrap();
        assert_eq!(ports_of(&a), 2);
        drop(b);
        assert_eq!(ports_of(&a), 1);
    }

    /// The tap a dropped plug wrote into is closed with it: once the tap's own
    /// fd is gone too, its reader sees the end.
    #[test]
    fn a_dropped_plug_lets_its_tap_go() {
        let _keep = InProc::open("unit-tap").unwrap();
        let mut plug = InProc::open("unit-tap").unwrap();
        let (reader, writer) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::NONBLOCK).unwrap();
        plug.attach_tap(writer.as_fd(), false).unwrap();
        drop(writer);
        drop(plug);
        let mut buf = [0u8; 1];
        // Still open, the read would be EAGAIN (non-blocking: no hang).
        assert_eq!(
            rustix::io::read(&reader, &mut buf).map_err(|e| e.kind()),
            Ok(0)
        );
    }
}
