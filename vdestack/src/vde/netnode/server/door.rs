//! Clients coming and going: accepting control connections under the bounds of
//! [`Admission`](super::Admission), their requests, the timer that enforces
//! deadlines and back-offs, and the rate-limited log lines of all that.

use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::time::{Duration, Instant};

use rustix::event::epoll::{self, EventData, EventFlags};
use rustix::io::Errno;

use super::{Port, Server};
use crate::vde::netnode::admission::{AcceptError, Action};
use crate::vde::netnode::dir::set_owner_and_mode;
use crate::vde::netnode::forward::PortId;
use crate::vde::netnode::protocol::{self, Request, MAX_REQUEST, REQ_NEW_CONTROL, REQ_NEW_PORT0};
use crate::vde::rate_limit::RateLimit;

/// How many connections one readiness of the listener may bring in before the
/// other events get their turn.
const ACCEPT_BATCH: usize = 16;

/// A kind of log line a flood could repeat without end: a few per [`Noisy`]
/// window, then a count.
#[derive(Debug)]
struct Noisy {
    limit: RateLimit,
    level: log::Level,
    /// What is counted, for the summary line ("accept failures").
    what: &'static str,
}

/// Lines per window, and the window, of every [`Noisy`] kind.
const NOISE_BURST: u32 = 5;
const NOISE_WINDOW: Duration = Duration::from_secs(10);

impl Noisy {
    const fn new(level: log::Level, what: &'static str) -> Self {
        Self {
            limit: RateLimit::new(NOISE_BURST, NOISE_WINDOW),
            level,
            what,
        }
    }

    fn log(&mut self, now: Instant, dir: &Path, msg: std::fmt::Arguments<'_>) {
        if !log::log_enabled!(self.level) {
            return;
        }
        if let Some(suppressed) = self.limit.allow(now) {
            log::log!(self.level, "{}: {msg}{suppressed}", dir.display());
        }
    }

    /// Writes the count of suppressed lines once their window is over; with
    /// `now` `None` (the node goes away), whatever was suppressed.
    fn flush(&mut self, now: Option<Instant>, dir: &Path) {
        let n = match now {
            Some(now) => self.limit.flush(now).unwrap_or(0),
            None => self.limit.take(),
        };
        if n > 0 {
            log::log!(
                self.level,
                "{}: {n} more {} (not logged one by one)",
                dir.display(),
                self.what,
            );
        }
    }
}

/// The node's rate-limited log lines.
#[derive(Debug)]
pub(super) struct Noise {
    /// `accept` failing.
    accept: Noisy,
    /// Connections closed to make room: too many waiting, or no fd left.
    crowd: Noisy,
    /// Connections closed at their handshake deadline.
    late: Noisy,
    /// Requests refused.
    request: Noisy,
    /// Ports that could not be made for a good request.
    port: Noisy,
}

impl Noise {
    pub(super) fn new() -> Self {
        Self {
            accept: Noisy::new(log::Level::Warn, "accept failures"),
            crowd: Noisy::new(log::Level::Warn, "waiting connections closed to make room"),
            late: Noisy::new(
                log::Level::Warn,
                "connections closed for sending no request",
            ),
            request: Noisy::new(log::Level::Info, "refused requests"),
            port: Noisy::new(log::Level::Warn, "ports that could not be made"),
        }
    }

    fn all(&mut self) -> [&mut Noisy; 5] {
        [
            &mut self.accept,
            &mut self.crowd,
            &mut self.late,
            &mut self.request,
            &mut self.port,
        ]
    }

    /// Writes what was suppressed and not yet counted in the log.
    pub(super) fn flush_all(&mut self, dir: &Path) {
        for n in self.all() {
            n.flush(None, dir);
        }
    }

    /// When the next summary line is due.
    fn flush_at(&self) -> Option<Instant> {
        [
            &self.accept,
            &self.crowd,
            &self.late,
            &self.request,
            &self.port,
        ]
        .iter()
        .filter_map(|n| n.limit.flush_at())
        .min()
    }
}

impl Server {
    /// The listener is readable: takes in up to [`ACCEPT_BATCH`] connections.
    pub(super) fn accept_ready(&mut self) {
        let now = Instant::now();
        for _ in 0..ACCEPT_BATCH {
            let e = match self.listener.accept() {
                Ok(stream) => {
                    self.listener.refill_reserve();
                    self.welcome(stream, now);
                    continue;
                }
                Err(e) if e == Errno::AGAIN => break,
                Err(e) => e,
            };
            let can_shed = self.listener.can_shed();
            match self
                .admission
                .accept_failed(AcceptError::classify(e), now, can_shed)
            {
                Action::Retry => {}
                Action::Evict(id) => {
                    self.noise.crowd.log(
                        now,
                        &self.guard.dir,
                        format_args!(
                            "accept: {e}; closed the connection that waited longest for its request"
                        ),
                    );
                    self.remove_port(id);
                }
                Action::Shed(until) => {
                    let shed = self.listener.shed();
                    self.pause(
                        now,
                        until,
                        e,
                        if shed { "turned one client away, " } else { "" },
                    );
                    break;
                }
                Action::Pause(until) => {
                    self.pause(now, until, e, "");
                    break;
                }
            }
        }
        self.rearm();
    }

    /// Stops listening until `until` after `accept` failed with `e`.
    fn pause(&mut self, now: Instant, until: Instant, e: Errno, shed: &str) {
        let ms = until.saturating_duration_since(now).as_millis();
        self.noise.accept.log(
            now,
            &self.guard.dir,
            format_args!(
                "accept: {e}; {shed}not accepting for {ms} ms ({} ports, {} waiting for their request)",
                self.port_count(),
                self.admission.pending()
            ),
        );
        if let Err(e) = self.listener.set_listening(&self.epoll, false) {
            log::warn!("{}: epoll: {e}", self.guard.dir.display());
        }
    }

