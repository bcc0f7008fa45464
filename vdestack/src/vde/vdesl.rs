//! `vdesl://DEVICE[speed=N]`: VDE over a serial line, compatible with Debian's
//! libvdeplug-vdesl. Frames cross the line in stream framing (a 2-byte big-endian
//! length, then the frame; no escaping, no checksum: [`super::stream`]), so the two
//! ends must be the only users of the line.
//!
//! The device is set up as the C plugin sets it: 8 data bits, no parity, one stop
//! bit, no flow control, raw input and output, the given speed (default 38400;
//! `s=` is short for `speed=`) both ways. Differences from the C plugin: the
//! device is opened with `O_NOCTTY` (so it never becomes the program's controlling
//! terminal) and non-blocking: a frame that arrives in pieces waits in a buffer,
//! where the C plugin gives up after 100 ms and loses its place in the stream. A
//! hung-up line (a pty whose other side closed) reports the plug closed.

use std::io;
use std::os::fd::BorrowedFd;

use rustix::fs::{Mode, OFlags};
use rustix::termios::{
    self, ControlModes, InputModes, LocalModes, OptionalActions, OutputModes, SpecialCodeIndex,
};

use super::stream_plug::StreamPlug;
use super::url::{self, bad_value, UrlError};
use super::{Plug, Recv, MAX_FRAME, MIN_FRAME};
use crate::error::context;

/// The option table (`s` is a prefix of `speed`).
pub const TAGS: &[&str] = &["speed"];

/// The line speeds the C plugin accepts.
pub const SPEEDS: &[u32] = &[
    9600, 19200, 38400, 57600, 115200, 230400, 460800, 500000, 576000, 921600, 1000000, 1152000,
    1500000, 2000000, 2500000, 3000000, 3500000, 4000000,
];

/// The speed when none is given.
pub const DEFAULT_SPEED: u32 = 38400;

/// A parsed `vdesl://` argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    /// The serial device's path.
    pub device: String,
    /// The line speed in baud.
    pub speed: u32,
}

/// Parses `DEVICE[speed=N]`.
pub fn parse(arg: &str) -> Result<Spec, UrlError> {
    let (device, opts) = url::parse_path_style("vdesl", arg, TAGS)?;
    if device.is_empty() {
        return Err(bad_value("vdesl", "device", arg, "no device path given"));
    }
    let speed = match opts.get("speed") {
        None => DEFAULT_SPEED,
        Some(s) => s
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|n| SPEEDS.contains(n))
            .ok_or_else(|| {
                let list: Vec<String> = SPEEDS.iter().map(u32::to_string).collect();
                bad_value(
                    "vdesl",
                    "speed",
                    s,
                    format!("expected one of {}", list.join(", ")),
                )
            })?,
    };
    Ok(Spec {
        device: device.to_string(),
        speed,
    })
}

/// A `vdesl://` plug on a serial device.
#[derive(Debug)]
pub struct Vdesl {
    stream: StreamPlug,
    device: String,
}

impl Vdesl {
    /// Opens `vdesl://ARG` (the text after `vdesl://`) and sets the line up.
    pub fn open(arg: &str) -> io::Result<Self> {
        let spec = parse(arg)?;
        let what = || format!("vdesl://{}", spec.device);
        let fd = rustix::fs::open(
            spec.device.as_str(),
            OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC | OFlags::NONBLOCK,
            Mode::empty(),
        )
        .map_err(|e| context(e, what()))?;
        let mut t = termios::tcgetattr(&fd)
            .map_err(|e| context(e, format!("{}: not a terminal", what())))?;
        t.control_modes -= ControlModes::PARENB | ControlModes::CSTOPB | ControlModes::CRTSCTS;
        t.control_modes |= ControlModes::CS8 | ControlModes::CREAD | ControlModes::CLOCAL;
        t.local_modes -= LocalModes::ICANON
            | LocalModes::ECHO
            | LocalModes::ECHOE
            | LocalModes::ECHONL
            | LocalModes::ISIG;
        t.input_modes -= InputModes::IXON
            | InputModes::IXOFF
            | InputModes::IXANY
            | InputModes::IGNBRK
            | InputModes::BRKINT
            | InputModes::PARMRK
            | InputModes::ISTRIP
            | InputModes::INLCR
            | InputModes::IGNCR
            | InputModes::ICRNL;
        t.output_modes -= OutputModes::OPOST | OutputModes::ONLCR;
        t.special_codes[SpecialCodeIndex::VTIME] = 1;
        t.special_codes[SpecialCodeIndex::VMIN] = 0;
        t.set_speed(spec.speed)
            .and_then(|()| termios::tcsetattr(&fd, OptionalActions::Now, &t))
            .map_err(|e| context(e, format!("{}: setting up the line", what())))?;
        let input = fd.try_clone()?;
        Ok(Self {
            stream: StreamPlug::new(input, fd)?,
            device: spec.device,
        })
    }

