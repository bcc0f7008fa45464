//! The pool of threads that runs every user-space stack of the process.
//!
//! At most [`MAX_WORKERS`] threads, and at most half the CPUs (one on 2 CPUs). Each has
//! an epoll set over the fds of the stacks it serves (their plugs' and their
//! sockets' engine ends, all registered edge-triggered with the stack's slot as
//! data), an eventfd that control calls write to after changing a stack
//! ([`Worker::kick`]), and a timer queue (smoltcp's `poll_delay` of each stack).
//! A ready stack is polled whole ([`Engine::poll`]): its plugs drained, its
//! sockets' bytes moved, its timers run.
//!
//! Frames that another thread hands to a stack's `inproc://` plug (a kernel
//! stack's relay thread) are polled by that thread at once, when nobody polls
//! the stack and its traffic is not bulk ([`Shared::frames_came`]): the answer
//! of a request/response exchange then reaches the socket pair without
//! waking the pool thread, which only hears when the stack wants its timers
//! run ([`Worker::retime`]). A kick or a new timer wakes a sleeping pool thread,
//! stops a polling one, and costs nothing more when it is at work.
//!
//! A stack costs no thread and no fd of its own. A worker left with no stack ends
//! after [`LINGER`], so a process whose stacks are all gone is back to its own
//! threads.

use std::cell::{Cell, RefCell};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use rustix::event::epoll::{self, Event, EventData, EventFlags};
use rustix::event::{eventfd, EventfdFlags, Timespec};

use super::engine::{Engine, Scratch, SockId};
use crate::error::context;
use crate::vde::poll_window::PollWindow;

/// The most threads the pool runs.
pub(super) const MAX_WORKERS: usize = 4;

/// How long a worker with no stack waits for a new one before it ends.
pub(super) const LINGER: Duration = Duration::from_millis(300);

/// What the pool thread and the control calls share about one stack.
#[derive(Debug)]
pub(crate) struct Shared {
    /// The stack's state: taken by its pool thread to poll it, by control calls to
    /// act on it.
    pub(super) engine: Mutex<Engine>,
    /// The worker that polls it.
    pub(super) worker: Arc<Worker>,
    /// Its key in the worker's table and epoll set.
    pub(super) slot: u64,
}

impl Shared {
    /// Locks the stack's state (a panic while it was held left it usable: every
    /// step keeps it consistent).
    pub(super) fn lock(&self) -> MutexGuard<'_, Engine> {
        self.engine.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits, up to `limit`, until every connection an application let go of
    /// has had its data and FIN acknowledged (or was reset): what a program
    /// wrote before it exited reaches the peer before the stack is dropped.
    /// Whether it settled in time.
    pub(crate) fn settle(&self, limit: Duration) -> bool {
        let end = Instant::now() + limit;
        loop {
            if !self.lock().closing() {
                return true;
            }
            if Instant::now() >= end {
                return false;
            }
            // Hang-ups may not have been polled yet.
            self.kick();
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Has the worker poll the stack soon (after a control call changed it).
    pub(super) fn kick(&self) {
        self.worker.kick(self.slot);
    }

    /// Frames came for the stack (its `inproc://` waker, on the sender's
    /// thread): a thread that is not polling a stack already (a relay thread
    /// that just read them from a kernel stack's tap) polls it here and now, so
    /// the frames reach the sockets' pairs without waking the pool thread: on
    /// a request/response exchange that is one thread's wake-up less per
    /// answer. The pool thread is woken only if the stack's next timer comes
    /// before it would wake anyway. If the stack is being polled (by its pool
    /// thread or a control call), or during bulk (the pool thread then works
    /// beside the sender rather than after it), its pool thread is kicked.
    pub(super) fn frames_came(&self) {
        if !POLLING.get() {
            let engine = match self.engine.try_lock() {
                Ok(e) => Some(e),
                Err(std::sync::TryLockError::Poisoned(p)) => Some(p.into_inner()),
                Err(std::sync::TryLockError::WouldBlock) => None,
            };
            if let Some(mut engine) = engine.filter(|e| !e.is_bulk()) {
                POLLING.set(true);
                let next = SCRATCH.with_borrow_mut(|s| {
                    let s = s.get_or_insert_with(|| Box::new(Scratch::new()));
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        engine.poll(Instant::now(), s)
                    }))
                });
                POLLING.set(false);
                drop(engine);
                match next {
                    Ok(Some(at)) => self.worker.retime(self.slot, at),
                    Ok(None) => {}
                    // A bug in the stack: its pool thread tries again.
                    Err(_) => self.kick(),
                }
                return;
            }
        }
        self.kick();
    }
}

