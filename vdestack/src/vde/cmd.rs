//! `cmd://COMMAND ARGS`: a coprocess that speaks stream framing (2-byte big-endian
//! length + frame) on its stdin and stdout. The command line is split into words like
//! libexecs does (blanks, quotes, backslashes; no shell) and the program is searched
//! in `PATH`. `cmd://vde_plug vde:///tmp/sw` reaches a switch through Debian's
//! `vde_plug`; `cmd://ssh host vde_plug` reaches a remote one.
//!
//! When the command exits, `recv` reports [`Recv::Closed`]. Dropping the plug sends
//! SIGTERM to the command and reaps it (SIGKILL after a second).

use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::stream_plug::StreamPlug;
use super::url::{bad_value, split_command};
use super::{Plug, Recv};
use crate::error::context;

/// A plug whose other end is a coprocess.
#[derive(Debug)]
pub struct Cmd {
    stream: StreamPlug,
    child: Child,
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
        let stream = match StreamPlug::new(from_child, to_child) {
            Ok(s) => s,
            Err(e) => {
                crate::sys::terminate_child(&mut child, Duration::from_secs(1));
                return Err(e);
            }
        };
        Ok(Self { stream, child })
    }

    /// The coprocess's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Plug for Cmd {
    fn send(&mut self, frame: &[u8]) -> io::Result<usize> {
        self.stream.send(frame)
    }

    fn recv(&mut self, buf: &mut [u8]) -> io::Result<Recv> {
        self.stream.recv(buf)
    }

    fn data_fd(&self) -> BorrowedFd<'_> {
        self.stream.data_fd()
    }
}

impl Drop for Cmd {
    fn drop(&mut self) {
        // Hand over queued frames, then ask the command to stop.
        self.stream.drain(Duration::from_millis(200));
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
