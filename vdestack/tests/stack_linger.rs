//! The namespace helper's linger after the last stack: a stack made meanwhile finds
//! it; `end_idle_helper` ends it at once (and leaves nothing); otherwise it goes by
//! itself when the linger is over; with no linger the last drop ends it.

mod common;

use std::time::{Duration, Instant};

use vdestack::stack::{end_idle_helper, Stack};
use vdestack::Config;

const MAX_LINGER: Duration = Config::MAX_HELPER_LINGER;

fn helper_linger() -> Duration {
    Config::current().helper_linger
}

fn set_helper_linger(linger: Duration) {
    let mut c = Config::current();
    c.helper_linger = linger;
    c.apply().unwrap();
}

fn count(dir: &str) -> usize {
    std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

/// (fds, threads) of this process.
fn held() -> (usize, usize) {
    (count("/proc/self/fd"), count("/proc/self/task"))
}

/// Whether `pid` is gone or a zombie waiting for its parent (the helper's parent
/// is init here: it is not ours to reap).
fn gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(s) => s
            .rsplit(')')
            .next()
            .is_some_and(|r| r.trim_start().starts_with('Z')),
    }
}

sandbox_test! {
    fn the_helper_lingers_then_goes() {
        assert!(helper_linger() > Duration::ZERO && helper_linger() <= MAX_LINGER);
        let base = held();

        // A long linger: the next stack finds the same helper, however slow the machine.
        set_helper_linger(Duration::from_secs(3600));
        assert_eq!(helper_linger(), MAX_LINGER, "cut to the longest linger");
        let s = Stack::new().unwrap();
        let pid = s.helper_pid().unwrap();
        drop(s);
        assert!(!gone(pid), "the helper ended with the last stack");
        assert_ne!(held(), base, "a lingering helper holds fds and a thread");
        let s = Stack::new().unwrap();
        assert_eq!(s.helper_pid().unwrap(), pid, "a stack made during the linger finds the helper");
        // While a stack lives, ending the idle helper does nothing.
        end_idle_helper();
        assert!(!gone(pid));
        drop(s.socket(vdestack::net::AddressFamily::INET, vdestack::net::SocketType::DGRAM, None).unwrap());
        drop(s);

        // Ended at once: when it returns, the helper has exited and nothing is left.
        end_idle_helper();
        assert!(gone(pid), "helper {pid} still runs after end_idle_helper");
        assert_eq!(held(), base, "(fds, threads) after end_idle_helper");
        end_idle_helper(); // nothing to end: harmless

        // A short linger: it goes by itself, with its fds and thread.
        set_helper_linger(Duration::from_millis(100));
        let s = Stack::new().unwrap();
        let pid2 = s.helper_pid().unwrap();
        assert_ne!(pid2, pid, "a new helper after the last one ended");
        drop(s);
        let t0 = Instant::now();
        while !gone(pid2) || held() != base {
            assert!(t0.elapsed() < Duration::from_secs(20), "helper {pid2} or its fds/thread still there: {:?} vs {base:?}", held());
            std::thread::sleep(Duration::from_millis(10));
        }
        eprintln!("FIGURES a 100 ms linger: all gone {:?} after the last drop", t0.elapsed());

        // No linger: the last drop ends the helper and waits for it; no thread.
        set_helper_linger(Duration::ZERO);
        let s = Stack::new().unwrap();
        let pid3 = s.helper_pid().unwrap();
        drop(s);
        assert!(gone(pid3), "helper {pid3} outlived the last stack with no linger");
        assert_eq!(held(), base, "(fds, threads) with no linger");

        // A linger set while the helper lingers applies to it.
        set_helper_linger(MAX_LINGER);
        let s = Stack::new().unwrap();
        let pid4 = s.helper_pid().unwrap();
        drop(s);
        assert!(!gone(pid4));
        set_helper_linger(Duration::ZERO);
        let t0 = Instant::now();
        while !gone(pid4) || held() != base {
            assert!(t0.elapsed() < Duration::from_secs(20), "helper {pid4} still there after the linger was set to 0");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}
