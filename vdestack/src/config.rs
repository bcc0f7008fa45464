//! [`Config`]: the settings shared by every stack and cable of the process (how
//! many relay threads, how long they poll before they sleep, how long the
//! namespace helper stays after the last stack). Per-stack options are methods of
//! [`crate::stack::StackBuilder`] instead.
//!
//! A program sets them once, early, with [`Config::apply`]; [`Config::current`]
//! reads them. Environment variables override the built-in defaults, for
//! benchmarks and for programs that cannot call Rust (C programs on the C ABI):
//!
//! | variable | setting | values |
//! |---|---|---|
//! | `VDESTACK_RELAY_THREADS` | [`Config::relay_threads`] | 1 to 64 |
//! | `VDESTACK_RELAY_POLL_US` | [`Config::relay_poll`] | 0 to 10000 (µs; 0: no polling) |
//! | `VDESTACK_HELPER_LINGER_MS` | [`Config::helper_linger`] | ms (0: the helper ends with the last stack) |
//! | `VDESTACK_OFFLOAD=0` | [`crate::stack::StackBuilder::offload`]'s default | `0` turns large segments off |
//!
//! They are read once, at the first [`Config::current`] (or stack); a value out of
//! range is ignored with a warning. A [`Config`] the program applies overrides them.

use std::io;
use std::sync::Mutex;
use std::time::Duration;

/// The process-wide settings. See the [module docs](self).
///
/// ```
/// use std::time::Duration;
/// let mut config = vdestack::Config::current();
/// config.helper_linger = Duration::from_millis(50);
/// config.apply()?;
/// assert_eq!(vdestack::Config::current().helper_linger, Duration::from_millis(50));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// The most relay threads the process runs for all its kernel stacks (each
    /// stack is relayed by one of them): `None` is one per CPU, at most 4, so two
    /// stacks that talk to each other have a CPU each while a thousand still share
    /// a few threads. 1 to 64. Applies to stacks made afterwards.
    pub relay_threads: Option<usize>,
    /// How long a thread that just moved frames (a relay thread, a user-space
    /// stacks' pool thread, a cable such as `vdestack switch`) looks for more
    /// before it sleeps, yielding its CPU: a
    /// request/response exchange then wakes no sleeping thread per hop. The window
    /// adapts below this (see `vde::poll_window`); zero turns polling off. At most
    /// [`Config::MAX_RELAY_POLL`]. Applies to threads started afterwards.
    pub relay_poll: Duration,
    /// How long the namespace helper stays after the process's last kernel stack,
    /// so a process that makes one stack after another does not start a helper
    /// each time; zero: it ends with the last stack's drop (which waits for it).
    /// Longer than [`Config::MAX_HELPER_LINGER`] is cut to it. Applies at once,
    /// to a helper lingering now too; [`crate::stack::end_idle_helper`] ends one
    /// at once.
    pub helper_linger: Duration,
}

impl Default for Config {
    /// The built-in defaults, without the environment's overrides.
    fn default() -> Self {
        Config {
            relay_threads: None,
            relay_poll: Self::DEFAULT_RELAY_POLL,
            helper_linger: Self::DEFAULT_HELPER_LINGER,
        }
    }
}

/// The settings in force: `None` until first read or applied.
static CURRENT: Mutex<Option<Config>> = Mutex::new(None);

impl Config {
    /// The default [`Config::relay_poll`].
    pub const DEFAULT_RELAY_POLL: Duration = crate::vde::poll_window::MAX;
    /// The longest [`Config::relay_poll`].
    pub const MAX_RELAY_POLL: Duration = Duration::from_millis(10);
    /// The default [`Config::helper_linger`]: long enough that a process making
    /// stacks one after another (one per test, per request) keeps its helper,
    /// short enough that an idle process soon holds nothing.
    pub const DEFAULT_HELPER_LINGER: Duration = Duration::from_millis(250);
    /// The longest [`Config::helper_linger`].
    pub const MAX_HELPER_LINGER: Duration = Duration::from_secs(60);

