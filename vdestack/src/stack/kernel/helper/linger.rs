//! The slot that holds the process's helper, the leases stacks take on it, and the
//! linger after the last lease (see the [module docs](super)).

use std::ops::Deref;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Once, TryLockError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rustix::process::{getpid, Pid};

use super::SharedHelper;

/// The helper and who holds it.
struct Slot {
    /// The helper while a stack holds it or it lingers.
    helper: Option<Arc<SharedHelper>>,
    /// Leases (stacks) on it.
    users: usize,
    /// Since when no lease holds it.
    idle_since: Option<Instant>,
    /// This process's linger thread.
    thread: Option<Lingerer>,
    /// A linger thread that has left (its handle, to join).
    finished: Option<(Pid, JoinHandle<()>)>,
    /// The linger thread sleeps with no deadline (a stack held the helper when
    /// it looked): only then must a last lease wake it. One sleeping until a
    /// deadline looks again then, so stacks coming and going cost it nothing.
    sleeps_untimed: bool,
    next_id: u64,
}

struct Lingerer {
    /// The process it runs in (after a fork, the parent's thread is not ours).
    pid: Pid,
    id: u64,
    handle: JoinHandle<()>,
}

static SLOT: Mutex<Slot> = Mutex::new(Slot {
    helper: None,
    users: 0,
    idle_since: None,
    thread: None,
    finished: None,
    sleeps_untimed: false,
    next_id: 0,
});
/// Wakes the linger thread: the slot changed.
static WAKE: Condvar = Condvar::new();

fn lock() -> MutexGuard<'static, Slot> {
    SLOT.lock().unwrap_or_else(|e| e.into_inner())
}

impl Slot {
    /// How long the helper stays after the last stack ([`crate::Config`]).
    fn linger(&self) -> Duration {
        crate::Config::current().helper_linger
    }
}

/// Tells a lingering helper's thread that the linger changed ([`crate::Config`]
/// was applied): it looks again. Called without the settings' lock held.
pub(crate) fn linger_changed() {
    let _slot = lock();
    WAKE.notify_all();
}

/// Ends the namespace helper now if no stack holds it (it lingers after the last
/// stack: see [`crate::Config::helper_linger`]) and returns once it has exited (and been reaped,
/// where it is our child) and the thread that waited to end it has been joined:
/// nothing of the stacks' is left in the process. While a stack lives it does
/// nothing. The next stack starts a new helper.
pub fn end_idle_helper() {
    let me = getpid();
    let mut slot = lock();
    if slot.users > 0 {
        return;
    }
    let helper = slot.helper.take();
    slot.idle_since = None;
    let thread = match slot.thread.take() {
        Some(t) if t.pid == me => Some(t.handle),
        Some(t) => {
            std::mem::forget(t);
            None
        }
        None => None,
    };
    let finished = take_finished(&mut slot, me);
    WAKE.notify_all();
    drop(slot);
    // The last reference (no lease is left): the helper ends here.
    drop(helper);
    for t in [thread, finished].into_iter().flatten() {
        let _ = t.join();
    }
}

/// The handle of a linger thread of this process that has left.
fn take_finished(slot: &mut Slot, me: Pid) -> Option<JoinHandle<()>> {
    match slot.finished.take() {
        Some((pid, h)) if pid == me => Some(h),
        Some(other) => {
            std::mem::forget(other);
            None
        }
        None => None,
    }
}

/// A stack's hold on the helper: while one exists the helper runs; when the last
/// one goes the helper lingers, then ends.
#[derive(Debug)]
pub(crate) struct Lease {
    helper: Option<Arc<SharedHelper>>,
}

impl Deref for Lease {
    type Target = SharedHelper;
    fn deref(&self) -> &SharedHelper {
        self.helper
            .as_ref()
            .expect("a lease holds its helper until dropped")
    }
}

/// A lease on the helper, started if none runs (or lingers).
pub(crate) fn get() -> std::io::Result<Lease> {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        if let Err(e) = crate::sys::on_fork_child(after_fork_in_child) {
            log::debug!("vdestack: no fork hook for the stack helper: {e}");
        }
    });
    let mut slot = lock();
    if let Some(h) = slot.helper.clone() {
        // Shared with live stacks (a forked child's inherited ones too), or ours
        // lingering and still fit to serve.
        if slot.users > 0 || (h.ours() && h.usable_again()) {
            slot.users += 1;
            slot.idle_since = None;
            return Ok(Lease { helper: Some(h) });
        }
        // Gone, tampered with, or a parent's: let go of it (it has exited or is
        // not ours to wait for, so this does not block).
        drop(h);
        drop(slot.helper.take());
    }
    // Started under the lock: one helper per process.
    let h = Arc::new(SharedHelper::start()?);
    slot.helper = Some(h.clone());
    slot.users = 1;
    slot.idle_since = None;
    Ok(Lease { helper: Some(h) })
}

