//! The netdevice ioctls (see [`crate::vu::ioctl`] for which requests are
//! served on which fds), answered by [`crate::nl::emul`] over the stack's
//! rtnetlink.

use super::target::{FdKind, Target};
use super::{Answer, Served, State};
use crate::error::errno_of;
use crate::nl::emul::{self, IFREQ_SIZE, IN6_IFREQ_SIZE};
use crate::vu::ioctl::{classify, device_name_only, Class};
use crate::vu::served::{NetDialog, ServedNet};
use crate::vu::Errno;

/// The largest `SIOCGIFCONF` buffer filled (40 bytes per IPv4 address).
const IFCONF_MAX: usize = 1 << 20;

impl<N: ServedNet + ?Sized> State<'_, N> {
    pub(super) fn ioctl(&mut self, t: &Target<'_>) -> Answer {
        let req = t.n.args[1] as u32;
        let (served, family) = match t.fd_kind(t.int(0), &self.socks) {
            // Not a socket (or not open): the kernel answers (ENOTTY, EBADF, or a
            // device's own request).
            FdKind::Unknown | FdKind::NotSocket => return Answer::CONTINUE,
            FdKind::KernelSocket => (false, -1),
            FdKind::Served(ino) => match self.socks.get(&ino) {
                Some(Served::Inet(s)) => (true, s.family),
                _ => (true, libc::AF_NETLINK),
            },
        };
        let r = match classify(req, family) {
            Class::PerSocket => return Answer::CONTINUE,
            Class::ProtoPrivate if served => Err(libc::ENOTTY),
            Class::ProtoPrivate => return Answer::CONTINUE,
            Class::IfConf => self.ifconf(t),
            Class::Link => self.ifreq(t, req, false),
            Class::SetFlags => self.ifreq(t, req, family != libc::AF_INET),
            Class::Addr if family == libc::AF_INET => self.ifreq(t, req, false),
            Class::Addr => Err(libc::ENOTTY),
            Class::Addr6 => self.in6_ifreq(t, req),
            Class::Route => self.rtentry(t, req),
        };
        r.unwrap_or_else(Answer::errno)
    }

    /// A request on a `struct ifreq`; `by_device`: an alias name means its
    /// device (not an `AF_INET` socket).
    fn ifreq(&mut self, t: &Target<'_>, req: u32, by_device: bool) -> Result<Answer, Errno> {
        let arg = t.ptr(2);
        let mut r = t.read(arg, IFREQ_SIZE)?;
        if !t.valid() {
            return Ok(Answer::Done);
        }
        if by_device {
            device_name_only(&mut r);
        }
        let before = r.clone();
        emul::ioctl(&mut NetDialog::new(self.net), req as u64, &mut r).map_err(|e| errno_of(&e))?;
        // Only what the kernel copies back (a get's result) is written.
        if r != before {
            t.write(arg, &r)?;
        }
        Ok(Answer::value(0))
    }

    /// `SIOCGIFCONF` on a `struct ifconf` { int len; pad; char *buf }.
    fn ifconf(&mut self, t: &Target<'_>) -> Result<Answer, Errno> {
        let arg = t.ptr(2);
        let h = t.read(arg, 16)?;
        if !t.valid() {
            return Ok(Answer::Done);
        }
        let len = i32::from_ne_bytes([h[0], h[1], h[2], h[3]]);
        let buf = u64::from_ne_bytes([h[8], h[9], h[10], h[11], h[12], h[13], h[14], h[15]]);
        let d = &mut NetDialog::new(self.net);
        let total = if buf == 0 {
            emul::ifconf(d, None).map_err(|e| errno_of(&e))?
        } else {
            let mut b = vec![0u8; (len.max(0) as usize).min(IFCONF_MAX)];
            let n = emul::ifconf(d, Some(&mut b)).map_err(|e| errno_of(&e))?;
            t.write(buf, &b[..n])?;
            n
        };
        t.write(arg, &(total as i32).to_ne_bytes())?;
        Ok(Answer::value(0))
    }

    /// `SIOCADDRT`/`SIOCDELRT` on a `struct rtentry`, whose `rt_dev` points to
    /// the device name (15 bytes read, as the kernel copies them).
    fn rtentry(&mut self, t: &Target<'_>, req: u32) -> Result<Answer, Errno> {
        let r = t.read(t.ptr(2), emul::RTENTRY_SIZE)?;
        let at = emul::RTENTRY_DEV;
        let dev_ptr = u64::from_ne_bytes(r[at..at + 8].try_into().unwrap_or([0; 8]));
        let dev = if dev_ptr == 0 {
            None
        } else {
            Some(t.read(dev_ptr, 15)?)
        };
        if !t.valid() {
            return Ok(Answer::Done);
        }
        emul::route_ioctl(
            &mut NetDialog::new(self.net),
            req as u64,
            &r,
            dev.as_deref(),
        )
        .map_err(|e| errno_of(&e))?;
        Ok(Answer::value(0))
    }

    /// `SIOCSIFADDR`/`SIOCDIFADDR` of an `AF_INET6` socket.
    fn in6_ifreq(&mut self, t: &Target<'_>, req: u32) -> Result<Answer, Errno> {
        let r = t.read(t.ptr(2), IN6_IFREQ_SIZE)?;
        if !t.valid() {
            return Ok(Answer::Done);
        }
        emul::ioctl6(&mut NetDialog::new(self.net), req as u64, &r).map_err(|e| errno_of(&e))?;
        Ok(Answer::value(0))
    }
}