    /// Takes in an accepted control connection: it now has until its deadline to
    /// send its request, and may push out the connection that waited longest.
    fn welcome(&mut self, stream: std::os::unix::net::UnixStream, now: Instant) {
        let slot = match self.ports.iter().position(Option::is_none) {
            Some(i) => i,
            None => {
                self.ports.push(None);
                self.ports.len() - 1
            }
        };
        let id = slot + 1;
        let token = (id as u64) << 1;
        if let Err(e) = epoll::add(
            &self.epoll,
            &stream,
            EventData::new_u64(token),
            EventFlags::IN,
        ) {
            log::warn!("{}: epoll: {e}", self.dir().display());
            return;
        }
        self.ports[slot] = Some(Port {
            ctl: stream,
            data: None,
            path: None,
        });
        if let Some(oldest) = self.admission.arrived(id, now) {
            let max = self.admission.limits().max_pending;
            self.noise.crowd.log(
                now,
                &self.guard.dir,
                format_args!(
                    "{max} connections wait for their request: closed the one that waited longest"
                ),
            );
            self.remove_port(oldest);
        }
    }

    /// The timer fired: closes connections whose handshake time is up, resumes
    /// listening after a back-off, writes the summary of suppressed log lines.
    pub(super) fn timer_fired(&mut self) {
        self.timer.fired();
        let now = Instant::now();
        let mut expired = std::mem::take(&mut self.expired);
        self.admission.expired(now, &mut expired);
        for &id in &expired {
            let secs = self.admission.limits().handshake.as_secs_f32();
            self.noise.late.log(
                now,
                &self.guard.dir,
                format_args!("a connection sent no request within {secs} s: closed"),
            );
            self.remove_port(id);
        }
        expired.clear();
        self.expired = expired;
        if self.admission.resume(now) {
            if let Err(e) = self.listener.set_listening(&self.epoll, true) {
                log::warn!("{}: epoll: {e}", self.guard.dir.display());
            }
        }
        let dir = &self.guard.dir;
        for n in self.noise.all() {
            n.flush(Some(now), dir);
        }
        self.rearm();
    }

    /// Arms the timer for whatever is due next. Costs no system call when that
    /// did not change.
    pub(super) fn rearm(&mut self) {
        let due = match (self.admission.next_due(), self.noise.flush_at()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if let Err(e) = self.timer.set(due, Instant::now()) {
            log::warn!("{}: timer: {e}", self.guard.dir.display());
        }
    }

    /// A control stream is readable: the client's request, or its EOF. Requests are
    /// read like vde_switch does (all of it in one read); v3 and the legacy v1
    /// layout are both accepted, for any port (the number asked for is ignored, as
    /// upstream's netnode does). Anything else is answered by closing the stream.
    pub(super) fn ctl_ready(&mut self, id: PortId) {
        let Some(port) = self.port(id) else { return };
        let mut req = [0u8; MAX_REQUEST];
        let mut ctl = &port.ctl;
        let n = match ctl.read(&mut req) {
            Ok(0) => return self.remove_port(id), // the client closed: port gone
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return,
            Err(_) => return self.remove_port(id),
        };
        if port.data.is_some() {
            return; // clients say nothing after the request; ignore chatter
        }
        let now = Instant::now();
        // The request comes in a single read, as vde_switch also requires.
        match Request::decode(&req[..n]) {
            Ok(r) if r.kind == REQ_NEW_CONTROL || r.kind == REQ_NEW_PORT0 => {
                if let Err(e) = self.open_port(id, &r) {
                    self.noise.port.log(
                        now,
                        &self.guard.dir,
                        format_args!("cannot connect back to {r:?}: {e}"),
                    );
                    self.remove_port(id);
                } else {
                    self.admission.settled(id);
                    self.rearm();
                }
            }
            Ok(r) => {
                self.noise.request.log(
                    now,
                    &self.guard.dir,
                    format_args!("unsupported request {r:?}"),
                );
                self.remove_port(id);
            }
            Err(e) => {
                self.noise
                    .request
                    .log(now, &self.guard.dir, format_args!("bad request: {e}"));
                self.remove_port(id);
            }
        }
    }

    /// Makes the data socket for an accepted request and replies with its address.
    fn open_port(&mut self, id: PortId, req: &Request) -> io::Result<()> {
        let data = UnixDatagram::unbound()?;
        data.set_nonblocking(true)?;
        data.connect(std::ffi::OsStr::from_bytes(&req.path))?;
        let Some(Some(port)) = self.ports.get_mut(id - 1) else {
            return Ok(());
        };
        // Named after the control stream's fd, unique while the port lives. A file
        // of that name can only be left over from a crash.
        let path = self.guard.dir.join(format!("fd{}", port.ctl.as_raw_fd()));
        let _ = std::fs::remove_file(&path);
        rustix::net::bind(&data, &rustix::net::SocketAddrUnix::new(&path)?)?;
        port.path = Some(path.clone());
        set_owner_and_mode(&path, self.config.gid, self.config.mode)?;
        let reply = protocol::encode_sockaddr(path.as_os_str().as_bytes())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        // A fresh stream has room for 110 bytes: this write does not block.
        let sent = rustix::io::write(&port.ctl, &reply)?;
        if sent != reply.len() {
            return Err(io::ErrorKind::WriteZero.into());
        }
        let token = (id as u64) << 1 | 1;
        epoll::add(
            &self.epoll,
            &data,
            EventData::new_u64(token),
            EventFlags::IN,
        )?;
        port.data = Some(data);
        self.core.add_port(id);
        Ok(())
    }
}
