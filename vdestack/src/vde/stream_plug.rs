//! A plug over a pair of byte streams in stream framing: a coprocess's pipes
//! (`cmd://`, `vdestack plug URL = CMD`) or the program's own stdin and stdout
//! (`vdestack plug URL`, like `vde_plug`).
//!
//! Writes never block and never cut a frame: what the stream does not take at once
//! waits in a bounded queue, and the plug's data fd also wakes the caller when the
//! stream has room again, so the next `recv` writes the rest on.
//!
//! Either fd may be one that epoll refuses (`EPERM`): a regular file, `/dev/null`.
//! Such a file is always ready, as `poll` says of it: an input is read to its end
//! (then the plug is closed, as with a pipe whose writer went), with an always
//! readable eventfd standing in for it in the data fd; an output takes every write,
//! so nothing ever waits for room in it. A terminal that hangs up (`EIO`) ends the
//! input too, as `POLLHUP` ends `vde_plug`'s.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::event::{epoll, eventfd, EventfdFlags};
use rustix::io::Errno;

use super::stream::{Decoder, OutQueue, StreamError};
use super::{Plug, Recv, MIN_FRAME};

/// How many bytes may wait for a slow reader before frames are dropped.
const OUT_LIMIT: usize = 256 * 1024;

/// A plug that reads frames from one fd and writes them to another.
#[derive(Debug)]
pub struct StreamPlug {
    input: OwnedFd,
    output: OwnedFd,
    out: OutQueue,
    /// Readable when `input` is, or when `output` has room while frames wait.
    epoll: OwnedFd,
    out_armed: bool,
    /// Whether epoll can watch `output` (one it refuses always has room).
    out_pollable: bool,
    /// Stands in for an input that epoll refuses: always readable. Only held open
    /// (the epoll set watches it).
    _always_ready: Option<OwnedFd>,
    decoder: Decoder,
    read_buf: Box<[u8]>,
    eof: bool,
}

impl StreamPlug {
    /// Wraps two fds (they may be the same socket); both are made non-blocking.
    pub fn new(input: OwnedFd, output: OwnedFd) -> io::Result<Self> {
        crate::sys::set_nonblocking(&input)?;
        crate::sys::set_nonblocking(&output)?;
        let epoll = epoll::create(epoll::CreateFlags::CLOEXEC)?;
        let watch = |fd: BorrowedFd<'_>| {
            epoll::add(
                &epoll,
                fd,
                epoll::EventData::new_u64(0),
                epoll::EventFlags::IN,
            )
        };
        let always_ready = match watch(input.as_fd()) {
            Ok(()) => None,
            Err(Errno::PERM) => {
                let ready = eventfd(1, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)?;
                watch(ready.as_fd())?;
                Some(ready)
            }
            Err(e) => return Err(crate::error::context(e, "watching the stream's input")),
        };
        Ok(Self {
            input,
            output,
            out: OutQueue::new(OUT_LIMIT),
            epoll,
            out_armed: false,
            out_pollable: true,
            _always_ready: always_ready,
            decoder: Decoder::new(),
            read_buf: vec![0; 64 * 1024].into_boxed_slice(),
            eof: false,
        })
    }

    /// Writes what waits, giving up after `timeout` (used before closing).
    pub fn drain(&mut self, timeout: std::time::Duration) {
        let deadline = std::time::Instant::now() + timeout;
        while !self.out.is_empty() && std::time::Instant::now() < deadline {
            match self.flush() {
                Ok(true) | Err(_) => break,
                Ok(false) => std::thread::sleep(std::time::Duration::from_millis(2)),
            }
        }
    }

    fn flush(&mut self) -> io::Result<bool> {
        let output = &self.output;
        let done = self
            .out
            .flush_with(|b| rustix::io::write(output, b).map_err(io::Error::from));
        self.arm_out()?;
        done
    }

    /// Watches the output for room only while frames wait for it.
    fn arm_out(&mut self) -> io::Result<()> {
        let want = !self.out.is_empty() && self.out_pollable;
        if want != self.out_armed {
            if want {
                match epoll::add(
                    &self.epoll,
                    &self.output,
                    epoll::EventData::new_u64(1),
                    epoll::EventFlags::OUT,
                ) {
                    Ok(()) => {}
                    // Always writable: what waits goes with the next frame.
                    Err(Errno::PERM) => {
                        self.out_pollable = false;
                        return Ok(());
                    }
                    Err(e) => return Err(e.into()),
                }
            } else {
                epoll::delete(&self.epoll, &self.output)?;
            }
            self.out_armed = want;
        }
        Ok(())
    }
}

