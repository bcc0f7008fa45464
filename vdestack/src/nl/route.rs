//! Routes: add, delete, list.
//!
//! Requests are nlinline's (`RTA_OIF` or the `RTA_UNSPEC` filler first, then
//! `RTA_DST`, then `RTA_GATEWAY`); a table above 255 or a metric adds `RTA_TABLE`
//! or `RTA_PRIORITY` after them.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::addr::ip_parts;
use super::client::NlClient;
use super::decode::{self, Route};
use super::nlinline::{self, Op};
use super::wire::{self, Builder, RTM_GETROUTE, RTM_NEWROUTE};

/// `RT_TABLE_MAIN`.
const RT_TABLE_MAIN: u32 = 254;
/// `RTN_UNICAST`.
const RTN_UNICAST: u8 = 1;
/// `RTPROT_BOOT` (nlinline's protocol).
const RTPROT_BOOT: u8 = 3;

/// A route to add or delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RouteSpec {
    /// The destination; with `prefix_len` 0, a default route (no `RTA_DST`).
    pub dst: IpAddr,
    /// The destination prefix length.
    pub prefix_len: u8,
    /// The gateway (same family as `dst`).
    pub gateway: Option<IpAddr>,
    /// The output interface.
    pub oif: Option<u32>,
    /// The table (default [`RouteSpec::MAIN_TABLE`]).
    pub table: u32,
    /// The protocol (default [`RouteSpec::PROTO_BOOT`]).
    pub protocol: u8,
    /// The scope (default 0, universe).
    pub scope: u8,
    /// The type (default [`RouteSpec::UNICAST`]).
    pub kind: u8,
    /// The metric (`RTA_PRIORITY`).
    pub metric: Option<u32>,
}

impl RouteSpec {
    /// The main table (`RT_TABLE_MAIN`), where routes go by default.
    pub const MAIN_TABLE: u32 = RT_TABLE_MAIN;
    /// The ordinary route type (`RTN_UNICAST`).
    pub const UNICAST: u8 = RTN_UNICAST;
    /// The protocol nlinline's routes carry (`RTPROT_BOOT`).
    pub const PROTO_BOOT: u8 = RTPROT_BOOT;

    /// A route to `dst/prefix_len`, main table, unicast, universe scope.
    pub fn new(dst: IpAddr, prefix_len: u8) -> Self {
        RouteSpec {
            dst,
            prefix_len,
            gateway: None,
            oif: None,
            table: RT_TABLE_MAIN,
            protocol: RTPROT_BOOT,
            scope: 0,
            kind: RTN_UNICAST,
            metric: None,
        }
    }

    /// The IPv4 default route.
    pub fn default_v4() -> Self {
        Self::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0)
    }

    /// The IPv6 default route.
    pub fn default_v6() -> Self {
        Self::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0)
    }

    /// Through gateway `gw`.
    pub fn via(mut self, gw: IpAddr) -> Self {
        self.gateway = Some(gw);
        self
    }

    /// Out of link `index`.
    pub fn dev(mut self, index: u32) -> Self {
        self.oif = Some(index);
        self
    }

    /// In table `table`.
    pub fn table(mut self, table: u32) -> Self {
        self.table = table;
        self
    }

    /// With scope `scope` (`RT_SCOPE_*`).
    pub fn scope(mut self, scope: u8) -> Self {
        self.scope = scope;
        self
    }

    /// With type `kind` (`RTN_*`).
    pub fn kind(mut self, kind: u8) -> Self {
        self.kind = kind;
        self
    }

    /// With metric `metric`.
    pub fn metric(mut self, metric: u32) -> Self {
        self.metric = Some(metric);
        self
    }
}

/// Builds the request for `spec` (pure; byte-identical to nlinline's `iproute_add`
/// or `iproute_del` for a main-table, boot-protocol unicast route without metric).
pub fn build_route(seq: u32, op: Op, spec: &RouteSpec) -> io::Result<Vec<u8>> {
    let (family, dst) = ip_parts(&spec.dst);
    let gw = match spec.gateway {
        Some(g) => {
            let (gf, gb) = ip_parts(&g);
            if gf != family {
                return Err(nlinline::einval(format!(
                    "gateway {g} of another family than {}",
                    spec.dst
                )));
            }
            Some(gb)
        }
        None => None,
    };
    // Type, scope, protocol and table are patched into rtmsg below: nlinline's
    // 0x60 magic would also force RTA_DST onto a default route.
    let p = spec.prefix_len as u32;
    let dst = (spec.prefix_len > 0).then_some(&dst[..]);
    let mut msg = nlinline::build_iproute(
        seq,
        op,
        family,
        dst,
        p,
        gw.as_deref(),
        spec.oif.unwrap_or(0),
    )?;
    // rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type.
    let h = wire::NLMSG_HDRLEN;
    msg[h + 6] = spec.scope;
    msg[h + 7] = spec.kind;
    msg[h + 5] = spec.protocol;
    let mut extra = Builder::new(0, 0, 0);
    if spec.table <= 255 {
        msg[h + 4] = spec.table as u8;
    } else {
        msg[h + 4] = 252; // RT_TABLE_COMPAT: the real id is in RTA_TABLE.
        extra = extra.attr_u32(wire::RTA_TABLE, spec.table);
    }
    if let Some(m) = spec.metric {
        extra = extra.attr_u32(wire::RTA_PRIORITY, m);
    }
    let extra = extra.finish();
    msg.extend_from_slice(&extra[h..]);
    let len = msg.len() as u32;
    msg[0..4].copy_from_slice(&len.to_ne_bytes());
    Ok(msg)
}

