//! The helper's side: runs in the forked grandchild, makes only raw system calls
//! on memory prepared before the fork (no allocation, locks or panics), and never
//! returns. The messages are in [`super::wire`].

use std::ffi::CStr;
use std::io;
use std::os::fd::RawFd;

use super::super::tun::{IfReq, IFF_NO_PI, IFF_TAP, IFF_VNET_HDR, TUNSETIFF, TUNSETPERSIST};
use super::wire::*;
use super::Prepared;

fn errno() -> i32 {
    io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

fn exit(code: i32) -> ! {
    // SAFETY: _exit never returns and runs no inherited clean-up.
    unsafe { libc::_exit(code) }
}

/// Control-message room for `1 + MAX_TAPS` fds, aligned for `cmsghdr`.
#[repr(C, align(8))]
struct Cmsg([u8; 16 + 4 * (1 + MAX_TAPS) + 8]);

/// Sends three words with `fds` attached. Returns whether it went.
fn send_words(sock: RawFd, words: [i32; 3], fds: &[RawFd]) -> bool {
    let mut cbuf = Cmsg([0; 16 + 4 * (1 + MAX_TAPS) + 8]);
    let mut iov = libc::iovec {
        iov_base: words.as_ptr() as *mut libc::c_void,
        iov_len: REPLY_LEN,
    };
    // SAFETY: msghdr is plain data; all-zero is valid (no name, no control).
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    let n = fds.len().min(1 + MAX_TAPS);
    if n > 0 {
        // SAFETY: CMSG_SPACE is arithmetic.
        let space = unsafe { libc::CMSG_SPACE((4 * n) as u32) } as usize;
        msg.msg_control = cbuf.0.as_mut_ptr().cast();
        msg.msg_controllen = space as _;
        // SAFETY: `cbuf` is aligned for cmsghdr and holds CMSG_SPACE(4 * n) bytes
        // (16 of header, 4 per fd, padding); CMSG_FIRSTHDR points at its start and
        // the n fds written from CMSG_DATA end within it.
        unsafe {
            let c = libc::CMSG_FIRSTHDR(&msg);
            (*c).cmsg_level = libc::SOL_SOCKET;
            (*c).cmsg_type = libc::SCM_RIGHTS;
            (*c).cmsg_len = libc::CMSG_LEN((4 * n) as u32) as _;
            let data = libc::CMSG_DATA(c).cast::<i32>();
            for (i, fd) in fds.iter().take(n).enumerate() {
                std::ptr::write_unaligned(data.add(i), *fd);
            }
        }
    }
    loop {
        // SAFETY: msg points at `iov`, `words` and `cbuf`, all alive for the call.
        let r = unsafe { libc::sendmsg(sock, &msg, libc::MSG_NOSIGNAL) };
        if r >= 0 {
            return true;
        }
        if errno() != libc::EINTR {
            return false;
        }
    }
}

/// Reports a failed start-up step and ends.
fn fail_start(sock: RawFd, step: i32) -> ! {
    let e = errno();
    send_words(sock, [step, e, 0], &[]);
    exit(1)
}

/// Sends `fd` as start-up step `step` (or the error), then closes it.
fn hand_over(sock: RawFd, step: i32, value: i32, fd: RawFd) {
    if fd < 0 {
        fail_start(sock, step);
    }
    let sent = send_words(sock, [step, 0, value], &[fd]);
    close(fd);
    if !sent {
        exit(1);
    }
}

fn close(fd: RawFd) {
    // SAFETY: the caller owns `fd`.
    unsafe { libc::close(fd) };
}

fn write_file(path: &CStr, data: &[u8]) -> bool {
    // SAFETY: `path` is NUL-terminated; open has no other memory effects.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return false;
    }
    // SAFETY: `data` is valid for `data.len()` bytes.
    let n = unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) };
    let e = errno();
    close(fd);
    if n != data.len() as isize {
        // Keep write's errno for the report.
        // SAFETY: __errno_location returns this thread's errno slot.
        unsafe { *libc::__errno_location() = if n < 0 { e } else { libc::EIO } };
        return false;
    }
    true
}

