//! `vlan://[UNTAGGED][/OPTIONS]{VNL}`: 802.1Q VLANs done by the plug, as Debian's
//! libvdeplug-vlan does them: frames the local side sends are tagged (or retagged)
//! before they reach the nested plug, and frames from it are untagged (or
//! retagged, or dropped) before the local side sees them.
//!
//! * `UNTAGGED`: the VLAN the local side is on untagged (default 0: none). Its
//!   untagged frames go out tagged with it; frames tagged with it arrive untagged;
//!   with a VLAN set, untagged network traffic is not seen.
//! * `u=V`, `untag=V`: untagged network traffic is seen locally as tagged with V.
//! * `t=LIST`, `tag=LIST`: the VLANs the local side is on tagged, separated by `:`
//!   or `.`; `A-B` carries the local VLAN A as B on the network (and B back as A).
//! * `x`, `trunk`: any other VLAN passes tagged as it is.
//! * `q`, `qinq`, `ad`: the tag is an 802.1ad S-tag (TPID 0x88A8), so an 802.1Q
//!   frame gets a second, outer tag.
//!
//! Numbers are decimal, `0x` hex or `0` octal, as C's `strtol`. VIDs 0, 1 and 4095
//! never pass tagged (upstream's rule). Options come after `/`, as in the C code;
//! the man page's bracket form `3[untag=4/trunk]` works too (the C plugin drops
//! its first option, `untag=4` here: a bug not copied). Differences from the C
//! plugin, all bugs of it: a one-number tag list (`tag=5`) works; a VID over 4095
//! or text that is not a number is an error (C masks or reads 0); a frame
//! received on a remapped VLAN has its real length (C returns its buffer's size).
//!
//! The nested plug's back-pressure passes through ([`super::wrapper`]); large
//! segments are cut before tagging.

use std::io;

use super::url::{self, bad_value, find_unquoted, Options, UrlError};
use super::wrapper::{open_nested, pass_through};
use super::{OpenArgs, Plug, Recv, MAX_FRAME};

pub mod frames;

use frames::{Outgoing, TAG_LEN};

/// The option table, in the C plugin's order (a prefix picks the first match).
pub const TAGS: &[&str] = &["u", "untag", "t", "tag", "x", "trunk", "q", "qinq", "ad"];

/// The 802.1Q tag protocol identifier.
pub const TPID_8021Q: u16 = 0x8100;
/// The 802.1ad (QinQ) S-tag protocol identifier.
pub const TPID_8021AD: u16 = 0x88a8;

/// A `vlan://` plug's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The VLAN the local side is on untagged (0: none; 4095: drop untagged frames).
    pub untagged: u16,
    /// The VID untagged network traffic is seen with locally (0: not tagged).
    pub untag: u16,
    /// Tagged VLANs: (local VID, network VID) pairs, in the order given.
    pub tags: Vec<(u16, u16)>,
    /// Whether VLANs not listed pass too.
    pub trunk: bool,
    /// The TPID of the tags added and recognised.
    pub tpid: u16,
}

/// A VID as C's `strtol(s, NULL, 0)` reads a whole number; at most 4095.
fn vid(what: &'static str, s: &str) -> Result<u16, UrlError> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(0);
    }
    let n = if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        u32::from_str_radix(h, 16).ok()
    } else if s.len() > 1 && s.starts_with('0') {
        u32::from_str_radix(&s[1..], 8).ok()
    } else {
        s.parse::<u32>().ok()
    };
    match n {
        Some(n) if n <= 0xfff => Ok(n as u16),
        _ => Err(bad_value(
            "vlan",
            what,
            s,
            "expected a VLAN ID 0..4095 (decimal, 0x hex or 0 octal)",
        )),
    }
}

/// Parses a tag list: `A`, `A-B`, separated by `:` or `.`.
fn tag_list(s: &str) -> Result<Vec<(u16, u16)>, UrlError> {
    s.split([':', '.'])
        .filter(|t| !t.is_empty())
        .map(|t| match t.split_once('-') {
            Some((local, net)) => Ok((vid("tag", local)?, vid("tag", net)?)),
            None => {
                let v = vid("tag", t)?;
                Ok((v, v))
            }
        })
        .collect()
}

