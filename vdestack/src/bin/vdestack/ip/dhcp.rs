//! `vdestack ip config LINE` when LINE asks for `dhcp`: the command exits at once,
//! so the lease is obtained and then kept by a renewer process of its own.
//!
//! The command starts `vdestack ip --dhcp-renewer config LINE` (in its own process
//! group, so the shell's Ctrl-C does not reach it), which configures the stack as
//! any caller would, prints what it did, then keeps renewing. The command relays
//! that output and exits with the renewer's verdict; the renewer stays until
//! `vdestack ip config -dhcp` (or `-all`) asks for the lease back (SIGTERM: it
//! sends a DHCPRELEASE and takes the address and route off), until its interface
//! goes away (the `vdestack ns` or stack that owned it ended), or SIGINT/SIGHUP.
//! It prints nothing after its start: it has no terminal then.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use vdestack::nl::config::{self, Configured, Iface};
use vdestack::nl::dhcp::{self, kernel::host_socket, renewer_process};
use vdestack::nl::NlClient;

/// The line the renewer prints once it renews, after its report.
const READY: &str = "-- vdestack dhcp renewer running --";

/// Whether the configuration line asks for a lease.
pub fn wants_lease(line: &str) -> bool {
    config::parse(line).is_ok_and(|p| p.steps.iter().any(|s| matches!(s, config::Step::Dhcp(_))))
}

/// What a configuration did, for the user: the bit mask, each lease, resolv.conf.
pub fn report(c: &Configured) -> String {
    let mut s = format!("configured: {:?}\n", c.done);
    for l in &c.leases {
        s.push_str(&format!(
            "dhcp: {}/{} router {} server {} lease {} s\n",
            l.addr,
            l.prefix,
            l.router.map_or("-".to_string(), |r| r.to_string()),
            l.server,
            l.lease_secs
        ));
    }
    if let Some(r) = &c.resolv_conf {
        s.push_str(r);
    }
    s
}

/// Starts the renewer process for `line` and relays its report.
pub fn spawn_renewer(line: &str) -> io::Result<()> {
    let exe = std::env::current_exe()?;
    let mut child = Command::new(exe)
        .args(["ip", renewer_process::MARK, "config", line])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()?;
    let out = child.stdout.take().expect("piped");
    let mut ready = false;
    for l in BufReader::new(out).lines() {
        let l = l?;
        if l == READY {
            ready = true;
            break;
        }
        println!("{l}");
    }
    if ready {
        // It runs on; its pipes are closed with our end.
        return Ok(());
    }
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    let _ = child.wait();
    Err(io::Error::other(
        err.trim().trim_start_matches("vdestack: ").to_string(),
    ))
}

/// The renewer process: configures, reports, then renews until told to stop.
pub fn run_renewer(line: &str) -> io::Result<()> {
    let stop = crate::signals::stop_fd()?;
    let nl = NlClient::new()?;
    let plan = config::parse(line)?;
    let c = config::configure_with(&nl, line, &host_socket)?;
    let index = match &plan.iface {
        Iface::Name(n) => nl.link_index(n)?,
        Iface::Index(i) => *i,
    };
    let cookie = dhcp::netns_cookie(&host_socket)?;
    renewer_process::register(cookie, index)?;
    let mut out = io::stdout();
    let _ = writeln!(out, "{}{READY}", report(&c));
    let _ = out.flush();
    // Nobody reads our output from now on: writing to the closed pipes would fail
    // (and a failed print panics).
    if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
        let _ = rustix::stdio::dup2_stdout(&null);
        let _ = rustix::stdio::dup2_stderr(&null);
    }
    loop {
        let mut fds = [rustix::event::PollFd::new(
            &stop,
            rustix::event::PollFlags::IN,
        )];
        let second = rustix::event::Timespec {
            tv_sec: 1,
            tv_nsec: 0,
        };
        let ready = match rustix::event::poll(&mut fds, Some(&second)) {
            Ok(n) => n > 0,
            Err(rustix::io::Errno::INTR) => false,
            Err(e) => return Err(e.into()),
        };
        if ready {
            let _ = dhcp::release(&host_socket, index);
            break;
        }
        if !dhcp::running(&host_socket, index)? {
            break;
        }
    }
    renewer_process::unregister(cookie, index);
    Ok(())
}
