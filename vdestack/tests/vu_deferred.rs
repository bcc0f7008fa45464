//! A served stack that answers a call later: a blocking `connect` waits in the
//! program while the supervisor serves other processes, and ends when the
//! stack says so (here: when `vde0` goes up), the way a user-space TCP/IP
//! stack will answer connects and accepts (`InetReply::Later`).

mod common;

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::process::{Command, Stdio};

use common::*;
use rustix::event::{eventfd, EventfdFlags};
use vdestack::vu::Errno;
use vdestack::vu::{
    no_route, CallId, InetCall, InetReply, InetSocket, MemNet, NetDialog, ServedNet, Vu,
};

/// `--stack mem`, but a connect waits until vde0 is up, then succeeds. While
/// one waits, vde0's MTU reads 1234, so the program's shell can see it.
struct Deferring {
    mem: MemNet,
    wake: OwnedFd,
    waiting: Vec<CallId>,
    deferred: usize,
}

impl Deferring {
    fn vde0_up(&self) -> bool {
        self.mem
            .stack()
            .links()
            .iter()
            .any(|l| l.name == "vde0" && l.is_up())
    }
}

impl ServedNet for Deferring {
    fn rtnetlink(&mut self, port: u32, request: &[u8]) -> Vec<Vec<u8>> {
        let r = self.mem.rtnetlink(port, request);
        if self.vde0_up() && !self.waiting.is_empty() {
            rustix::io::write(&self.wake, &1u64.to_ne_bytes()).unwrap();
        }
        r
    }

    fn inet_call(
        &mut self,
        sock: &mut InetSocket,
        call: InetCall<'_>,
        id: CallId,
    ) -> Result<InetReply, Errno> {
        match call {
            InetCall::Connect(Some(_)) if !self.vde0_up() => {
                self.waiting.push(id);
                self.deferred += 1;
                if let Some(l) = self.mem.stack_mut().link_mut(2) {
                    l.mtu = 1234;
                }
                Ok(InetReply::Later)
            }
            InetCall::Connect(Some(_)) => Ok(InetReply::Value(0)),
            other => no_route(&mut NetDialog::new(&mut self.mem), sock, other),
        }
    }

    fn wake_fd(&self) -> Option<BorrowedFd<'_>> {
        Some(self.wake.as_fd())
    }

    fn completions(&mut self) -> Vec<(CallId, Result<InetReply, Errno>)> {
        let mut b = [0u8; 8];
        let _ = rustix::io::read(&self.wake, &mut b);
        self.waiting
            .drain(..)
            .map(|id| (id, Ok(InetReply::Value(0))))
            .collect()
    }
}

#[test]
fn a_deferred_connect_waits_while_others_are_served() {
    const T: &str = "a_deferred_connect_waits_while_others_are_served";
    if let Err(e) = vdestack::vu::check_support() {
        return skip(T, &format!("{e}"));
    }
    if !have_tool(T, "ip") || !have_tool(T, "gcc") {
        return;
    }
    let dir = TempDir::new("vu-deferred");
    let bin = dir.path("vu_procs");
    let src = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/c/vu_procs.c");
    let built = Command::new("gcc")
        .args(["-O2", "-pthread", "-o"])
        .arg(&bin)
        .arg(src)
        .status()
        .unwrap();
    assert!(built.success());
    let out = dir.path("out");
    let net = Deferring {
        mem: MemNet::netlinktest(),
        wake: eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK).unwrap(),
        waiting: Vec::new(),
        deferred: 0,
    };
    let mut vu = Vu::new(net);
    let script = format!(
        "{bin} connect > {out} & \
         until ip -o link show vde0 | grep -q 'mtu 1234'; do :; done; \
         echo pending > {out}.first; ip link set vde0 up; wait",
        bin = bin.display(),
        out = out.display()
    );
    let mut c = Command::new("/bin/sh");
    c.args(["-c", &script]).stdin(Stdio::null());
    let st = vu.run(c).unwrap();
    assert!(st.success());
    assert_eq!(vu.net().deferred, 1, "the connect was answered later");
    assert_eq!(
        std::fs::read_to_string(format!("{}.first", out.display())).unwrap(),
        "pending\n"
    );
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "connect 0 \n");
}