/// Parses the wrapper's part of a `vlan://` VNL (what precedes `{`).
pub fn parse(outer: &str) -> Result<Config, UrlError> {
    // The man page writes options in brackets; the C code reads slashes.
    let (untagged, opts): (String, Options) = if find_unquoted(outer, '[').is_some() {
        url::parse_path_style("vlan", outer, TAGS)?
    } else {
        url::parse_url_style("vlan", outer, TAGS)?
    };
    let qinq = ["q", "qinq", "ad"].iter().any(|t| opts.has(t));
    Ok(Config {
        untagged: vid("untagged VLAN", &untagged)?,
        untag: vid("untag", opts.last_of(&["u", "untag"]).unwrap_or(""))?,
        tags: tag_list(opts.last_of(&["t", "tag"]).unwrap_or(""))?,
        trunk: opts.has("x") || opts.has("trunk"),
        tpid: if qinq { TPID_8021AD } else { TPID_8021Q },
    })
}

/// A `vlan://` plug: tags and untags frames on their way to and from a nested plug.
pub struct Vlan {
    inner: Box<dyn Plug>,
    config: Config,
    /// Where a frame to send is built (a tag longer than the largest frame).
    scratch: Box<[u8]>,
}

impl std::fmt::Debug for Vlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vlan")
            .field("config", &self.config)
            .finish()
    }
}

impl Vlan {
    /// Opens `vlan://ARG` (the text after `vlan://`) and its nested plug.
    pub fn open(arg: &str, args: &OpenArgs) -> io::Result<Self> {
        let (config, inner) = open_nested("vlan", arg, args, parse)?;
        Ok(Self::wrap(config, inner))
    }

    /// Wraps an open plug.
    pub fn wrap(config: Config, inner: Box<dyn Plug>) -> Self {
        Self {
            inner,
            config,
            scratch: vec![0u8; MAX_FRAME + TAG_LEN].into_boxed_slice(),
        }
    }

    /// The settings in use.
    pub fn config(&self) -> &Config {
        &self.config
    }
}