impl NlClient {
    /// Adds a route (`EEXIST` if there, `ENETUNREACH` for a gateway not on a
    /// connected network, `ENODEV` for an unknown interface).
    pub fn route_add(&self, spec: &RouteSpec) -> io::Result<()> {
        let what = || format!("add route {}/{}", spec.dst, spec.prefix_len);
        self.ack(what, |s| build_route(s, Op::Add, spec))?;
        Ok(())
    }

    /// Deletes a route (`ESRCH` if there is none such).
    pub fn route_del(&self, spec: &RouteSpec) -> io::Result<()> {
        let what = || format!("delete route {}/{}", spec.dst, spec.prefix_len);
        self.ack(what, |s| build_route(s, Op::Del, spec))?;
        Ok(())
    }

    /// Every IPv4 and IPv6 route of every table (a dump; the `local` table too).
    pub fn routes(&self) -> io::Result<Vec<Route>> {
        let mut out = Vec::new();
        for p in self.dump(RTM_GETROUTE, &[0; 12], RTM_NEWROUTE, "dump routes")? {
            if let Some(r) = decode::route(&p)? {
                out.push(r);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_requests_are_nlinline_bytes() {
        let gw: IpAddr = "10.0.0.254".parse().unwrap();
        let typed = build_route(1, Op::Add, &RouteSpec::default_v4().via(gw)).unwrap();
        let raw = nlinline::build_iproute(
            1,
            Op::Add,
            libc::AF_INET,
            None,
            0,
            Some(&[10, 0, 0, 254]),
            0,
        );
        assert_eq!(typed, raw.unwrap());
        let dst: IpAddr = "10.1.0.0".parse().unwrap();
        let typed = build_route(1, Op::Del, &RouteSpec::new(dst, 16).dev(3)).unwrap();
        let raw =
            nlinline::build_iproute(1, Op::Del, libc::AF_INET, Some(&[10, 1, 0, 0]), 16, None, 3);
        assert_eq!(typed, raw.unwrap());
    }

    #[test]
    fn table_metric_type_and_scope() {
        let dst: IpAddr = "10.1.0.0".parse().unwrap();
        let spec = RouteSpec::new(dst, 16)
            .dev(3)
            .table(1000)
            .metric(7)
            .kind(6)
            .scope(253);
        let m = build_route(1, Op::Add, &spec).unwrap();
        let h = wire::NLMSG_HDRLEN;
        assert_eq!(&m[h..h + 8], &[2, 16, 0, 0, 252, 3, 253, 6]);
        let attrs = wire::attrs(&m[h + 12..]).unwrap();
        let kinds: Vec<u16> = attrs.iter().map(|a| a.0).collect();
        assert_eq!(
            kinds,
            vec![
                wire::RTA_OIF,
                wire::RTA_DST,
                wire::RTA_TABLE,
                wire::RTA_PRIORITY
            ]
        );
        assert_eq!(attrs[2].1, &1000u32.to_ne_bytes()[..]);
        assert_eq!(
            u32::from_ne_bytes(m[0..4].try_into().unwrap()) as usize,
            m.len()
        );
        // A default route keeps no RTA_DST even with a type override.
        let bh = build_route(1, Op::Add, &RouteSpec::default_v6().kind(6)).unwrap();
        let kinds: Vec<u16> = wire::attrs(&bh[h + 12..])
            .unwrap()
            .iter()
            .map(|a| a.0)
            .collect();
        assert_eq!(kinds, vec![wire::RTA_UNSPEC]);
        let v6gw: IpAddr = "fe80::1".parse().unwrap();
        let e = build_route(1, Op::Add, &RouteSpec::default_v4().via(v6gw)).unwrap_err();
        assert_eq!(crate::error::errno_of(&e), libc::EINVAL);
    }
}