impl Drop for Lease {
    fn drop(&mut self) {
        let Some(mine) = self.helper.take() else {
            return;
        };
        let me = getpid();
        let mut slot = lock();
        if !slot.helper.as_ref().is_some_and(|h| Arc::ptr_eq(h, &mine)) {
            return; // not the slot's (cannot happen while leases exist): just ours
        }
        drop(mine); // the slot keeps one: ending (if any) is the slot's reference
        slot.users = slot.users.saturating_sub(1);
        if slot.users > 0 {
            return;
        }
        let lingers = {
            let h = slot.helper.as_ref().expect("checked above");
            h.ours() && !slot.linger().is_zero()
        };
        if lingers && start_lingerer(&mut slot, me) {
            slot.idle_since = Some(Instant::now());
            if slot.sleeps_untimed {
                WAKE.notify_all();
            }
            return;
        }
        // No linger (or no thread to end it later): it ends now, in this thread.
        let helper = slot.helper.take();
        WAKE.notify_all();
        drop(slot);
        drop(helper);
    }
}

/// Makes sure this process has a linger thread; `false` if none could start.
fn start_lingerer(slot: &mut Slot, me: Pid) -> bool {
    match slot.thread.take() {
        Some(t) if t.pid == me => {
            slot.thread = Some(t);
            return true;
        }
        // A parent's, copied by a fork: not in this process.
        Some(t) => std::mem::forget(t),
        None => {}
    }
    // A thread that left has let go of the lock for good: joining it is short.
    if let Some(h) = take_finished(slot, me) {
        let _ = h.join();
    }
    slot.next_id += 1;
    let id = slot.next_id;
    match std::thread::Builder::new()
        .name("vdestack-linger".into())
        .stack_size(128 * 1024)
        .spawn(move || linger_main(id))
    {
        Ok(handle) => {
            slot.thread = Some(Lingerer {
                pid: me,
                id,
                handle,
            });
            true
        }
        Err(e) => {
            log::debug!("vdestack: no thread to let the stack helper linger: {e}");
            false
        }
    }
}

/// The linger thread: ends the helper once no lease has held it for the linger;
/// leaves when there is no helper any more, or when [`end_idle_helper`] dismissed it.
fn linger_main(id: u64) {
    let mut slot = lock();
    loop {
        if slot.thread.as_ref().map(|t| t.id) != Some(id) {
            return; // dismissed: whoever took our handle joins us
        }
        if slot.helper.is_none() {
            let t = slot.thread.take().expect("checked: ours");
            slot.finished = Some((t.pid, t.handle));
            return;
        }
        match (slot.users, slot.idle_since) {
            (0, Some(since)) => {
                let until = since + slot.linger();
                let now = Instant::now();
                if now < until {
                    slot = WAKE
                        .wait_timeout(slot, until - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                    continue;
                }
                let helper = slot.helper.take();
                slot.idle_since = None;
                drop(slot);
                // The last reference: it ends here, out of the lock (a new stack
                // meanwhile starts a new helper).
                drop(helper);
                slot = lock();
            }
            _ => {
                slot.sleeps_untimed = true;
                slot = WAKE.wait(slot).unwrap_or_else(|e| e.into_inner());
                slot.sleeps_untimed = false;
            }
        }
    }
}

/// In a `fork()`ed child: the parent's linger thread does not exist here, and a
/// helper that only lingers is not the child's to keep alive: its copies close.
/// Skipped if the slot was locked at the fork (by a thread that is not here).
extern "C" fn after_fork_in_child() {
    let mut slot = match SLOT.try_lock() {
        Ok(s) => s,
        Err(TryLockError::Poisoned(p)) => p.into_inner(),
        Err(TryLockError::WouldBlock) => return,
    };
    if let Some(t) = slot.thread.take() {
        std::mem::forget(t);
    }
    slot.sleeps_untimed = false;
    if let Some(f) = slot.finished.take() {
        std::mem::forget(f);
    }
    if slot.users == 0 {
        slot.idle_since = None;
        let helper = slot.helper.take();
        drop(slot);
        // The parent's helper: dropping only closes this process's copies.
        drop(helper);
    }
}
