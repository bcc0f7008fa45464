//! The normalisation of the differential test (what is compared exactly, what is
//! compared loosely, what is left out: see the test's module docs).

use std::collections::BTreeMap;

use vdestack::nl::wire::{self, *};

/// One reply, normalised.
#[derive(Debug, PartialEq)]
pub enum Norm {
    /// An `NLMSG_ERROR`: code and echoed bytes.
    Error(i32, Vec<u8>),
    /// `NLMSG_DONE`'s payload.
    Done(Vec<u8>),
    /// A data message: fixed header bytes, attributes (type -> value).
    Data(Vec<u8>, BTreeMap<u16, Vec<u8>>),
}

#[derive(Debug, PartialEq)]
pub struct Reply {
    pub kind: u16,
    pub flags: u16,
    pub seq: u32,
    pub body: Norm,
}

fn fixed_len(kind: u16) -> usize {
    match (kind - 16) >> 2 {
        0 => 16,
        1 => 8,
        _ => 12,
    }
}

pub fn parse(msg: &[u8], port: u32) -> Reply {
    let ms = wire::split(msg).unwrap();
    assert_eq!(ms.len(), 1);
    let m = ms[0];
    assert_eq!(m.pid, port, "replies carry the requester's port id");
    let body = match m.kind {
        NLMSG_ERROR => Norm::Error(
            wire::error_code(m.payload).unwrap(),
            m.payload[4..].to_vec(),
        ),
        NLMSG_DONE => Norm::Done(m.payload.to_vec()),
        k => {
            let f = fixed_len(k).min(m.payload.len());
            let attrs = wire::attrs(&m.payload[f..]).unwrap();
            Norm::Data(
                m.payload[..f].to_vec(),
                attrs.into_iter().map(|(t, v)| (t, v.to_vec())).collect(),
            )
        }
    };
    Reply {
        kind: m.kind,
        flags: m.flags,
        seq: m.seq,
        body,
    }
}

const IFLA_ADDRESS_T: u16 = 1;
const IFLA_STATS: u16 = 7;
const IFLA_STATS64: u16 = 23;
const IFLA_LINKINFO_T: u16 = 18;
const IFA_CACHEINFO: u16 = 6;

/// The kernel's IPv6 multicast routes, which the stack does not model.
pub fn unmodelled(r: &Reply) -> bool {
    match &r.body {
        Norm::Data(h, _) if r.kind == RTM_NEWROUTE => h[0] == libc::AF_INET6 as u8 && h[7] == 5,
        _ => false,
    }
}

fn info_kind(v: &[u8]) -> Option<Vec<u8>> {
    wire::attrs(v)
        .ok()?
        .into_iter()
        .find(|(t, _)| *t == 1)
        .map(|(_, k)| k.to_vec())
}

/// Compares one pair; returns what differs.
pub fn differ(k: &Reply, s: &Reply) -> Option<String> {
    if (k.kind, k.flags, k.seq) != (s.kind, s.flags, s.seq) {
        return Some(format!(
            "header: kernel {:?} server {:?}",
            (k.kind, k.flags, k.seq),
            (s.kind, s.flags, s.seq)
        ));
    }
    match (&k.body, &s.body) {
        (Norm::Data(kh, ka), Norm::Data(sh, sa)) => {
            if kh != sh {
                return Some(format!("fixed header: kernel {kh:?} server {sh:?}"));
            }
            let index = kh
                .get(4..8)
                .map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]));
            for (t, sv) in sa {
                let Some(kv) = ka.get(t) else {
                    return Some(format!("attribute {t} sent by the server only"));
                };
                let same = match (k.kind, *t) {
                    (RTM_NEWLINK, IFLA_ADDRESS_T) if index != Some(1) => kv.len() == sv.len(),
                    (RTM_NEWLINK, IFLA_STATS | IFLA_STATS64) => kv.len() == sv.len(),
                    (RTM_NEWLINK, IFLA_LINKINFO_T) => info_kind(kv) == info_kind(sv),
                    (RTM_NEWADDR, IFA_CACHEINFO) => kv.get(..8) == sv.get(..8),
                    _ => kv == sv,
                };
                if !same {
                    return Some(format!("attribute {t}: kernel {kv:?} server {sv:?}"));
                }
            }
            None
        }
        (a, b) if a == b => None,
        (a, b) => Some(format!("kernel {a:?} server {b:?}")),
    }
}
