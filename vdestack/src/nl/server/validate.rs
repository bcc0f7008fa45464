//! The kernel's attribute policies that decide an errno before any handler runs
//! (`lib/nlattr.c`: a fixed-size attribute that is too short, a string that is too
//! long, a value below a policy minimum are all `ERANGE`), checked on the raw
//! attributes because `netlink-packet-route` refuses such messages as a whole.
//!
//! Only the attributes our stack reads are checked; the rest is left to the crate's
//! parser (whose refusal is `EINVAL`).

use super::handler::Errno;
use crate::nl::wire::{align4, IFLA_ADDRESS, IFLA_IFNAME, IFLA_MTU, IFLA_NEW_IFINDEX};

/// `IFLA_TXQLEN`.
const IFLA_TXQLEN: u16 = 13;
/// `IFLA_LINK`.
const IFLA_LINK: u16 = 5;
/// `IFLA_MASTER`.
const IFLA_MASTER: u16 = 10;
/// `IFNAMSIZ - 1`: the longest interface name.
const IFNAME_MAX: usize = 15;
/// `MAX_ADDR_LEN`: the longest link-layer address.
const MAX_ADDR_LEN: usize = 32;

/// Checks an `ifinfomsg` request's attributes against the kernel's `ifla_policy`.
pub fn link(payload: &[u8]) -> Result<(), Errno> {
    for (kind, data) in top_level(payload.get(16..).unwrap_or(&[])) {
        match kind {
            IFLA_IFNAME if !name_fits(data) => return Err(Errno::RANGE),
            IFLA_ADDRESS if data.len() > MAX_ADDR_LEN => return Err(Errno::RANGE),
            IFLA_MTU | IFLA_TXQLEN | IFLA_LINK | IFLA_MASTER if data.len() < 4 => {
                return Err(Errno::RANGE)
            }
            IFLA_NEW_IFINDEX => {
                // NLA_POLICY_MIN(NLA_S32, 1), as Linux. (The "ask" forms are taken out
                // before this check: see `strip_index_ask`.)
                let v = data
                    .get(..4)
                    .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]));
                if !matches!(v, Some(i) if i >= 1) {
                    return Err(Errno::RANGE);
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// A string attribute of at most [`IFNAME_MAX`] bytes before an optional NUL.
pub fn name_fits(data: &[u8]) -> bool {
    let len = match data.last() {
        Some(0) => data.len() - 1,
        _ => data.len(),
    };
    !data.is_empty() && len <= IFNAME_MAX
}

/// The top-level attributes (type without flag bits, payload), as far as they are
/// well formed; like the kernel's deprecated parser, a bad tail is not an error.
fn top_level(mut buf: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    while buf.len() >= 4 {
        let len = u16::from_ne_bytes([buf[0], buf[1]]) as usize;
        if len < 4 || len > buf.len() {
            break;
        }
        out.push((u16::from_ne_bytes([buf[2], buf[3]]) & 0x3fff, &buf[4..len]));
        buf = &buf[align4(len).min(buf.len())..];
    }
    out
}

/// libnlq's extension, which the kernel does not have: a NEWLINK whose
/// `IFLA_NEW_IFINDEX` is nlinline's short "ask" (`IFINDEX_ASK`: fewer than 4 bytes)
/// or libnlq's u32 0 asks for the new link's index in the ACK. Returns the payload
/// without that attribute when the request asks so; `None` otherwise (Linux answers
/// both forms with `ERANGE`, and so do we for every other value below 1).
pub fn strip_index_ask(payload: &[u8]) -> Option<Vec<u8>> {
    let attrs = payload.get(16..)?;
    let mut out = payload[..16].to_vec();
    let mut asked = false;
    let mut buf = attrs;
    while buf.len() >= 4 {
        let len = u16::from_ne_bytes([buf[0], buf[1]]) as usize;
        if len < 4 || len > buf.len() {
            break;
        }
        let kind = u16::from_ne_bytes([buf[2], buf[3]]) & 0x3fff;
        let data = &buf[4..len];
        let step = align4(len).min(buf.len());
        if kind == IFLA_NEW_IFINDEX && (data.len() < 4 || data[..4] == [0; 4]) {
            asked = true;
        } else {
            out.extend_from_slice(&buf[..step]);
            // Keep 4-byte alignment for the next attribute.
            out.resize(align4(out.len()), 0);
        }
        buf = &buf[step..];
    }
    out.extend_from_slice(buf);
    asked.then_some(out)
}
