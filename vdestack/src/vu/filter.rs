//! Which system calls a supervised program has trapped, and on which arguments
//! (the rest run at native speed: the kernel's per-call cache of the filter's
//! verdict lets them through without running the filter).
//!
//! | call | trapped when | why |
//! |---|---|---|
//! | `socket` | family `AF_INET`, `AF_INET6` or `AF_NETLINK` | served sockets are made by us |
//! | `ioctl` | request in `0x8900..=0x89ff` (the `SIOC*` socket and netdevice range) | netdevice ioctls are answered from the served stack |
//! | `bind`, `connect`, `getsockname`, `getpeername`, `getsockopt`, `setsockopt` | always (the fd's kind is not in a register) | answered for served sockets, `CONTINUE`d for others |
//! | `sendto` | with a destination address | an address on a served socket; `send` (no address) is never trapped |
//! | `recvfrom` | with a place for the source address | a served datagram socket's source addresses travel beside its payloads; `recv` (no address) is never trapped |
//! | `sendmsg`, `recvmsg` | always, but the one `sendmsg` that passes us the listener fd | their addresses are in memory; `CONTINUE`d unless the fd is a served datagram socket |
//! | `listen`, `accept`, `accept4` | always | a served listener is another socket pair, its connections come as messages |
//! | `shutdown` | always | a netlink socket refuses it (`EOPNOTSUPP`), an unconnected IP socket too (`ENOTCONN`) |
//! | `open`, `openat` | opened read-only | `/proc/net/...` files are made from the served stack |
//! | `openat2` | always (its flags are in memory) | as `openat` |
//! | `io_uring_setup` | always: fails with `ENOSYS` | io_uring's `IORING_OP_SOCKET`, `_CONNECT`, `_SEND`... make and use sockets without a system call the filter could see |
//! | calls of another ABI (i386, x32) | always: fail with `ENOSYS` | their numbers differ; a 32-bit `socketcall` would pass unseen |
//!
//! The filtered child passes the listener fd to us with a `sendmsg` whose flags
//! no program uses (`sys::seccomp::UNTRAPPED_SENDMSG_FLAGS`): that one call is
//! let through. `sendmmsg` and `recvmmsg` are not trapped: on a served datagram
//! socket they carry payloads without addresses (a connected socket's, which is
//! what glibc's resolver does).

use std::io;

use crate::sys::seccomp::{program, Rule, Verdict, When, UNTRAPPED_SENDMSG_FLAGS};

/// `O_ACCMODE`.
const O_ACCMODE: u32 = 3;

fn notify(nr: i64, when: When) -> Rule {
    Rule {
        nr,
        when,
        verdict: Verdict::Notify,
    }
}

/// The rules of `vdestack vu`'s filter.
pub(crate) fn rules() -> Vec<Rule> {
    let mut r = vec![
        notify(
            libc::SYS_socket,
            When::ArgIn {
                arg: 0,
                values: vec![
                    libc::AF_INET as u32,
                    libc::AF_INET6 as u32,
                    libc::AF_NETLINK as u32,
                ],
            },
        ),
        notify(
            libc::SYS_ioctl,
            When::ArgRange {
                arg: 1,
                lo: 0x8900,
                hi: 0x89ff,
            },
        ),
        notify(libc::SYS_sendto, When::ArgNonZero { arg: 4 }),
        notify(libc::SYS_recvfrom, When::ArgNonZero { arg: 4 }),
        notify(
            libc::SYS_sendmsg,
            When::ArgNotEq {
                arg: 2,
                value: UNTRAPPED_SENDMSG_FLAGS,
            },
        ),
        notify(
            libc::SYS_openat,
            When::ArgMasked {
                arg: 2,
                mask: O_ACCMODE,
                value: libc::O_RDONLY as u32,
            },
        ),
        notify(libc::SYS_openat2, When::Always),
        Rule {
            nr: libc::SYS_io_uring_setup,
            when: When::Always,
            verdict: Verdict::Errno(libc::ENOSYS as u16),
        },
    ];
    #[cfg(target_arch = "x86_64")]
    r.push(notify(
        libc::SYS_open,
        When::ArgMasked {
            arg: 1,
            mask: O_ACCMODE,
            value: libc::O_RDONLY as u32,
        },
    ));
    for nr in [
        libc::SYS_bind,
        libc::SYS_connect,
        libc::SYS_getsockname,
        libc::SYS_getpeername,
        libc::SYS_getsockopt,
        libc::SYS_setsockopt,
        libc::SYS_shutdown,
        libc::SYS_listen,
        libc::SYS_accept,
        libc::SYS_accept4,
        libc::SYS_recvmsg,
    ] {
        r.push(notify(nr, When::Always));
    }
    r
}

