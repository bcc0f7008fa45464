//! A plug over a pair of byte streams in stream framing: a coprocess's pipes
//! (`cmd://`, `vdestack plug URL = CMD`) or the program's own stdin and stdout
//! (`vdestack plug URL`, like `vde_plug`).
//!
//! Writes never block and never cut a frame: what the stream does not take at once
//! waits in a bounded queue, and the plug's data fd also wakes the caller when the
//! stream has room again, so the next `recv` writes the rest on.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::event::epoll;

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
        epoll::add(
            &epoll,
            &input,
            epoll::EventData::new_u64(0),
            epoll::EventFlags::IN,
        )?;
        Ok(Self {
            input,
            output,
            out: OutQueue::new(OUT_LIMIT),
            epoll,
            out_armed: false,
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
        let want = !self.out.is_empty();
        if want != self.out_armed {
            if want {
                epoll::add(
                    &self.epoll,
                    &self.output,
                    epoll::EventData::new_u64(1),
                    epoll::EventFlags::OUT,
                )?;
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
                Err(rustix::io::Errno::INTR) => {}
                // Woken only to write on (or spuriously): nothing for the caller.
                Err(rustix::io::Errno::AGAIN) if woke_for_flush => return Ok(Recv::Nothing),
                Err(e) => return Err(e.into()),
            }
        }
    }

    fn data_fd(&self) -> BorrowedFd<'_> {
        self.epoll.as_fd()
    }
}