    /// The device's path.
    pub fn device(&self) -> &str {
        &self.device
    }
}

impl Plug for Vdesl {
    fn send(&mut self, frame: &[u8]) -> io::Result<usize> {
        if frame.len() < MIN_FRAME {
            return Ok(frame.len());
        }
        if frame.len() > MAX_FRAME {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "vdesl://: a frame of {} bytes is over {MAX_FRAME}",
                    frame.len()
                ),
            ));
        }
        self.stream.send(frame)
    }

    fn recv(&mut self, buf: &mut [u8]) -> io::Result<Recv> {
        match self.stream.recv(buf) {
            // A terminal hung up (the other side of a pty closed).
            Err(e) if e.raw_os_error() == Some(libc::EIO) => Ok(Recv::Closed),
            other => other,
        }
    }

    fn data_fd(&self) -> BorrowedFd<'_> {
        self.stream.data_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_like_the_c_plugin() {
        assert_eq!(
            parse("/dev/ttyAMA0").unwrap(),
            Spec {
                device: "/dev/ttyAMA0".into(),
                speed: 38400
            }
        );
        assert_eq!(
            parse("/dev/ttyAMA0[speed=4000000]").unwrap().speed,
            4_000_000
        );
        assert_eq!(parse("/dev/ttyS0[s=115200]").unwrap().speed, 115200);
        for bad in [
            "/dev/ttyS0[speed=1234]",
            "/dev/ttyS0[speed=fast]",
            "/dev/ttyS0[speed=]",
        ] {
            let e = parse(bad).unwrap_err().to_string();
            assert!(e.contains("speed") && e.contains("115200"), "{bad}: {e}");
        }
        assert!(parse("").unwrap_err().to_string().contains("device"));
        assert!(parse("/dev/x[baud=9600]")
            .unwrap_err()
            .to_string()
            .contains("baud"));
    }

    #[test]
    fn a_device_that_is_not_a_terminal_is_named() {
        let e = Vdesl::open("/dev/null").unwrap_err().to_string();
        assert!(e.contains("/dev/null") && e.contains("terminal"), "{e}");
        let e = Vdesl::open("/no/such/tty").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn frames_cross_a_pty() {
        use rustix::pty::{grantpt, openpt, ptsname, unlockpt, OpenptFlags};
        use std::os::fd::AsFd;
        let master =
            openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC).unwrap();
        grantpt(&master).unwrap();
        unlockpt(&master).unwrap();
        let name = ptsname(&master, Vec::new()).unwrap();
        let mut sl = Vdesl::open(&format!("{}[speed=115200]", name.to_string_lossy())).unwrap();
        let frame: Vec<u8> = (0..80u8).collect();
        assert_eq!(sl.send(&frame).unwrap(), 80);
        let mut got = [0u8; 82];
        let mut n = 0;
        while n < 82 {
            crate::sys::poll_readable(master.as_fd(), Some(std::time::Duration::from_secs(5)))
                .unwrap();
            n += rustix::io::read(&master, &mut got[n..]).unwrap();
        }
        assert_eq!(
            &got[..2],
            &[0, 80],
            "stream framing, no line discipline in the way"
        );
        assert_eq!(&got[2..], &frame[..]);
        // The other way, in two pieces.
        rustix::io::write(&master, &got[..30]).unwrap();
        let mut buf = vec![0u8; MAX_FRAME];
        crate::sys::poll_readable(sl.data_fd(), Some(std::time::Duration::from_secs(5))).unwrap();
        assert!(matches!(sl.recv(&mut buf), Ok(Recv::Nothing) | Err(_)));
        rustix::io::write(&master, &got[30..]).unwrap();
        crate::sys::poll_readable(sl.data_fd(), Some(std::time::Duration::from_secs(5))).unwrap();
        assert_eq!(sl.recv(&mut buf).unwrap(), Recv::Frame(80));
        assert_eq!(&buf[..80], &frame[..]);
        drop(master);
        crate::sys::poll_readable(sl.data_fd(), Some(std::time::Duration::from_secs(5))).unwrap();
        assert_eq!(sl.recv(&mut buf).unwrap(), Recv::Closed);
    }
}
