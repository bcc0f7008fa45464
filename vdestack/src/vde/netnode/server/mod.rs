//! The socket side of a hub or switch: the directory, the `ctl` listener, one
//! control stream and one datagram socket per client, and a timer, all in one
//! epoll set. Frames are moved here; clients come and go in [`door`].

mod door;

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::{UnixDatagram, UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Instant;

use rustix::event::epoll::{self, CreateFlags, Event, EventData, EventFlags};
use rustix::event::Timespec;
use rustix::io::Errno;
use rustix::net::{RecvFlags, SendFlags};

use super::admission::{Admission, Limits};
use super::dir::{claim_dir, set_owner_and_mode, DirGuard};
use super::forward::{Forwarder, PortId, HOST};
use super::listener::Listener;
use super::protocol;
use super::timer::Timer;
use super::{Config, Kind};
use crate::vde::{Recv, MAX_FRAME, MIN_FRAME};

/// The epoll token of the listening socket. A port's tokens are `id << 1` for its
/// control stream and `id << 1 | 1` for its data socket.
const LISTENER: u64 = u64::MAX;

/// The epoll token of the timer.
const TIMER: u64 = u64::MAX - 1;

/// How many epoll events one wait collects.
const EVENTS: usize = 32;

/// How many frames one port's data socket may deliver per epoll event before the
/// next ready port gets its turn. Reading on until the socket is empty saves an
/// `epoll_wait` per frame under load; the bound keeps ports fair.
const BURST: u32 = 8;

/// What reading a port's data socket gave.
enum Got {
    /// A frame for the host, of this length, is in the caller's buffer.
    Host(usize),
    /// A frame was forwarded to other ports only (or discarded as a runt).
    Forwarded,
    /// Nothing to read (or the port is gone).
    Empty,
}

/// `sun_path` must hold `<dir>/fd<N>` and its NUL: room for "/fd" and 10 digits.
const PORT_NAME_ROOM: usize = 14;

/// One client.
#[derive(Debug)]
struct Port {
    ctl: UnixStream,
    /// Made when the client's request arrives.
    data: Option<UnixDatagram>,
    /// The data socket's file, unlinked when the port goes.
    path: Option<PathBuf>,
}

/// The running node.
#[derive(Debug)]
pub(super) struct Server {
    config: Config,
    epoll: OwnedFd,
    listener: Listener,
    /// Who waits for a handshake, and the accept back-off.
    admission: Admission,
    timer: Timer,
    /// Log lines that a flood could repeat without end.
    noise: door::Noise,
    /// Port `id` lives at `ports[id - 1]`; freed slots are reused. A port whose
    /// `data` is `None` still waits for its client's request.
    ports: Vec<Option<Port>>,
    core: Forwarder,
    /// Tokens of the events of the last wait not yet handled. Kept as plain
    /// numbers: rustix's `Event` may hold a pointer, which is not `Send`.
    tokens: [u64; EVENTS],
    next_event: usize,
    n_events: usize,
    /// Frames read so far for the current event (see [`BURST`]).
    burst: u32,
    /// Reused for every frame, so forwarding does not allocate.
    frame_buf: Box<[u8]>,
    dests: Vec<PortId>,
    dead: Vec<PortId>,
    /// Scratch list of ports whose handshake time ran out.
    expired: Vec<PortId>,
    // Declared last: dropped after the sockets are closed.
    guard: DirGuard,
}

fn would_block(e: Errno) -> bool {
    e == Errno::AGAIN || e == Errno::INTR || e == Errno::NOBUFS
}

impl Server {
    pub(super) fn start(kind: Kind, config: Config) -> io::Result<Self> {
        let dir = config.dir.clone();
        if dir.as_os_str().len() + PORT_NAME_ROOM > protocol::SUN_PATH_LEN {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is too long for a unix socket path", dir.display()),
            ));
        }
        let lock = claim_dir(&dir)?;
        let mut guard = DirGuard {
            dir: dir.clone(),
            ctl: None,
            _lock: lock,
        };
        set_owner_and_mode(&dir, config.gid, config.dirmode)?;
        let ctl = dir.join("ctl");
        let listener = UnixListener::bind(&ctl)
            .map_err(|e| crate::error::context(e, format!("cannot listen on {}", ctl.display())))?;
        guard.ctl = Some(ctl.clone());
        set_owner_and_mode(&ctl, config.gid, config.mode)?;
        let epoll = epoll::create(CreateFlags::CLOEXEC)?;
        let listener = Listener::new(listener, &epoll, LISTENER)?;
        let timer = Timer::new(&epoll, TIMER)?;
        let nofile = rustix::process::getrlimit(rustix::process::Resource::Nofile)
            .current
            .unwrap_or(u64::MAX);
        Ok(Self {
            core: Forwarder::new(kind, config.expire, config.hashsize),
            config,
            epoll,
            listener,
            admission: Admission::new(Limits::for_fd_limit(nofile)),
            timer,
            noise: door::Noise::new(),
            ports: Vec::new(),
            tokens: [0; EVENTS],
            next_event: 0,
            n_events: 0,
            burst: 0,
            frame_buf: vec![0; MAX_FRAME].into_boxed_slice(),
            dests: Vec::with_capacity(64),
            dead: Vec::with_capacity(8),
            expired: Vec::new(),
            guard,
        })
    }

    pub(super) fn dir(&self) -> &Path {
        &self.guard.dir
    }

    pub(super) fn epoll(&self) -> &OwnedFd {
        &self.epoll
    }

    pub(super) fn port_count(&self) -> usize {
        self.core.ports().len() - 1
    }

    /// Handles ready events until one yields a frame for the host.
    pub(super) fn recv(&mut self, buf: &mut [u8]) -> io::Result<Recv> {
        let mut handled = false;
        loop {
            if self.next_event == self.n_events {
                if handled {
                    return Ok(Recv::Nothing);
                }
                let zero = Timespec {
                    tv_sec: 0,
                    tv_nsec: 0,
                };
                self.next_event = 0;
                self.burst = 0;
                self.n_events = 0;
                let mut events = [Event {
                    flags: EventFlags::empty(),
                    data: EventData::new_u64(0),
                }; EVENTS];
                self.n_events = epoll::wait(&self.epoll, &mut events[..], Some(&zero))?;
                for (t, e) in self.tokens.iter_mut().zip(&events[..self.n_events]) {
                    *t = e.data.u64();
                }
                if self.n_events == 0 {
                    return Err(io::ErrorKind::WouldBlock.into());
                }
            }
            let token = self.tokens[self.next_event];
            handled = true;
            if token == LISTENER {
                self.next_event += 1;
                self.accept_ready();
            } else if token == TIMER {
                self.next_event += 1;
                self.timer_fired();
            } else if token & 1 == 0 {
                self.next_event += 1;
                self.ctl_ready((token >> 1) as PortId);
            } else {
                // A data socket: stay on it until it is empty or had its burst.
                let got = self.frame_ready((token >> 1) as PortId, buf);
                self.burst += 1;
                if matches!(got, Got::Empty) || self.burst >= BURST {
                    self.next_event += 1;
                    self.burst = 0;
                }
                if let Got::Host(n) = got {
                    return Ok(Recv::Frame(n));
                }
            }
        }
    }

    /// Forwards a frame from the host; returns its length (it is dropped on full
    /// ports, as a switch does).
    pub(super) fn send_from_host(&mut self, frame: &[u8]) -> usize {
        if frame.len() >= MIN_FRAME {
            self.core
                .forward(HOST, frame, Instant::now(), &mut self.dests);
            deliver(&self.ports, &self.dests, frame, &mut self.dead);
            self.bury_dead();
        }
        frame.len()
    }

    fn port(&self, id: PortId) -> Option<&Port> {
        self.ports.get(id.checked_sub(1)?)?.as_ref()
    }

    /// Receives one frame from port `id` and forwards it; when the host is one of the
    /// destinations the frame is copied to `buf`.
    fn frame_ready(&mut self, id: PortId, buf: &mut [u8]) -> Got {
        let Some(data) = id
            .checked_sub(1)
            .and_then(|i| self.ports.get(i))
            .and_then(Option::as_ref)
            .and_then(|p| p.data.as_ref())
        else {
            return Got::Empty;
        };
        let n = match rustix::net::recv(data, &mut self.frame_buf[..], RecvFlags::DONTWAIT) {
            Ok((n, _)) => n,
            Err(e) if would_block(e) => return Got::Empty,
            Err(_) => {
                self.remove_port(id);
                return Got::Empty;
            }
        };
        if n < MIN_FRAME {
            return Got::Forwarded;
        }
        let frame = &self.frame_buf[..n];
        self.core
            .forward(id, frame, Instant::now(), &mut self.dests);
        deliver(&self.ports, &self.dests, frame, &mut self.dead);
        let to_host = self.dests.contains(&HOST);
        self.bury_dead();
        if to_host {
            let m = n.min(buf.len());
            buf[..m].copy_from_slice(&self.frame_buf[..m]);
            Got::Host(m)
        } else {
            Got::Forwarded
        }
    }

    fn bury_dead(&mut self) {
        while let Some(id) = self.dead.pop() {
            self.remove_port(id);
        }
    }

    /// Closes a port: its sockets, its socket file, its learned addresses.
    fn remove_port(&mut self, id: PortId) {
        let Some(port) = self.ports.get_mut(id - 1).and_then(Option::take) else {
            return;
        };
        if port.data.is_none() {
            self.admission.settled(id);
            self.rearm();
        }
        // Closing the fds takes them out of the epoll set too.
        if let Some(path) = &port.path {
            let _ = std::fs::remove_file(path);
        }
        self.core.remove_port(id);
    }
}

/// Sends `frame` to every client port in `dests` without blocking. A full port
/// drops the frame; a port whose socket fails is put in `dead`.
fn deliver(ports: &[Option<Port>], dests: &[PortId], frame: &[u8], dead: &mut Vec<PortId>) {
    for &id in dests {
        if id == HOST {
            continue;
        }
        let Some(data) = id
            .checked_sub(1)
            .and_then(|i| ports.get(i))
            .and_then(Option::as_ref)
            .and_then(|p| p.data.as_ref())
        else {
            continue;
        };
        match rustix::net::send(
            data.as_fd(),
            frame,
            SendFlags::DONTWAIT | SendFlags::NOSIGNAL,
        ) {
            Ok(_) => {}
            Err(e) if would_block(e) => {}
            Err(_) => dead.push(id),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.noise.flush_all(&self.guard.dir);
        for port in self.ports.iter().flatten() {
            if let Some(path) = &port.path {
                let _ = std::fs::remove_file(path);
            }
        }
        self.ports.clear();
    }
}
