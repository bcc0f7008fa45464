//! `capture://FILE[OPTIONS]{VNL}`: every frame that crosses the nested plug, both
//! ways, goes to a capture file that tcpdump and Wireshark read, with its time
//! and (in pcapng) its direction. No root, no tap: `tcpdump -r FILE`.
//!
//! * `FILE`: the file (created or truncated, mode 0644); `-`: standard output, to
//!   pipe into `tcpdump -r -` or Wireshark (`vdestack plug 'capture://-{VNL}' URL`
//!   keeps stdout free of frames).
//! * `format=pcapng` (the default: nanosecond timestamps, direction in each
//!   record's `epb_flags`, frames sent by the local side outbound) or `pcap`
//!   (classic, microseconds, no direction); a `FILE` ending in `.pcap` picks
//!   `pcap` unless `format=` says otherwise.
//! * `limit=SIZE` (`k`/`m`/`g` suffixes): when a file would grow past SIZE, it is
//!   renamed `FILE.1` (an older `FILE.1` becomes `FILE.2`, and so on) and a new
//!   `FILE` begins; `files=N` (default 2) is how many files are kept, `FILE`
//!   included.
//!
//! A frame is recorded once the nested plug took it (sent) or gave it (received).
//! A file that cannot be written is an error naming it when the plug opens; a
//! write that fails later (a full disk) is reported once and capture stops, while
//! frames go on flowing. As a wrapper ([`super::wrapper`]) it claims no
//! capability that moves frames past it, so large segments are recorded as the
//! frames the wire carries.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use super::url::{self, bad_value, UrlError};
use super::wrapper::{open_nested, pass_through};
use super::{OpenArgs, Plug, Recv};
use crate::error::context;

pub mod format;

use format::{Direction, Format};

/// The option table.
pub const TAGS: &[&str] = &["format", "limit", "files"];

const SCHEME: &str = "capture";

/// Where the records go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A file.
    File(PathBuf),
    /// Standard output (`-`).
    Stdout,
}

/// A parsed `capture://` argument (without its nested VNL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    /// Where the records go.
    pub target: Target,
    /// The file format.
    pub format: Format,
    /// The size at which a file is rotated (`None`: never).
    pub limit: Option<u64>,
    /// How many files rotation keeps, the current one included.
    pub files: u32,
}

/// Parses the wrapper's part of a `capture://` VNL (what precedes `{`).
pub fn parse(outer: &str) -> Result<Spec, UrlError> {
    let (file, opts) = url::parse_path_style(SCHEME, outer, TAGS)?;
    let target = match file.as_str() {
        "" => {
            return Err(bad_value(
                SCHEME,
                "file",
                "",
                "a file to write is needed (or `-` for standard output)",
            ))
        }
        "-" => Target::Stdout,
        f => Target::File(PathBuf::from(f)),
    };
    let format = match opts.get("format") {
        Some("pcapng") => Format::PcapNg,
        Some("pcap") => Format::Pcap,
        Some(f) => return Err(bad_value(SCHEME, "format", f, "expected pcap or pcapng")),
        None if file.ends_with(".pcap") => Format::Pcap,
        None => Format::PcapNg,
    };
    let limit = opts.nonzero(SCHEME, "limit", "a file of 0 bytes holds nothing")?;
    let files = opts
        .nonzero(SCHEME, "files", "at least the current file is kept")?
        .unwrap_or(2);
    let files = u32::try_from(files)
        .ok()
        .filter(|&n| n <= 1000)
        .ok_or_else(|| bad_value(SCHEME, "files", &files.to_string(), "at most 1000"))?;
    if limit.is_some() && target == Target::Stdout {
        return Err(bad_value(
            SCHEME,
            "limit",
            opts.get("limit").unwrap_or(""),
            "standard output cannot be rotated",
        ));
    }
    if let Some(l) = limit {
        let least = format::file_header(format, "").len() as u64 + 128;
        if l < least {
            return Err(bad_value(
                SCHEME,
                "limit",
                &l.to_string(),
                format!("at least {least} bytes (a header and a small frame)"),
            ));
        }
    }
    Ok(Spec {
        target,
        format,
        limit,
        files,
    })
}

/// The file being written and how much it holds.
#[derive(Debug)]
struct Sink {
    spec: Spec,
    /// The interface name recorded in pcapng (the nested VNL).
    ifname: String,
    out: Option<File>,
    written: u64,
    record: Vec<u8>,
}

