//! `cmd://COMMAND ARGS`: a coprocess that speaks stream framing (2-byte big-endian
//! length + frame) on its stdin and stdout. The command line is split into words like
//! libexecs does (blanks, quotes, backslashes; no shell) and the program is searched
//! in `PATH`. `cmd://vde_plug vde:///tmp/sw` reaches a switch through Debian's
//! `vde_plug`; `cmd://ssh host vde_plug` reaches a remote one.
//!
//! When the command exits, `recv` reports [`Recv::Closed`]. Dropping the plug sends
//! SIGTERM to the command and reaps it (SIGKILL after a second).

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::stream::{Decoder, OutQueue, StreamError};
use super::url::{bad_value, split_command};
use super::{Plug, Recv, MIN_FRAME};
use crate::error::context;

/// How many bytes may wait for a slow coprocess before frames are dropped.
const OUT_LIMIT: usize = 256 * 1024;

/// A plug whose other end is a coprocess.
#[derive(Debug)]
pub struct Cmd {
    child: Child,
    to_child: OwnedFd,
    from_child: OwnedFd,
    out: OutQueue,
    decoder: Decoder,
    read_buf: Box<[u8]>,
    eof: bool,
}

impl Cmd {
    /// Starts `cmd://COMMAND ARGS`.
    pub fn open(arg: &str) -> io::Result<Self> {
        let words = split_command(arg)?;
        let Some((prog, args)) = words.split_first() else {
            return Err(bad_value("cmd", "command", arg, "no command given").into());
        };
        let mut command = Command::new(prog);
        command.args(args);
        Self::spawn(command).map_err(|e| context(e, format!("cmd://{arg}")))
    }

    /// Starts a prepared command as the coprocess (its stdin and stdout are taken).
    pub fn spawn(mut command: Command) -> io::Result<Self> {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let to_child: OwnedFd = child.stdin.take().expect("piped stdin").into();
        let from_child: OwnedFd = child.stdout.take().expect("piped stdout").into();
        crate::sys::set_nonblocking(&to_child)?;
        crate::sys::set_nonblocking(&from_child)?;
        Ok(Self {
            child,
            to_child,
            from_child,
            out: OutQueue::new(OUT_LIMIT),
            decoder: Decoder::new(),
            read_buf: vec![0; 64 * 1024].into_boxed_slice(),
            eof: false,
        })
    }

    /// The coprocess's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn write_out(fd: &OwnedFd) -> impl FnMut(&[u8]) -> io::Result<usize> + '_ {
        move |b| rustix::io::write(fd, b).map_err(io::Error::from)
    }

    fn flush(&mut self) -> io::Result<bool> {
        self.out.flush_with(Self::write_out(&self.to_child))
    }
}

impl Plug for Cmd {
    fn send(&mut self, frame: &[u8]) -> io::Result<usize> {
        if frame.len() < MIN_FRAME {
            return Ok(frame.len());
        }
        match self.out.send_frame(frame, Self::write_out(&self.to_child)) {
            Err(e) if e.raw_os_error() == Some(libc::EPIPE) => Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "cmd://: the command has exited",
            )),
            other => other,
        }
    }

    fn recv(&mut self, buf: &mut [u8]) -> io::Result<Recv> {
        // Give a slow coprocess what waited for it, whenever we get the chance.
        if !self.out.is_empty() {
            let _ = self.flush();
        }
        loop {
            if let Some(frame) = self.decoder.next_frame() {
                return match frame {
                    Ok(f) => {
                        let n = f.len().min(buf.len());
                        buf[..n].copy_from_slice(&f[..n]);
                        Ok(Recv::Frame(n))
                    }
                    Err(e @ StreamError::TooLong(_)) => {
                        log::warn!("cmd://: {e}");
                        Ok(Recv::Nothing)
                    }
                };
            }
            if self.eof {
                return Ok(Recv::Closed);
            }
            match rustix::io::read(&self.from_child, &mut self.read_buf[..]) {
                Ok(0) => self.eof = true,
                Ok(n) => self.decoder.push(&self.read_buf[..n]),
                Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    fn data_fd(&self) -> BorrowedFd<'_> {
        self.from_child.as_fd()
    }
}

impl Drop for Cmd {
    fn drop(&mut self) {
        // Best effort: hand over queued frames, then ask the command to stop.
        let deadline = Instant::now() + Duration::from_millis(200);
        while !self.out.is_empty() && Instant::now() < deadline {
            match self.flush() {
                Ok(true) | Err(_) => break,
                Ok(false) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
        crate::sys::terminate_child(&mut self.child, Duration::from_secs(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_coprocess_returns_frames_in_order() {
        // `cat` echoes the stream back: frames come back unchanged and in order.
        let mut c = Cmd::open("cat").unwrap();
        let frames: Vec<Vec<u8>> = (0..50u16)
            .map(|i| vec![i as u8; 14 + i as usize * 30])
            .collect();
        for f in &frames {
            assert_eq!(c.send(f).unwrap(), f.len());
        }
        let mut buf = vec![0; super::super::MAX_FRAME];
        for f in &frames {
            let n = super::super::recv_timeout(&mut c, &mut buf, Duration::from_secs(5))
                .unwrap()
                .expect("frame back from cat");
            assert_eq!(&buf[..n], &f[..]);
        }
    }

    #[test]
    fn exit_is_closed_and_bad_commands_are_errors() {
        let mut c = Cmd::open("true").unwrap();
        let mut buf = vec![0; 100];
        let end = super::super::recv_timeout(&mut c, &mut buf, Duration::from_secs(5));
        assert_eq!(end.unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
        let e = Cmd::open("/no/such/program arg").unwrap_err();
        assert!(e.to_string().contains("/no/such/program"), "{e}");
        assert!(Cmd::open("").is_err());
        assert!(Cmd::open("'unterminated").is_err());
    }
}