fn open_ro(path: &CStr) -> RawFd {
    // SAFETY: `path` is NUL-terminated.
    unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) }
}

/// The helper process. Never returns.
pub(super) fn main(sock: RawFd, life: RawFd, prep: &Prepared) -> ! {
    // SAFETY (whole block): only async-signal-safe libc wrappers over system
    // calls, on memory prepared before the fork; no allocation, locks or panics.
    let home = unsafe {
        // 1. Drop every inherited fd but the pair's end and the life pipe's
        //    write end (moved to sock + 1); reset signal handlers; no terminal.
        let life_kept = sock + 1;
        if life != life_kept && libc::dup2(life, life_kept) < 0 {
            exit(1);
        }
        if libc::syscall(libc::SYS_close_range, (sock + 2) as u32, u32::MAX, 0u32) != 0 {
            // Before Linux 5.9: close them one by one, up to the fd limit.
            let mut lim: libc::rlimit = std::mem::zeroed();
            let max = if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
                lim.rlim_cur.min(1 << 20) as i32
            } else {
                65536
            };
            for fd in sock + 2..max {
                libc::close(fd);
            }
        }
        for fd in 0..sock {
            libc::close(fd);
        }
        for sig in 1..65 {
            libc::signal(sig, libc::SIG_DFL);
        }
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
        libc::setsid();

        // 2. The user namespace, the home network namespace, the identity maps.
        if libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNET) != 0 {
            fail_start(sock, STEP_UNSHARE);
        }
        if !write_file(c"/proc/self/setgroups", b"deny\n") {
            fail_start(sock, STEP_SETGROUPS);
        }
        if !write_file(c"/proc/self/uid_map", &prep.uid_map) {
            fail_start(sock, STEP_UID_MAP);
        }
        if !write_file(c"/proc/self/gid_map", &prep.gid_map) {
            fail_start(sock, STEP_GID_MAP);
        }
        let home = open_ro(c"/proc/self/ns/net");
        if home < 0 {
            fail_start(sock, STEP_UNSHARE);
        }

        // 3. Our pid and user namespace.
        if !send_words(sock, [STEP_PID, 0, libc::getpid()], &[]) {
            exit(1);
        }
        hand_over(sock, STEP_USERNS, 0, open_ro(c"/proc/self/ns/user"));
        home
    };

    // 4. Serve requests until EOF.
    loop {
        let mut req = [0u8; REQ_MAX];
        let mut fds = [-1; 2];
        wait_briefly_for(sock);
        let Some(n) = recv_request(sock, &mut req, &mut fds) else {
            exit(1);
        };
        if n == 0 {
            exit(0);
        }
        let [reply, extra] = fds;
        if reply < 0 {
            // A request without its reply socket: not ours to answer.
            if extra >= 0 {
                close(extra);
            }
            continue;
        }
        serve(&req[..n], extra, reply, home, &prep.ping_range);
        if extra >= 0 {
            close(extra);
        }
        close(reply);
    }
}

/// Looks for the next request for up to [`POLL_NS`] without sleeping, yielding
/// the CPU between looks: requests come in bursts (a stack, then its sockets; a
/// thousand stacks), and waking a sleeping helper costs more than the request.
fn wait_briefly_for(sock: RawFd) {
    let start = now_ns();
    loop {
        let mut p = libc::pollfd {
            fd: sock,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, zero timeout.
        if unsafe { libc::poll(&mut p, 1, 0) } != 0 || now_ns().wrapping_sub(start) >= POLL_NS {
            return;
        }
        // SAFETY: no arguments, no memory.
        unsafe { libc::sched_yield() };
    }
}

/// How long [`wait_briefly_for`] looks.
const POLL_NS: u64 = 50_000;

/// CLOCK_MONOTONIC in nanoseconds (0 if it cannot be read).
fn now_ns() -> u64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `t` is a valid timespec to write.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut t) };
    (t.tv_sec as u64)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(t.tv_nsec as u64)
}