thread_local! {
    /// This thread is polling a stack (a pool thread always is): frames it
    /// sends to another stack of the process wake that stack's pool thread,
    /// they are not polled in the middle of the first stack's poll.
    static POLLING: Cell<bool> = const { Cell::new(false) };
    /// The frame buffers of a thread that polls a stack its frames came to
    /// (made on its first such poll, gone with the thread).
    static SCRATCH: RefCell<Option<Box<Scratch>>> = const { RefCell::new(None) };
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.worker.forget(self.slot);
    }
}

/// One pool thread's side that others reach.
#[derive(Debug)]
pub(crate) struct Worker {
    epoll: OwnedFd,
    wake: OwnedFd,
    state: Mutex<WorkerState>,
    /// Something was kicked or retimed since the thread last looked (set under
    /// `state`'s lock): a thread polling for events stops and looks.
    pending: AtomicBool,
}

#[derive(Debug, Default)]
struct WorkerState {
    stacks: HashMap<u64, Weak<Shared>>,
    next_slot: u64,
    /// Stacks a control call changed since the thread last looked.
    kicked: Vec<u64>,
    /// When stacks polled by another thread ([`Shared::frames_came`]) want to
    /// be polled again.
    retimed: Vec<(u64, Instant)>,
    /// The thread sleeps in `epoll_wait` (until the time inside, or for as long
    /// as it takes): the wake eventfd is written to wake it. `None` while it is
    /// awake or woken (it looks at `kicked` and `retimed` before it sleeps).
    asleep: Option<Option<Instant>>,
    /// The thread has ended (or is ending): no new stack goes to it.
    ended: bool,
}

/// The pool: its workers, and which one the next stack goes to.
static POOL: Mutex<Vec<Arc<Worker>>> = Mutex::new(Vec::new());
static NEXT: AtomicUsize = AtomicUsize::new(0);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// How many workers the pool may run on this machine.
fn workers_wanted() -> usize {
    // Asked once: the answer reads the cgroup's files.
    static WANTED: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *WANTED.get_or_init(|| {
        // Half the CPUs: the applications whose sockets the pool serves need
        // the others. Two stacks talking on one thread also skip a thread's
        // wake-up per hop: on 2 CPUs, one pool thread gave 0.83x the C
        // library's request/response rate between two user-space stacks over
        // vxvde:// where two gave 0.59x (bulk 1.7-2.0x C either way).
        std::thread::available_parallelism()
            .map_or(1, |n| n.get() / 2)
            .clamp(1, MAX_WORKERS)
    })
}

/// Registers a new stack, made by `make` (given its worker and slot), with a
/// worker of the pool (started if need be).
pub(super) fn register(make: impl FnOnce() -> io::Result<Engine>) -> io::Result<Arc<Shared>> {
    let engine = make()?;
    // A worker about to end (no stack left for its linger) is skipped; a slot
    // taken (a placeholder) keeps the chosen one from ending meanwhile.
    let (worker, slot) = loop {
        let worker = pick_worker()?;
        let mut st = lock(&worker.state);
        if st.ended {
            continue;
        }
        // Slot 0 is the wake eventfd's; a slot fits in 32 bits of an event.
        st.next_slot = (st.next_slot % u64::from(u32::MAX)) + 1;
        let slot = st.next_slot;
        st.stacks.insert(slot, Weak::new());
        drop(st);
        break (worker, slot);
    };
    let shared = Arc::new(Shared {
        engine: Mutex::new(engine),
        worker: worker.clone(),
        slot,
    });
    lock(&worker.state)
        .stacks
        .insert(slot, Arc::downgrade(&shared));
    {
        let mut engine = shared.lock();
        engine.worker = Some((worker.clone(), slot));
        for fd in engine.plug_fds() {
            worker.watch(fd, slot, 0)?;
        }
    }
    Ok(shared)
}

fn pick_worker() -> io::Result<Arc<Worker>> {
    let mut pool = lock(&POOL);
    pool.retain(|w| !lock(&w.state).ended);
    if pool.len() < workers_wanted() {
        let w = Worker::start()?;
        pool.push(w.clone());
        return Ok(w);
    }
    let i = NEXT.fetch_add(1, Ordering::Relaxed) % pool.len();
    Ok(pool[i].clone())
}

/// The number of pool threads running now (for tests and diagnostics).
#[cfg(feature = "diagnostics")]
pub(crate) fn threads() -> usize {
    let pool = lock(&POOL);
    pool.iter().filter(|w| !lock(&w.state).ended).count()
}

