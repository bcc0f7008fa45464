//! The traffic generator for our stacks (and the kernel veth pair): plain TCP sockets
//! made in a stack, driven by threads of this process. Same wire protocol as the C
//! programs (`benches/c/cstack.h`), so either side can serve the other: a connection
//! starts with a mode byte, `S` (sink: the client sends until it shuts down its
//! side, the server answers with the byte count, 8 bytes big-endian) or `E` (echo:
//! 1-byte ping-pong until EOF).

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The benchmark's TCP port (the C programs use the same).
pub const PORT: u16 = 5001;
const CHUNK: usize = 64 * 1024;

/// A TCP connection of any kind the bench drives: std's (the C peers' side, a
/// process in a vdens), or a stack's of either backend.
pub trait Conn: Read + Write + Send {
    fn set_nodelay(&self, on: bool) -> io::Result<()>;
    /// `shutdown(Write)`: the peer reads EOF.
    fn shutdown_write(&self) -> io::Result<()>;
}

impl Conn for std::net::TcpStream {
    fn set_nodelay(&self, on: bool) -> io::Result<()> {
        std::net::TcpStream::set_nodelay(self, on)
    }
    fn shutdown_write(&self) -> io::Result<()> {
        self.shutdown(std::net::Shutdown::Write)
    }
}

impl Conn for vdestack::net::TcpStream {
    fn set_nodelay(&self, on: bool) -> io::Result<()> {
        vdestack::net::TcpStream::set_nodelay(self, on)
    }
    fn shutdown_write(&self) -> io::Result<()> {
        self.shutdown(std::net::Shutdown::Write)
    }
}

/// Makes a connection to an address.
pub type Connect = dyn Fn(SocketAddr) -> io::Result<Box<dyn Conn>> + Send + Sync;
/// Waits for the next connection of a listener.
pub type Accept = Box<dyn FnMut() -> io::Result<Box<dyn Conn>> + Send>;

/// A server accepting connections on a listener, one thread per connection.
pub struct Server {
    stop: Arc<AtomicBool>,
    addr: SocketAddr,
    connect: Box<Connect>,
    accept: Option<JoinHandle<()>>,
}

impl Server {
    /// Serves the connections `accept` gives (a listener bound to `addr`);
    /// `connect` makes a client socket that can reach `addr` (used once, to wake
    /// the accept loop when stopping).
    pub fn start(mut accept: Accept, addr: SocketAddr, connect: Box<Connect>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let accept = std::thread::spawn(move || loop {
            let conn = accept();
            if flag.load(Ordering::Acquire) {
                return;
            }
            if let Ok(c) = conn {
                std::thread::spawn(move || serve(c));
            }
        });
        Server {
            stop,
            addr,
            connect,
            accept: Some(accept),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        // Wake the accept loop; if it cannot be reached, leave the thread behind
        // rather than hang.
        if (self.connect)(self.addr).is_ok() {
            if let Some(t) = self.accept.take() {
                let _ = t.join();
            }
        }
    }
}

fn serve(mut c: Box<dyn Conn>) {
    let _ = c.set_nodelay(true);
    let mut mode = [0u8; 1];
    if c.read_exact(&mut mode).is_err() {
        return;
    }
    match mode[0] {
        b'S' => {
            let mut buf = vec![0u8; CHUNK];
            let mut total = 0u64;
            loop {
                match c.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => total += n as u64,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => return,
                }
            }
            let _ = c.write_all(&total.to_be_bytes());
        }
        b'E' => {
            let mut b = [0u8; 1];
            while c.read_exact(&mut b).is_ok() {
                if c.write_all(&b).is_err() {
                    return;
                }
            }
        }
        _ => {}
    }
}

/// Connects with retries for up to 10 s (the interfaces may still be coming up),
/// sends the mode byte.
fn dial(connect: &Connect, addr: SocketAddr, mode: u8) -> io::Result<Box<dyn Conn>> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut c = loop {
        match connect(addr) {
            Ok(c) => break c,
            Err(e) if Instant::now() > deadline => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    c.set_nodelay(true)?;
    c.write_all(&[mode])?;
    Ok(c)
}

/// Bulk throughput of `streams` parallel connections for `secs`: MB/s (10^6 bytes)
/// of what the server counted, timed until the last count came back.
pub fn stream(connect: &Connect, addr: SocketAddr, streams: usize, secs: f64) -> io::Result<f64> {
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(secs);
    let total = std::thread::scope(|s| -> io::Result<u64> {
        let handles: Vec<_> = (0..streams)
            .map(|_| {
                s.spawn(move || -> io::Result<u64> {
                    let mut c = dial(connect, addr, b'S')?;
                    let buf = vec![0x5au8; CHUNK];
                    while Instant::now() < end {
                        c.write_all(&buf)?;
                    }
                    c.shutdown_write()?;
                    let mut count = [0u8; 8];
                    c.read_exact(&mut count)?;
                    Ok(u64::from_be_bytes(count))
                })
            })
            .collect();
        let mut total = 0;
        for h in handles {
            total += h
                .join()
                .map_err(|_| io::Error::other("a stream thread panicked"))??;
        }
        Ok(total)
    })?;
    Ok(total as f64 / start.elapsed().as_secs_f64() / 1e6)
}

/// Request/response figures.
#[derive(Debug, Clone, Copy, Default)]
pub struct Rr {
    /// Round trips per second.
    pub rate: f64,
    /// Mean round trip, µs.
    pub mean_us: f64,
    /// 99th percentile round trip, µs.
    pub p99_us: f64,
    /// The machine's CPU time per round trip, µs (all CPUs busy time over the
    /// measurement, whoever spent it: the stacks, their relays or helpers, the
    /// kernel), so polling that buys latency with CPU shows.
    pub cpu_us: f64,
}

/// 1-byte ping-pong on one connection for `secs`.
pub fn rr(connect: &Connect, addr: SocketAddr, secs: f64) -> io::Result<Rr> {
    let mut c = dial(connect, addr, b'E')?;
    let mut lat: Vec<u32> = Vec::with_capacity(1 << 16);
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(secs);
    let mut b = [b'x'];
    loop {
        let t = Instant::now();
        if t >= end {
            break;
        }
        c.write_all(&b)?;
        c.read_exact(&mut b)?;
        lat.push(t.elapsed().as_nanos().min(u32::MAX as u128) as u32);
    }
    let el = start.elapsed().as_secs_f64();
    if lat.is_empty() {
        return Ok(Rr::default());
    }
    let mean = lat.iter().map(|&n| n as f64).sum::<f64>() / lat.len() as f64;
    lat.sort_unstable();
    let p99 = lat[lat.len() * 99 / 100] as f64;
    Ok(Rr {
        rate: lat.len() as f64 / el,
        mean_us: mean / 1e3,
        p99_us: p99 / 1e3,
        cpu_us: 0.0, // filled in by the caller, which times the whole measurement
    })
}