fn word(req: &[u8], i: usize) -> i32 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&req[i * 4..i * 4 + 4]);
    i32::from_ne_bytes(w)
}

/// Answers one request on `reply` (a failed send means the requester is gone: no
/// reason to stop). Always ends back in the `home` namespace.
fn serve(req: &[u8], extra: RawFd, reply: RawFd, home: RawFd, ping_range: &[u8]) {
    let refuse = |step: i32, err: i32| {
        send_words(reply, [err, step, 0], &[]);
    };
    if req.len() < REQ_HEAD {
        return refuse(FAIL_REQUEST, libc::EINVAL);
    }
    match word(req, 0) {
        OP_NET => {
            let count = word(req, 1);
            if count < 0
                || count as usize > MAX_TAPS
                || req.len() != REQ_HEAD + count as usize * NAME_LEN
            {
                return refuse(FAIL_REQUEST, libc::EINVAL);
            }
            let vnet = (word(req, 3) as u32 as u64) | ((word(req, 4) as u32 as u64) << 32);
            new_net(
                &req[REQ_HEAD..],
                count as usize,
                vnet,
                reply,
                home,
                ping_range,
            );
        }
        OP_SOCKET => {
            if extra < 0 || req.len() != REQ_HEAD {
                return refuse(FAIL_REQUEST, libc::EINVAL);
            }
            // SAFETY: setns and socket take integers only.
            unsafe {
                if libc::setns(extra, libc::CLONE_NEWNET) != 0 {
                    return refuse(FAIL_SETNS, errno());
                }
                // The raw system call: an application that interposes socket()
                // (the C ABI's default stack does) must not be re-entered here.
                let fd = libc::syscall(
                    libc::SYS_socket,
                    word(req, 2),
                    word(req, 3) | libc::SOCK_CLOEXEC,
                    word(req, 4),
                ) as RawFd;
                let err = errno();
                go_home(home);
                if fd < 0 {
                    return refuse(FAIL_SOCKET, err);
                }
                send_words(reply, [0, 0, 1], &[fd]);
                close(fd);
            }
        }
        _ => refuse(FAIL_REQUEST, libc::EINVAL),
    }
}

/// Back to the home namespace; if even that fails, the helper cannot keep its
/// promises (sockets would land in the wrong stack): it ends.
fn go_home(home: RawFd) {
    // SAFETY: setns takes integers only.
    if unsafe { libc::setns(home, libc::CLONE_NEWNET) } != 0 {
        exit(1);
    }
}

