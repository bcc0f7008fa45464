//! `agno://[KEYFILE][[ethtype=TYPE]]{VNL}`: "agnostic" encryption of every frame
//! with AES-128, compatible with Debian's libvdeplug-agno: peers with the same key
//! on either implementation talk to each other over any nested plug.
//!
//! * `KEYFILE`: the key, 32 hex digits (other characters are skipped). Empty: the
//!   file `.vde_agno_key` in the home directory (from the passwd database, as the C
//!   plugin reads it, not `$HOME`); `~/path` is in that home directory; otherwise
//!   an absolute path.
//! * `ethtype=` (`e=`): the outer ethertype: `copy` (the frame's own), `ipv4`,
//!   `ipv6`, `rand` (random per frame), or a number 0x600..0xFFFE; default 0xA6DE.
//!
//! The frame format and its limits are in [`cipher`]. A frame that does not open
//! (another key, a plain frame, outside the time window of the two clocks) is
//! dropped, never delivered. Differences from the C plugin, all bugs of it: frames
//! shorter than the format or not a whole number of blocks are dropped (C decrypts
//! stale memory or returns a bogus length); an `ethtype=` with trailing text
//! (`0x800x`) is an error (C ignores the text).
//!
//! The nested plug's back-pressure passes through ([`super::wrapper`]); large
//! segments are cut before encrypting.

use std::io;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use super::url::{self, bad_value, UrlError};
use super::wrapper::{open_nested, pass_through};
use super::{OpenArgs, Plug, Recv, MAX_FRAME, MIN_FRAME};
use crate::error::context;

pub mod cipher;

use cipher::{Cipher, EthType, Fresh};

/// The option table (`e` is a prefix of `ethtype`).
pub const TAGS: &[&str] = &["ethtype"];

/// The key file's name in the home directory, when none is given.
pub const DEFAULT_KEY_FILE: &str = ".vde_agno_key";

/// A parsed `agno://` argument (without its nested VNL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    /// The key file as written (empty: the default).
    pub key_file: String,
    /// The outer ethertype.
    pub ethtype: EthType,
}

/// Parses the wrapper's part of an `agno://` VNL (what precedes `{`).
pub fn parse(outer: &str) -> Result<Spec, UrlError> {
    let (key_file, opts) = url::parse_path_style("agno", outer, TAGS)?;
    let raw = opts.get("ethtype").unwrap_or("");
    let ethtype = EthType::parse(raw)
        .ok_or_else(|| bad_value("agno", "ethtype", raw, cipher::ETHTYPE_HELP))?;
    Ok(Spec { key_file, ethtype })
}

/// Where the key file is, as the C plugin finds it: empty → `HOME/.vde_agno_key`,
/// `~rest` → `HOME/rest`, `/abs` → itself; anything else is refused.
pub fn key_path(key_file: &str, home: Option<&Path>) -> Result<PathBuf, UrlError> {
    let need_home = || {
        home.map(Path::to_path_buf).ok_or_else(|| {
            bad_value(
                "agno",
                "key file",
                key_file,
                "this user has no home directory in the passwd database",
            )
        })
    };
    if key_file.is_empty() {
        Ok(need_home()?.join(DEFAULT_KEY_FILE))
    } else if let Some(rest) = key_file.strip_prefix('~') {
        Ok(need_home()?.join(rest.trim_start_matches('/')))
    } else if key_file.starts_with('/') {
        Ok(PathBuf::from(key_file))
    } else {
        Err(bad_value(
            "agno",
            "key file",
            key_file,
            "expected an absolute path or ~/path (or nothing: ~/.vde_agno_key)",
        ))
    }
}

/// Reads a key file (see [`cipher::parse_key`]).
pub fn read_key(path: &Path) -> io::Result<[u8; 16]> {
    let text = std::fs::read(path)
        .map_err(|e| context(e, format!("agno://: key file {}", path.display())))?;
    if text.contains(&b'A') {
        log::warn!(
            "agno://: key file {} has an uppercase A, read as the hex digit 1 as the C \
             plugin reads it (write a lowercase a for 10)",
            path.display()
        );
    }
    cipher::parse_key(&text).ok_or_else(|| {
        context(
            io::Error::from_raw_os_error(libc::EINVAL),
            format!(
                "agno://: key file {}: fewer than 2 hex digits (it should hold 32)",
                path.display()
            ),
        )
    })
}