impl Sink {
    fn open(spec: Spec, ifname: String) -> io::Result<Self> {
        let mut s = Sink {
            spec,
            ifname,
            out: None,
            written: 0,
            record: Vec::new(),
        };
        s.start()?;
        Ok(s)
    }

    fn name(&self) -> String {
        match &self.spec.target {
            Target::File(p) => p.display().to_string(),
            Target::Stdout => "standard output".to_string(),
        }
    }

    /// Opens the file (or stdout) and writes its header.
    fn start(&mut self) -> io::Result<()> {
        let what = |e| context(e, format!("{SCHEME}://: cannot write {}", self.name()));
        let mut f = match &self.spec.target {
            Target::File(p) => OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o644)
                .open(p)
                .map_err(what)?,
            // Our own copy: dropping the plug does not close fd 1.
            Target::Stdout => {
                File::from(rustix::io::dup(rustix::stdio::stdout()).map_err(|e| {
                    context(e, format!("{SCHEME}://: cannot write standard output"))
                })?)
            }
        };
        let header = format::file_header(self.spec.format, &self.ifname);
        f.write_all(&header).map_err(what)?;
        self.written = header.len() as u64;
        self.out = Some(f);
        Ok(())
    }

    /// Renames FILE to FILE.1 (and each FILE.k to FILE.k+1, the oldest dropped),
    /// then starts a new FILE.
    fn rotate(&mut self) -> io::Result<()> {
        let Target::File(path) = self.spec.target.clone() else {
            return Ok(());
        };
        self.out = None;
        let nth = |k: u32| {
            let mut p = path.clone().into_os_string();
            p.push(format!(".{k}"));
            PathBuf::from(p)
        };
        let keep = self.spec.files;
        if keep > 1 {
            let _ = std::fs::remove_file(nth(keep - 1));
            for k in (1..keep - 1).rev() {
                let _ = std::fs::rename(nth(k), nth(k + 1));
            }
            std::fs::rename(&path, nth(1))?;
        }
        self.start()
    }

    /// Records a frame; a failure stops the capture (reported once).
    fn frame(&mut self, dir: Direction, frame: &[u8]) {
        if self.out.is_none() {
            return;
        }
        let ts = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        self.record.clear();
        format::record(&mut self.record, self.spec.format, ts, dir, frame);
        let result = (|| {
            if let Some(limit) = self.spec.limit {
                if self.written + self.record.len() as u64 > limit {
                    self.rotate()?;
                }
            }
            let out = self.out.as_mut().expect("open");
            out.write_all(&self.record)?;
            self.written += self.record.len() as u64;
            Ok::<_, io::Error>(())
        })();
        if let Err(e) = result {
            log::warn!(
                "{SCHEME}://: writing {} failed, capture stops: {e}",
                self.name()
            );
            self.out = None;
        }
    }
}

/// A `capture://` plug.
pub struct Capture {
    inner: Box<dyn Plug>,
    sink: Sink,
}

impl std::fmt::Debug for Capture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Capture").field("sink", &self.sink).finish()
    }
}

impl Capture {
    /// Opens `capture://ARG` (the text after `capture://`) and its nested plug.
    pub fn open(arg: &str, args: &OpenArgs) -> io::Result<Self> {
        let nested = url::split_nested(SCHEME, arg)?.inner_vnl().to_string();
        let (spec, inner) = open_nested(SCHEME, arg, args, parse)?;
        Self::wrap(spec, inner, &nested)
    }

    /// Wraps an open plug; `ifname` names the interface in a pcapng file.
    pub fn wrap(spec: Spec, inner: Box<dyn Plug>, ifname: &str) -> io::Result<Self> {
        Ok(Capture {
            inner,
            sink: Sink::open(spec, ifname.to_string())?,
        })
    }

    /// Whether frames are still being recorded (false after a failed write).
    pub fn capturing(&self) -> bool {
        self.sink.out.is_some()
    }
}

impl Plug for Capture {
    fn send(&mut self, frame: &[u8]) -> io::Result<usize> {
        let n = self.inner.send(frame)?;
        if frame.len() >= super::MIN_FRAME {
            self.sink.frame(Direction::Outbound, frame);
        }
        Ok(n)
    }

    fn recv(&mut self, buf: &mut [u8]) -> io::Result<Recv> {
        let r = self.inner.recv(buf)?;
        if let Recv::Frame(n) = r {
            self.sink
                .frame(Direction::Inbound, &buf[..n.min(buf.len())]);
        }
        Ok(r)
    }

    pass_through!(inner);
}

#[cfg(test)]
mod tests;