impl Plug for Vlan {
    fn send(&mut self, frame: &[u8]) -> io::Result<usize> {
        if frame.len() > MAX_FRAME {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "vlan://: a frame of {} bytes is over {MAX_FRAME}",
                    frame.len()
                ),
            ));
        }
        match self.config.outgoing(frame, &mut self.scratch) {
            Outgoing::AsIs => self.inner.send(frame),
            Outgoing::Built(n) => self.inner.send(&self.scratch[..n]).map(|_| frame.len()),
            Outgoing::Drop => Ok(frame.len()),
        }
    }

    fn recv(&mut self, buf: &mut [u8]) -> io::Result<Recv> {
        match self.inner.recv(buf)? {
            Recv::Frame(n) => Ok(match self.config.incoming(buf, n.min(buf.len())) {
                Some(n) => Recv::Frame(n),
                None => Recv::Nothing,
            }),
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
        let c = parse("3").unwrap();
        assert_eq!(
            (c.untagged, c.untag, c.trunk, c.tpid),
            (3, 0, false, 0x8100)
        );
        // The bracket form of the man page keeps its first option.
        let c = parse("3[untag=4/trunk/tag=10:11-12:12-11]").unwrap();
        assert_eq!(c.untagged, 3);
        assert_eq!(c.untag, 4);
        assert!(c.trunk);
        assert_eq!(c.tags, vec![(10, 10), (11, 12), (12, 11)]);
        let c = parse("3/untag=4/trunk/tag=10:11-12:12-11").unwrap();
        assert_eq!((c.untag, c.trunk, c.tags.len()), (4, true, 3));
        let c = parse("5/qinq").unwrap();
        assert_eq!((c.untagged, c.tpid), (5, 0x88a8));
        assert_eq!(parse("5/ad").unwrap().tpid, 0x88a8);
        assert_eq!(parse("5/q").unwrap().tpid, 0x88a8);
    }

    #[test]
    fn numbers_prefixes_and_synonyms() {
        assert_eq!(parse("010").unwrap().untagged, 8);
        assert_eq!(parse("0x10/un=0x20").unwrap().untag, 0x20);
        assert_eq!(parse("/t=1.2-3").unwrap().tags, vec![(1, 1), (2, 3)]);
        // Synonyms: the last one given wins, as in C.
        assert_eq!(parse("/u=4/untag=5").unwrap().untag, 5);
        assert_eq!(parse("/untag=5/u=4").unwrap().untag, 4);
        assert_eq!(parse("").unwrap(), parse("0").unwrap());
    }

    #[test]
    fn bad_urls_name_what_is_wrong() {
        for (url, needle) in [
            ("4096", "4096"),
            ("abc", "abc"),
            ("3/tag=5-x", "x"),
            ("3/colour=red", "colour"),
            ("3/tag=99999", "99999"),
        ] {
            let e = parse(url).unwrap_err().to_string();
            assert!(e.contains("vlan") && e.contains(needle), "{url}: {e}");
        }
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
    fn the_plug_tags_what_it_sends_and_untags_what_it_receives() {
        let (inner, mut net) = pair();
        let mut v = Vlan::wrap(parse("7").unwrap(), inner);
        let frame: Vec<u8> = (0..60u8).collect();
        assert_eq!(v.send(&frame).unwrap(), 60);
        let mut buf = vec![0u8; MAX_FRAME];
        let Recv::Frame(n) = net.recv(&mut buf).unwrap() else {
            panic!("nothing sent")
        };
        assert_eq!(n, 64);
        assert_eq!(&buf[12..16], &[0x81, 0x00, 0x00, 0x07]);
        net.send(&buf[..n]).unwrap();
        assert_eq!(v.recv(&mut buf).unwrap(), Recv::Frame(60));
        assert_eq!(&buf[..60], &frame[..]);
        // Another VLAN's frame is handled, and nothing is delivered.
        let mut other = frame.clone();
        other.splice(12..12, [0x81, 0x00, 0x00, 0x08]);
        net.send(&other).unwrap();
        assert_eq!(v.recv(&mut buf).unwrap(), Recv::Nothing);
        // It claims no capability that would move frames past its tagging.
        assert!(v.segment_batching().is_none());
        assert!(v.offload().is_none());
        assert!(v.recv_batching().is_none());
        assert!(v.tap_delivery().is_none());
        drop(net);
        assert_eq!(v.recv(&mut buf).unwrap(), Recv::Closed);
    }

    #[test]
    fn large_segments_are_cut_before_tagging() {
        use crate::vde::gso::{VnetHdr, GSO_TCPV4};
        let (inner, mut net) = pair();
        let mut v = Vlan::wrap(parse("7").unwrap(), inner);
        // An IPv4/TCP segment of 3000 bytes of payload at MSS 1000.
        let payload = vec![0x5au8; 3000];
        let mut f = vec![0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00];
        let ip_len = (20 + 20 + payload.len()) as u16;
        f.extend_from_slice(&[0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, 6, 0, 0]);
        f[16..18].copy_from_slice(&ip_len.to_be_bytes());
        f.extend_from_slice(&[10, 0, 0, 1, 10, 0, 0, 2]);
        f.extend_from_slice(&[
            0x30, 0x39, 0x00, 0x50, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x18, 0xff, 0xff, 0, 0, 0, 0,
        ]);
        f.extend_from_slice(&payload);
        let hdr = VnetHdr {
            gso_type: GSO_TCPV4,
            gso_size: 1000,
            hdr_len: 54,
            ..VnetHdr::PLAIN
        };
        crate::vde::send_segment(&mut v, &hdr, &f).unwrap();
        let mut buf = vec![0u8; MAX_FRAME];
        let mut sizes = Vec::new();
        while let Ok(Recv::Frame(n)) = net.recv(&mut buf) {
            assert_eq!(&buf[12..16], &[0x81, 0x00, 0x00, 0x07]);
            sizes.push(n);
        }
        assert_eq!(sizes, vec![14 + 4 + 40 + 1000; 3]);
    }
}
