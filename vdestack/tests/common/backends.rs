//! Running one test body on both stack backends: the kernel one in the test's
//! private network namespace (skipped with a reason where namespaces or
//! `/dev/net/tun` are refused), the user-space one anywhere (its frames never
//! leave the process, so it needs no namespace), under a time limit so a hang
//! fails the test by name instead of stopping the run.

use std::sync::mpsc;
use std::time::Duration;

use vdestack::stack::{Backend, Stack};

use super::stacks::configure;

/// How long one user-backend body may run before the test fails.
pub const USER_LIMIT: Duration = Duration::from_secs(150);

/// Declares `$kernel` (in a private namespace, `/dev/net/tun` needed) and
/// `$user` (anywhere), each calling `$body(Backend)`.
#[macro_export]
macro_rules! both_backends {
    ($body:ident, $kernel:ident, $user:ident) => {
        $crate::sandbox_test! {
            fn $kernel() {
                if $crate::common::have_tun(stringify!($kernel)) {
                    $body(vdestack::stack::Backend::Kernel);
                }
            }
        }
        #[test]
        fn $user() {
            $crate::common::backends::within(
                stringify!($user),
                $crate::common::backends::USER_LIMIT,
                || $body(vdestack::stack::Backend::User),
            );
        }
    };
}

/// Runs `body` in a thread and waits at most `limit` for it; its panic is the
/// test's. On time-out the thread is left behind and the test fails.
pub fn within(name: &str, limit: Duration, body: impl FnOnce() + Send + 'static) {
    let (tx, rx) = mpsc::channel::<()>();
    let h = std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            body();
            let _ = tx.send(());
        })
        .expect("a test thread");
    match rx.recv_timeout(limit) {
        Ok(()) => h.join().unwrap(),
        // The body panicked (its sender is gone): that panic fails the test.
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            if let Err(p) = h.join() {
                std::panic::resume_unwind(p);
            }
        }
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("{name}: still running after {limit:?}"),
    }
}

/// An `inproc://` network name of this process's own for `tag`.
pub fn net(tag: &str) -> String {
    format!("inproc://t-{tag}-{}", std::process::id())
}

/// A stack on `backend` with interface `eth0` on `url`.
pub fn stack_on(backend: Backend, url: &str) -> Stack {
    Stack::builder()
        .interface("eth0", url)
        .backend(backend)
        .build()
        .unwrap_or_else(|e| panic!("a {backend:?} stack on {url}: {e}"))
}

/// Two stacks on `backend` joined by `inproc://` network `tag`: `a` with
/// 10.`n`.0.1/24 and fc00:`n`::1/64, `b` with .2 and ::2, all up.
pub fn pair(backend: Backend, tag: &str, n: u8) -> (Stack, Stack) {
    let url = net(tag);
    let a = stack_on(backend, &url);
    let b = stack_on(backend, &url);
    assert_eq!(a.backend(), backend);
    configure(
        &a,
        "eth0",
        &[(&format!("10.{n}.0.1"), 24), (&format!("fc00:{n}::1"), 64)],
    );
    configure(
        &b,
        "eth0",
        &[(&format!("10.{n}.0.2"), 24), (&format!("fc00:{n}::2"), 64)],
    );
    (a, b)
}