/// A new network namespace with one tap per 16-byte name in `names`; tap `i` gets
/// `IFF_VNET_HDR` when bit `i` of `vnet` is set. Its `ping_group_range` is set to
/// `ping_range` (our group), so ICMP echo sockets can be made in it, as on a
/// host (a new namespace allows none).
fn new_net(names: &[u8], count: usize, vnet: u64, reply: RawFd, home: RawFd, ping_range: &[u8]) {
    let mut fds = [-1 as RawFd; 1 + MAX_TAPS];
    let mut made = 0;
    let mut failed = None;
    // SAFETY: system calls on integers, NUL-terminated literals and `r`, a
    // 40-byte `struct ifreq` image on our stack.
    unsafe {
        if libc::unshare(libc::CLONE_NEWNET) != 0 {
            send_words(reply, [errno(), FAIL_UNSHARE, 0], &[]);
            return;
        }
        // /proc/sys/net is the namespace of whoever opens it: the new one. A
        // failure only leaves ping sockets refused (EACCES), as before.
        write_file(c"/proc/sys/net/ipv4/ping_group_range", ping_range);
        fds[0] = open_ro(c"/proc/self/ns/net");
        if fds[0] < 0 {
            failed = Some((FAIL_NETNS, errno()));
        } else {
            made = 1;
        }
        for i in 0..count {
            if failed.is_some() {
                break;
            }
            let fd = libc::open(
                c"/dev/net/tun".as_ptr(),
                libc::O_RDWR | libc::O_CLOEXEC | libc::O_NONBLOCK,
            );
            if fd < 0 {
                failed = Some((FAIL_TAP + i as i32, errno()));
                break;
            }
            let vnet_flag = if vnet >> i & 1 == 1 { IFF_VNET_HDR } else { 0 };
            let mut r = IfReq {
                name: [0; libc::IFNAMSIZ],
                flags: IFF_TAP | IFF_NO_PI | vnet_flag,
                _pad: [0; 22],
            };
            r.name
                .copy_from_slice(&names[i * NAME_LEN..(i + 1) * NAME_LEN]);
            r.name[libc::IFNAMSIZ - 1] = 0;
            // Persistent: closing the tap does not unregister it (20-30 ms of
            // kernel grace periods per tap); it goes with its namespace, whose
            // devices the kernel tears down in one batch, off our path.
            if libc::ioctl(fd, TUNSETIFF as _, &mut r as *mut IfReq) < 0
                || libc::ioctl(fd, TUNSETPERSIST as _, 1 as libc::c_ulong) < 0
            {
                failed = Some((FAIL_TAP + i as i32, errno()));
                close(fd);
                break;
            }
            fds[1 + i] = fd;
            made += 1;
        }
    }
    go_home(home);
    match failed {
        Some((step, err)) => {
            send_words(reply, [err, step, 0], &[]);
        }
        None => {
            send_words(reply, [0, 0, made as i32], &fds[..made]);
        }
    }
    for fd in &fds[..made] {
        close(*fd);
    }
}

/// Receives one request into `req` and up to two attached fds into `fds` (the
/// reply socket, then the extra one; others are closed): `None` on a hard error,
/// `Some(0)` at EOF, else the request's length.
fn recv_request(sock: RawFd, req: &mut [u8; REQ_MAX], fds: &mut [RawFd; 2]) -> Option<usize> {
    loop {
        let mut cbuf = Cmsg([0; 16 + 4 * (1 + MAX_TAPS) + 8]);
        let mut iov = libc::iovec {
            iov_base: req.as_mut_ptr().cast(),
            iov_len: REQ_MAX,
        };
        // SAFETY: msghdr is plain data; all-zero is valid.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.0.as_mut_ptr().cast();
        msg.msg_controllen = cbuf.0.len() as _;
        // SAFETY: msg points at `iov` (REQ_MAX bytes of `req`) and `cbuf`.
        let n = unsafe { libc::recvmsg(sock, &mut msg, libc::MSG_CMSG_CLOEXEC) };
        if n < 0 {
            if errno() == libc::EINTR {
                continue;
            }
            return None;
        }
        let mut k = 0;
        // SAFETY: the kernel filled `msg_controllen` bytes of `cbuf` with cmsghdrs;
        // CMSG_FIRSTHDR/CMSG_NXTHDR stay within it and CMSG_DATA points inside
        // each header's `cmsg_len` bytes, which hold (len - CMSG_LEN(0)) / 4 fds.
        unsafe {
            let mut c = libc::CMSG_FIRSTHDR(&msg);
            while !c.is_null() {
                if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                    let count = ((*c).cmsg_len as usize - libc::CMSG_LEN(0) as usize) / 4;
                    let data = libc::CMSG_DATA(c).cast::<i32>();
                    for i in 0..count {
                        let fd = std::ptr::read_unaligned(data.add(i));
                        if k < 2 {
                            fds[k] = fd;
                            k += 1;
                        } else {
                            close(fd);
                        }
                    }
                }
                c = libc::CMSG_NXTHDR(&msg, c);
            }
        }
        // A truncated request (MSG_TRUNC) is answered as malformed: length 0 would
        // read as EOF, so report at least one byte.
        if msg.msg_flags & libc::MSG_TRUNC != 0 {
            return Some(1);
        }
        return Some(n as usize);
    }
}