    /// The settings in force: the last applied, else the defaults with the
    /// environment's overrides.
    pub fn current() -> Config {
        *lock().get_or_insert_with(Config::from_env)
    }

    /// The built-in defaults with the environment's overrides (see the
    /// [module docs](self)).
    pub fn from_env() -> Config {
        let mut c = Config::default();
        if let Some(n) = env_number("VDESTACK_RELAY_THREADS", 1..=64) {
            c.relay_threads = Some(n as usize);
        }
        if let Some(us) = env_number("VDESTACK_RELAY_POLL_US", 0..=10_000) {
            c.relay_poll = Duration::from_micros(us);
        }
        if let Some(ms) = env_number("VDESTACK_HELPER_LINGER_MS", 0..=u64::MAX) {
            c.helper_linger = Duration::from_millis(ms).min(Self::MAX_HELPER_LINGER);
        }
        c
    }

    /// Makes these the process's settings. `EINVAL` (and nothing changed) for
    /// [`Config::relay_threads`] outside 1 to 64 or [`Config::relay_poll`] over
    /// [`Config::MAX_RELAY_POLL`].
    pub fn apply(&self) -> io::Result<()> {
        let bad =
            |what: String| crate::error::context(io::Error::from_raw_os_error(libc::EINVAL), what);
        if let Some(n) = self.relay_threads.filter(|n| !(1..=64).contains(n)) {
            return Err(bad(format!("{n} relay threads: 1 to 64")));
        }
        if self.relay_poll > Self::MAX_RELAY_POLL {
            return Err(bad(format!(
                "a relay poll of {:?}: at most {:?}",
                self.relay_poll,
                Self::MAX_RELAY_POLL
            )));
        }
        let mut c = *self;
        c.helper_linger = c.helper_linger.min(Self::MAX_HELPER_LINGER);
        *lock() = Some(c);
        // A helper lingering now is told (after our lock is released: the
        // linger thread reads the settings under the helper's lock).
        crate::stack::kernel::helper::linger_changed();
        Ok(())
    }
}

fn lock() -> std::sync::MutexGuard<'static, Option<Config>> {
    // Every update is one assignment: a poisoned lock still holds a whole value.
    CURRENT.lock().unwrap_or_else(|p| p.into_inner())
}

/// The number in environment variable `name`, if it is set and in `range`; a
/// value that is not is ignored, with a warning.
fn env_number(name: &str, range: std::ops::RangeInclusive<u64>) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    match v.trim().parse::<u64>() {
        Ok(n) if range.contains(&n) => Some(n),
        _ => {
            log::warn!("vdestack: {name}={v:?} is not a number in {range:?}; ignored");
            None
        }
    }
}

/// Whether stacks made now carry large segments by default: yes, unless
/// `VDESTACK_OFFLOAD=0` (read at each stack, as a benchmark switch).
pub(crate) fn offload_default() -> bool {
    std::env::var_os("VDESTACK_OFFLOAD").is_none_or(|v| v != "0")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_settings_are_refused_and_change_nothing() {
        let before = Config::current();
        for threads in [0, 65] {
            let mut c = before;
            c.relay_threads = Some(threads);
            let e = c.apply().unwrap_err();
            assert_eq!(crate::error::errno_of(&e), libc::EINVAL);
            assert!(e.to_string().contains("relay threads"), "{e}");
        }
        let mut c = before;
        c.relay_poll = Duration::from_millis(11);
        assert!(c.apply().is_err());
        assert_eq!(Config::current(), before);
    }

    #[test]
    fn defaults() {
        let d = Config::default();
        assert_eq!(d.relay_threads, None);
        assert_eq!(d.relay_poll, Duration::from_micros(200));
        assert_eq!(d.helper_linger, Duration::from_millis(250));
    }
}