impl Worker {
    fn start() -> io::Result<Arc<Worker>> {
        let epoll = epoll::create(epoll::CreateFlags::CLOEXEC)
            .map_err(|e| context(e, "user stack pool: epoll"))?;
        let wake = eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)
            .map_err(|e| context(e, "user stack pool: eventfd"))?;
        epoll::add(
            &epoll,
            &wake,
            EventData::new_u64(0),
            EventFlags::IN | EventFlags::ET,
        )?;
        let w = Arc::new(Worker {
            epoll,
            wake,
            state: Mutex::new(WorkerState::default()),
            pending: AtomicBool::new(false),
        });
        let run = w.clone();
        std::thread::Builder::new()
            .name("vdestack-user".into())
            .spawn(move || run.run())
            .map_err(|e| context(e, "user stack pool: thread"))?;
        Ok(w)
    }

    /// Has the thread poll stack `slot` soon.
    pub(super) fn kick(&self, slot: u64) {
        let mut st = lock(&self.state);
        st.kicked.push(slot);
        self.notify(st, None);
    }

    /// Has the thread poll stack `slot` at `at` (or sooner).
    fn retime(&self, slot: u64, at: Instant) {
        let mut st = lock(&self.state);
        st.retimed.push((slot, at));
        self.notify(st, Some(at));
    }

    /// Tells the thread that `state` changed: a polling thread sees `pending`;
    /// a sleeping one is woken, unless it wakes before `at` anyway.
    fn notify(&self, mut st: MutexGuard<'_, WorkerState>, at: Option<Instant>) {
        self.pending.store(true, Ordering::Release);
        let wake = match (st.asleep, at) {
            (None, _) => false,
            (Some(_), None) | (Some(None), Some(_)) => true,
            (Some(Some(until)), Some(at)) => at < until,
        };
        if wake {
            st.asleep = None;
            drop(st);
            let _ = rustix::io::write(&self.wake, &1u64.to_ne_bytes());
        }
    }

    /// Watches `fd` for stack `slot`: the event's data is the slot (high 32
    /// bits) and the socket id (low 32 bits, 0 for a plug).
    pub(super) fn watch(&self, fd: BorrowedFd<'_>, slot: u64, id: SockId) -> io::Result<()> {
        let flags = EventFlags::IN | EventFlags::OUT | EventFlags::RDHUP | EventFlags::ET;
        let data = (slot << 32) | u64::from(id);
        epoll::add(&self.epoll, fd, EventData::new_u64(data), flags)
            .map_err(|e| context(e, "user stack: epoll_ctl"))
    }

    fn forget(&self, slot: u64) {
        lock(&self.state).stacks.remove(&slot);
        // Wake the thread so that an empty worker starts its linger.
        let _ = rustix::io::write(&self.wake, &1u64.to_ne_bytes());
    }

    /// Whether the thread may sleep (until `until`): nothing was kicked or
    /// retimed meanwhile. From now on, those who do wake it.
    fn sleeps_until(&self, until: Option<Instant>) -> bool {
        let mut st = lock(&self.state);
        if self.pending.load(Ordering::Relaxed) {
            return false;
        }
        st.asleep = Some(until);
        true
    }

    fn run(self: Arc<Self>) {
        POLLING.set(true);
        let mut events = vec![
            Event {
                flags: EventFlags::empty(),
                data: EventData::new_u64(0),
            };
            256
        ];
        let mut timers: BinaryHeap<Reverse<(Instant, u64)>> = BinaryHeap::new();
        let mut due: HashMap<u64, Instant> = HashMap::new();
        let mut scratch = Scratch::new();
        let mut ready: Vec<u64> = Vec::new();
        let mut hups: Vec<(u64, SockId)> = Vec::new();
        let mut plug_events: Vec<u64> = Vec::new();
        let mut empty_since: Option<Instant> = None;
        let mut window = PollWindow::new(crate::Config::current().relay_poll);
        loop {
            // A stale timer (its stack was polled since, and wants another
            // time) must not wake the thread: drop those on top first.
            while timers
                .peek()
                .is_some_and(|Reverse((t, slot))| due.get(slot) != Some(t))
            {
                timers.pop();
            }
            let now = Instant::now();
            let wait = timers
                .peek()
                .map(|Reverse((t, _))| t.saturating_duration_since(now));
            let wait = match (wait, empty_since) {
                (_, Some(_)) => Some(LINGER),
                (w, None) => w,
            };
            let ts = wait.map(|d| Timespec {
                tv_sec: d.as_secs() as i64,
                // Rounded up to a millisecond's worth so a timer is never early.
                tv_nsec: i64::from(d.subsec_nanos()),
            });
            // Look again for a while before sleeping, as the kernel backend's
            // relay threads do (`vde::poll_window`): on a request/response
            // exchange every hop would otherwise pay a thread's wake-up.
            let mut n = poll_briefly(&self.epoll, &mut events, &mut window, wait, &self.pending);
            if n == 0 && self.sleeps_until(wait.map(|w| now + w)) {
                let asleep = Instant::now();
                n = match epoll::wait(&self.epoll, &mut events[..], ts.as_ref()) {
                    Ok(n) => n,
                    Err(rustix::io::Errno::INTR) => 0,
                    Err(_) => 0,
                };
                lock(&self.state).asleep = None;
                window.slept(asleep.elapsed());
            }
            // What the wake-up brought, as the window weighs traffic: a frame's
            // worth per event (bulk is many events per millisecond).
            window.moved(n * 1514, Instant::now());
            ready.clear();
            hups.clear();
            plug_events.clear();
            let mut woken = false;
            for ev in &events[..n] {
                let (slot, id) = (ev.data.u64() >> 32, ev.data.u64() as SockId);
                if slot == 0 {
                    woken = true;
                    continue;
                }
                ready.push(slot);
                if id == 0 {
                    plug_events.push(slot);
                }
                let flags = ev.flags;
                if id != 0 && flags.intersects(EventFlags::HUP | EventFlags::ERR) {
                    hups.push((slot, id));
                }
            }
            if woken {
                let mut b = [0u8; 8];
                let _ = rustix::io::read(&self.wake, &mut b);
            }
            let now = Instant::now();
            while let Some(Reverse((t, slot))) = timers.peek().copied() {
                if t > now {
                    break;
                }
                timers.pop();
                if due.get(&slot) == Some(&t) {
                    due.remove(&slot);
                    ready.push(slot);
                }
            }
            let stacks: Vec<(u64, Arc<Shared>)> = {
                let mut st = lock(&self.state);
                self.pending.store(false, Ordering::Relaxed);
                ready.append(&mut st.kicked);
                // Only earlier times are taken: the stack's own next poll says
                // when it wants the one after.
                for (slot, t) in st.retimed.drain(..) {
                    if due.get(&slot).is_none_or(|&d| t < d) {
                        due.insert(slot, t);
                        timers.push(Reverse((t, slot)));
                    }
                }
                ready.sort_unstable();
                ready.dedup();
                let found = ready
                    .iter()
                    .filter_map(|s| st.stacks.get(s).and_then(Weak::upgrade).map(|a| (*s, a)))
                    .collect();
                if st.stacks.is_empty() {
                    match empty_since {
                        Some(t) if t.elapsed() >= LINGER => {
                            st.ended = true;
                            drop(st);
                            // Leave the pool, so the worker's fds close with it.
                            let last = {
                                let mut pool = lock(&POOL);
                                pool.retain(|w| !Arc::ptr_eq(w, &self));
                                pool.is_empty()
                            };
                            // The process's last user-space stack is gone: give
                            // the memory of its stacks back to the system.
                            if last {
                                crate::sys::trim_heap();
                            }
                            return;
                        }
                        Some(_) => {}
                        None => empty_since = Some(Instant::now()),
                    }
                } else {
                    empty_since = None;
                }
                found
            };
            for (slot, shared) in stacks {
                let next = {
                    let mut engine = shared.lock();
                    engine
                        .hung_up
                        .extend(hups.iter().filter(|(s, _)| *s == slot).map(|(_, id)| *id));
                    engine.plugs_stirred |= plug_events.contains(&slot);
                    // A bug in one stack must not stop the pool: that stack
                    // is polled again later.
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        engine.poll(Instant::now(), &mut scratch)
                    }))
                    .unwrap_or_else(|_| Some(Instant::now() + Duration::from_millis(100)))
                };
                match next {
                    Some(t) => {
                        if due.get(&slot).is_none_or(|&d| d != t) {
                            due.insert(slot, t);
                            timers.push(Reverse((t, slot)));
                        }
                    }
                    None => {
                        due.remove(&slot);
                    }
                }
            }
            // Timers of stacks gone are dropped when they come due; keep the heap
            // from growing without bound when stacks come and go quickly.
            if timers.len() > 4 * due.len() + 1024 {
                timers.retain(|Reverse((t, s))| due.get(s) == Some(t));
            }
        }
    }
}

/// Looks for events without sleeping for as long as `window` says (never past
/// `wait`, the next timer, nor once something is `pending`), yielding the CPU
/// between looks; how many it found.
fn poll_briefly(
    ep: &OwnedFd,
    events: &mut [Event],
    window: &mut PollWindow,
    wait: Option<Duration>,
    pending: &AtomicBool,
) -> usize {
    let span = wait.map_or(window.window(), |w| w.min(window.window()));
    if span.is_zero() {
        return 0;
    }
    let start = Instant::now();
    let mut last = start;
    let zero = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    loop {
        if let Ok(n @ 1..) = epoll::wait(ep, &mut events[..], Some(&zero)) {
            window.found();
            return n;
        }
        if pending.load(Ordering::Relaxed) || !window.next_look(start, span, &mut last) {
            return 0;
        }
    }
}

impl AsFd for Worker {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.epoll.as_fd()
    }
}