/// Random bytes for the frames' salts, taken from the kernel a page at a time.
#[derive(Debug)]
struct Randomness {
    pool: Box<[u8; 4096]>,
    used: usize,
}

impl Randomness {
    fn new() -> Self {
        Self {
            pool: Box::new([0; 4096]),
            used: 4096,
        }
    }

    fn take<const N: usize>(&mut self) -> io::Result<[u8; N]> {
        if self.used + N > self.pool.len() {
            let mut filled = 0;
            while filled < self.pool.len() {
                filled += rustix::rand::getrandom(
                    &mut self.pool[filled..],
                    rustix::rand::GetRandomFlags::empty(),
                )?;
            }
            self.used = 0;
        }
        let mut out = [0u8; N];
        out.copy_from_slice(&self.pool[self.used..self.used + N]);
        self.used += N;
        Ok(out)
    }
}

/// An `agno://` plug: encrypts frames on their way to a nested plug and decrypts
/// what comes back.
pub struct Agno {
    inner: Box<dyn Plug>,
    cipher: Cipher,
    ethtype: EthType,
    random: Randomness,
    /// Where frames are sealed, and where sealed frames are received.
    scratch: Box<[u8]>,
}

impl std::fmt::Debug for Agno {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agno")
            .field("ethtype", &self.ethtype)
            .finish()
    }
}

/// The room a sealed frame of up to [`MAX_FRAME`] bytes needs.
const SCRATCH: usize = MAX_FRAME + cipher::OVERHEAD + 16;

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl Agno {
    /// Opens `agno://ARG` (the text after `agno://`): reads the key, then opens the
    /// nested plug.
    pub fn open(arg: &str, args: &OpenArgs) -> io::Result<Self> {
        let spec = parse(url::split_nested("agno", arg)?.outer)?;
        let home = crate::sys::home_dir(rustix::process::geteuid().as_raw());
        let key = read_key(&key_path(&spec.key_file, home.as_deref())?)?;
        let (spec, inner) = open_nested("agno", arg, args, parse)?;
        Ok(Self::wrap(&key, spec.ethtype, inner))
    }

    /// Wraps an open plug with a key.
    pub fn wrap(key: &[u8; 16], ethtype: EthType, inner: Box<dyn Plug>) -> Self {
        Self {
            inner,
            cipher: Cipher::new(key),
            ethtype,
            random: Randomness::new(),
            scratch: vec![0u8; SCRATCH].into_boxed_slice(),
        }
    }
}