impl Plug for StreamPlug {
    fn send(&mut self, frame: &[u8]) -> io::Result<usize> {
        if frame.len() < MIN_FRAME {
            return Ok(frame.len());
        }
        let output = &self.output;
        let sent = self.out.send_frame(frame, |b| {
            rustix::io::write(output, b).map_err(io::Error::from)
        });
        self.arm_out()?;
        match sent {
            Err(e) if e.raw_os_error() == Some(libc::EPIPE) => Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the stream's reader has gone",
            )),
            other => other,
        }
    }

    fn recv(&mut self, buf: &mut [u8]) -> io::Result<Recv> {
        // Give a slow reader what waited for it whenever we get the chance.
        let woke_for_flush = !self.out.is_empty();
        if woke_for_flush {
            if let Err(e) = self.flush() {
                log::debug!("stream: writing: {e}");
            }
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
                        log::warn!("stream: {e}");
                        Ok(Recv::Nothing)
                    }
                };
            }
            if self.eof {
                return Ok(Recv::Closed);
            }
            match rustix::io::read(&self.input, &mut self.read_buf[..]) {
                Ok(0) => self.eof = true,
                Ok(n) => self.decoder.push(&self.read_buf[..n]),
                Err(Errno::INTR) => {}
                // Woken only to write on (or spuriously): nothing for the caller.
                Err(Errno::AGAIN) if woke_for_flush => return Ok(Recv::Nothing),
                // A terminal whose other side hung up.
                Err(Errno::IO) => {
                    log::debug!("stream: the input hung up (EIO): taken as its end");
                    self.eof = true;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    fn data_fd(&self) -> BorrowedFd<'_> {
        self.epoll.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vde::stream::{encode, Decoder};
    use std::io::{Read, Write};

    fn readable_now(p: &StreamPlug) -> bool {
        crate::vde::wait_readable(p, Some(std::time::Duration::ZERO)).unwrap()
    }

    fn frames(n: u8) -> Vec<Vec<u8>> {
        (0..n).map(|i| vec![i; 60 + usize::from(i)]).collect()
    }

    /// A scratch file, removed on drop.
    struct Scratch(std::path::PathBuf);
    impl Scratch {
        fn new(tag: &str) -> Self {
            let p = std::env::temp_dir().join(format!(
                "vdestack-streamplug-{tag}-{}-{:?}",
                std::process::id(),
                std::thread::current().id()
            ));
            Scratch(p)
        }
    }
    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    #[test]
    fn dev_null_is_an_input_at_its_end() {
        let null = |w: bool| {
            std::fs::OpenOptions::new()
                .read(!w)
                .write(w)
                .open("/dev/null")
                .unwrap()
        };
        let mut p = StreamPlug::new(null(false).into(), null(true).into()).unwrap();
        // epoll refuses /dev/null; the data fd still says "read me" ...
        assert!(readable_now(&p));
        let mut buf = vec![0u8; 2048];
        // ... and there is nothing but the end.
        assert_eq!(p.recv(&mut buf).unwrap(), Recv::Closed);
        // Frames to /dev/null are taken.
        assert_eq!(p.send(&[7u8; 60]).unwrap(), 60);
    }

    #[test]
    fn regular_files_in_and_out() {
        let (input, output) = (Scratch::new("in"), Scratch::new("out"));
        let mut wire = Vec::new();
        for f in frames(30) {
            encode(&f, &mut wire);
        }
        std::fs::File::create(&input.0)
            .unwrap()
            .write_all(&wire)
            .unwrap();
        let out = std::fs::File::create(&output.0).unwrap();
        let mut p =
            StreamPlug::new(std::fs::File::open(&input.0).unwrap().into(), out.into()).unwrap();
        let mut buf = vec![0u8; 2048];
        let mut got = Vec::new();
        loop {
            assert!(readable_now(&p), "a file's input must wake its reader");
            match p.recv(&mut buf).unwrap() {
                Recv::Frame(n) => got.push(buf[..n].to_vec()),
                Recv::Nothing => {}
                Recv::Closed => break,
            }
        }
        assert_eq!(got, frames(30));
        // Every frame sent reaches the output file, none waits.
        for f in frames(30) {
            assert_eq!(p.send(&f).unwrap(), f.len());
        }
        drop(p);
        let mut written = Vec::new();
        std::fs::File::open(&output.0)
            .unwrap()
            .read_to_end(&mut written)
            .unwrap();
        let mut d = Decoder::new();
        d.push(&written);
        let mut back = Vec::new();
        while let Some(f) = d.next_frame() {
            back.push(f.unwrap().to_vec());
        }
        assert_eq!(back, frames(30));
    }

    #[test]
    fn a_pipe_still_waits_for_data() {
        let cloexec = rustix::pipe::PipeFlags::CLOEXEC;
        let (r, w) = rustix::pipe::pipe_with(cloexec).unwrap();
        let (_out_r, out_w) = rustix::pipe::pipe_with(cloexec).unwrap();
        let mut p = StreamPlug::new(r, out_w).unwrap();
        assert!(!readable_now(&p), "an empty pipe must not wake the reader");
        let mut wire = Vec::new();
        encode(&[1u8; 60], &mut wire);
        rustix::io::write(&w, &wire).unwrap();
        assert!(readable_now(&p));
        let mut buf = vec![0u8; 2048];
        assert_eq!(p.recv(&mut buf).unwrap(), Recv::Frame(60));
        drop(w);
        assert_eq!(p.recv(&mut buf).unwrap(), Recv::Closed);
    }
}