/// The filter program.
pub(crate) fn filter() -> io::Result<Vec<libc::sock_filter>> {
    program(&rules(), Verdict::Errno(libc::ENOSYS as u16))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::seccomp::{run_program, NATIVE_ARCH};

    fn verdict(nr: i64, args: [u64; 6]) -> u32 {
        run_program(&filter().unwrap(), NATIVE_ARCH, nr as u32, args).unwrap()
    }

    #[test]
    fn what_is_trapped() {
        let notify = libc::SECCOMP_RET_USER_NOTIF;
        let allow = libc::SECCOMP_RET_ALLOW;
        let enosys = libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32;
        assert_eq!(verdict(libc::SYS_socket, [2, 2, 0, 0, 0, 0]), notify);
        assert_eq!(verdict(libc::SYS_socket, [16, 3, 0, 0, 0, 0]), notify);
        assert_eq!(verdict(libc::SYS_socket, [1, 1, 0, 0, 0, 0]), allow);
        assert_eq!(verdict(libc::SYS_socket, [17, 3, 0, 0, 0, 0]), allow);
        assert_eq!(verdict(libc::SYS_ioctl, [3, 0x8913, 0, 0, 0, 0]), notify);
        assert_eq!(verdict(libc::SYS_ioctl, [0, 0x5401, 0, 0, 0, 0]), allow);
        assert_eq!(verdict(libc::SYS_openat, [0, 0, 0x80000, 0, 0, 0]), notify);
        assert_eq!(verdict(libc::SYS_openat, [0, 0, 0x241, 0, 0, 0]), allow);
        assert_eq!(verdict(libc::SYS_sendto, [3, 0, 0, 0, 0, 0]), allow);
        assert_eq!(
            verdict(libc::SYS_sendto, [3, 0, 0, 0, 0x7fff0000, 0]),
            notify
        );
        assert_eq!(verdict(libc::SYS_recvfrom, [3, 0, 0, 0, 0, 0]), allow);
        assert_eq!(
            verdict(libc::SYS_recvfrom, [3, 0, 0, 0, 0x7fff0000, 0]),
            notify
        );
        assert_eq!(
            verdict(libc::SYS_sendmsg, [3, 0x7fff0000, 0, 0, 0, 0]),
            notify
        );
        assert_eq!(
            verdict(
                libc::SYS_sendmsg,
                [3, 0x7fff0000, UNTRAPPED_SENDMSG_FLAGS as u64, 0, 0, 0]
            ),
            allow
        );
        for nr in [
            libc::SYS_recvmsg,
            libc::SYS_accept,
            libc::SYS_accept4,
            libc::SYS_listen,
        ] {
            assert_eq!(verdict(nr, [0; 6]), notify, "nr {nr}");
        }
        assert_eq!(verdict(libc::SYS_io_uring_setup, [0; 6]), enosys);
        for nr in [
            libc::SYS_read,
            libc::SYS_write,
            libc::SYS_sendmmsg,
            libc::SYS_recvmmsg,
            libc::SYS_close,
            libc::SYS_clone,
            libc::SYS_execve,
        ] {
            assert_eq!(verdict(nr, [0; 6]), allow, "nr {nr}");
        }
    }
}