impl Plug for Agno {
    fn send(&mut self, frame: &[u8]) -> io::Result<usize> {
        if frame.len() < MIN_FRAME {
            return Ok(frame.len());
        }
        if frame.len() > MAX_FRAME {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "agno://: a frame of {} bytes is over {MAX_FRAME}",
                    frame.len()
                ),
            ));
        }
        let [s0, s1, s2, s3, r0, r1, r2, r3] = self.random.take::<8>()?;
        let fresh = Fresh {
            now: now() as u32,
            salt: [s0, s1, s2, s3],
            random: u32::from_ne_bytes([r0, r1, r2, r3]),
        };
        let n = self
            .cipher
            .seal(frame, self.ethtype, fresh, &mut self.scratch);
        self.inner.send(&self.scratch[..n]).map(|_| frame.len())
    }

    fn recv(&mut self, buf: &mut [u8]) -> io::Result<Recv> {
        match self.inner.recv(&mut self.scratch)? {
            Recv::Frame(n) => {
                let n = n.min(self.scratch.len());
                Ok(match self.cipher.open(&self.scratch[..n], now(), buf) {
                    Some(len) => Recv::Frame(len),
                    None => Recv::Nothing,
                })
            }
            other => Ok(other),
        }
    }

    pass_through!(inner);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vde::seqpacket::SeqPacket;
    use rustix::net::{socketpair, AddressFamily, SocketFlags, SocketType};

    #[test]
    fn man_page_urls() {
        let s = parse("").unwrap();
        assert_eq!(
            (s.key_file.as_str(), s.ethtype),
            ("", EthType::Fixed(0xa6de))
        );
        let s = parse("/tmp/my_keyfile[ethtype=copy]").unwrap();
        assert_eq!(
            (s.key_file.as_str(), s.ethtype),
            ("/tmp/my_keyfile", EthType::Copy)
        );
        assert_eq!(parse("[ethtype=rand]").unwrap().ethtype, EthType::Random);
        assert_eq!(parse("[e=ipv4]").unwrap().ethtype, EthType::Fixed(0x800));
        let e = parse("[ethtype=0xffff]").unwrap_err().to_string();
        assert!(e.contains("ethtype") && e.contains("0xffff"), "{e}");
        let e = parse("[colour=red]").unwrap_err().to_string();
        assert!(e.contains("colour"), "{e}");
    }

    #[test]
    fn key_paths_like_the_c_plugin() {
        let home = Path::new("/home/u");
        let p = |s| key_path(s, Some(home));
        assert_eq!(p("").unwrap(), Path::new("/home/u/.vde_agno_key"));
        assert_eq!(p("~/k").unwrap(), Path::new("/home/u/k"));
        assert_eq!(p("~k").unwrap(), Path::new("/home/u/k"));
        assert_eq!(p("/etc/k").unwrap(), Path::new("/etc/k"));
        assert!(p("rel/k").unwrap_err().to_string().contains("rel/k"));
        assert!(key_path("", None).is_err());
    }

    #[test]
    fn missing_or_empty_key_files_are_named() {
        let dir = std::env::temp_dir().join(format!("vdestack-agno-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let missing = dir.join("none");
        let e = read_key(&missing).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        assert!(e.to_string().contains("none"), "{e}");
        let empty = dir.join("empty");
        std::fs::write(&empty, "zz\n").unwrap();
        let e = read_key(&empty).unwrap_err();
        assert_eq!(crate::error::errno_of(&e), libc::EINVAL);
        let e = Agno::open(
            &format!("{}{{null://}}", missing.display()),
            &OpenArgs::default(),
        )
        .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn pair() -> (Box<dyn Plug>, SeqPacket) {
        let (a, b) = socketpair(
            AddressFamily::UNIX,
            SocketType::SEQPACKET,
            SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
            None,
        )
        .unwrap();
        (
            Box::new(SeqPacket::from_fd(a).unwrap()),
            SeqPacket::from_fd(b).unwrap(),
        )
    }

    #[test]
    fn two_plugs_with_one_key_talk_and_a_third_with_another_does_not_hear() {
        let key = [7u8; 16];
        let (a_inner, mut wire) = pair();
        let mut a = Agno::wrap(&key, EthType::Fixed(0xa6de), a_inner);
        let (b_inner, mut b_wire) = pair();
        let mut b = Agno::wrap(&key, EthType::Fixed(0xa6de), b_inner);
        let (c_inner, mut c_wire) = pair();
        let mut c = Agno::wrap(&[8u8; 16], EthType::Fixed(0xa6de), c_inner);
        let frame: Vec<u8> = (0..100u8).collect();
        assert_eq!(a.send(&frame).unwrap(), 100);
        let mut buf = vec![0u8; SCRATCH];
        let Recv::Frame(n) = wire.recv(&mut buf).unwrap() else {
            panic!("nothing sent")
        };
        assert_eq!(n, 30 + 96);
        assert_eq!(&buf[12..14], &[0xa6, 0xde]);
        assert_ne!(&buf[30..50], &frame[14..34]);
        b_wire.send(&buf[..n]).unwrap();
        c_wire.send(&buf[..n]).unwrap();
        let mut out = vec![0u8; MAX_FRAME];
        assert_eq!(b.recv(&mut out).unwrap(), Recv::Frame(100));
        assert_eq!(&out[..100], &frame[..]);
        assert_eq!(c.recv(&mut out).unwrap(), Recv::Nothing);
        // A plain frame is not delivered.
        b_wire.send(&frame).unwrap();
        assert_eq!(b.recv(&mut out).unwrap(), Recv::Nothing);
        // Two sends of one frame differ (fresh salt, so a fresh IV).
        a.send(&frame).unwrap();
        a.send(&frame).unwrap();
        let Recv::Frame(n1) = wire.recv(&mut buf).unwrap() else {
            panic!()
        };
        let first = buf[..n1].to_vec();
        let Recv::Frame(n2) = wire.recv(&mut buf).unwrap() else {
            panic!()
        };
        assert_ne!(first, buf[..n2]);
        assert!(a.segment_batching().is_none() && a.offload().is_none());
        assert!(a.recv_batching().is_none() && a.tap_delivery().is_none());
    }
}
