//! `/proc/net/dev`, in the kernel's exact format (`dev_seq_show` and
//! `dev_seq_printf_stats` of Linux 6.x `net/core/net-procfs.c`), from the
//! counters that rtnetlink reports (`IFLA_STATS64`: the same
//! `dev_get_stats()` the kernel prints).
//!
//! libnlq writes `%6s:%8llu` where the kernel writes `%6s: %7llu`; the two differ
//! once a link has received 10 MB (`lo: 12345678` against `lo:12345678`). The
//! kernel's format is followed here.

use std::fmt::Write as _;
use std::io;

use super::super::dialog::Dialog;
use super::rt::{self, LinkInfo};

/// The two header lines, byte for byte the kernel's.
pub const PROC_NET_DEV_HEADER: &str = "Inter-|   Receive                                                |  Transmit\n face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n";

/// The fields of `struct rtnl_link_stats64`, in its order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Stats {
    rx_packets: u64,
    tx_packets: u64,
    rx_bytes: u64,
    tx_bytes: u64,
    rx_errors: u64,
    tx_errors: u64,
    rx_dropped: u64,
    tx_dropped: u64,
    multicast: u64,
    collisions: u64,
    rx_length_errors: u64,
    rx_over_errors: u64,
    rx_crc_errors: u64,
    rx_frame_errors: u64,
    rx_fifo_errors: u64,
    rx_missed_errors: u64,
    tx_aborted_errors: u64,
    tx_carrier_errors: u64,
    tx_fifo_errors: u64,
    tx_heartbeat_errors: u64,
    tx_window_errors: u64,
    rx_compressed: u64,
    tx_compressed: u64,
}

impl Stats {
    /// From a sequence of counters in `rtnl_link_stats64` order; missing ones
    /// (a shorter, older structure) are zero.
    fn from_counters(c: impl Iterator<Item = u64>) -> Self {
        let mut v = [0u64; 23];
        for (slot, x) in v.iter_mut().zip(c) {
            *slot = x;
        }
        Stats {
            rx_packets: v[0],
            tx_packets: v[1],
            rx_bytes: v[2],
            tx_bytes: v[3],
            rx_errors: v[4],
            tx_errors: v[5],
            rx_dropped: v[6],
            tx_dropped: v[7],
            multicast: v[8],
            collisions: v[9],
            rx_length_errors: v[10],
            rx_over_errors: v[11],
            rx_crc_errors: v[12],
            rx_frame_errors: v[13],
            rx_fifo_errors: v[14],
            rx_missed_errors: v[15],
            tx_aborted_errors: v[16],
            tx_carrier_errors: v[17],
            tx_fifo_errors: v[18],
            tx_heartbeat_errors: v[19],
            tx_window_errors: v[20],
            rx_compressed: v[21],
            tx_compressed: v[22],
        }
    }

    /// `IFLA_STATS64`, else `IFLA_STATS` (32-bit, same order), else zeros.
    fn of(link: &LinkInfo) -> Self {
        if let Some(b) = &link.stats64 {
            Self::from_counters(
                b.chunks_exact(8)
                    .map(|c| u64::from_ne_bytes(c.try_into().unwrap_or([0; 8]))),
            )
        } else if let Some(b) = &link.stats32 {
            Self::from_counters(
                b.chunks_exact(4)
                    .map(|c| u32::from_ne_bytes(c.try_into().unwrap_or([0; 4])) as u64),
            )
        } else {
            Self::default()
        }
    }
}

/// One line: `"%6s: %7llu %7llu %4llu %4llu %4llu %5llu %10llu %9llu %8llu %7llu
/// %4llu %4llu %4llu %5llu %7llu %10llu\n"` with the kernel's sums.
fn line(out: &mut Vec<u8>, name: &[u8], s: &Stats) {
    // %6s pads by bytes, which a name that is not ASCII would show.
    out.resize(out.len() + 6usize.saturating_sub(name.len()), b' ');
    out.extend_from_slice(name);
    let mut t = String::new();
    // Writing to a String cannot fail.
    let _ = writeln!(
        t,
        ": {:7} {:7} {:4} {:4} {:4} {:5} {:10} {:9} {:8} {:7} {:4} {:4} {:4} {:5} {:7} {:10}",
        s.rx_bytes,
        s.rx_packets,
        s.rx_errors,
        s.rx_dropped.wrapping_add(s.rx_missed_errors),
        s.rx_fifo_errors,
        s.rx_length_errors
            .wrapping_add(s.rx_over_errors)
            .wrapping_add(s.rx_crc_errors)
            .wrapping_add(s.rx_frame_errors),
        s.rx_compressed,
        s.multicast,
        s.tx_bytes,
        s.tx_packets,
        s.tx_errors,
        s.tx_dropped,
        s.tx_fifo_errors,
        s.collisions,
        s.tx_carrier_errors
            .wrapping_add(s.tx_aborted_errors)
            .wrapping_add(s.tx_window_errors)
            .wrapping_add(s.tx_heartbeat_errors),
        s.tx_compressed,
    );
    out.extend_from_slice(t.as_bytes());
}

/// The bytes of `/proc/net/dev` for the links `d` reports, in ifindex order (the
/// kernel's order since Linux 6.9, and its order before for indexes below 256).
pub fn proc_net_dev_bytes(d: &mut dyn Dialog) -> io::Result<Vec<u8>> {
    let mut links = rt::links(d)?;
    links.sort_by_key(|l| l.index);
    let mut out = PROC_NET_DEV_HEADER.as_bytes().to_vec();
    for l in links.iter().filter(|l| !l.name.is_empty()) {
        line(&mut out, &l.name, &Stats::of(l));
    }
    Ok(out)
}

/// `/proc/net/dev` as text; `EILSEQ` if a link's name is not UTF-8 (use
/// [`proc_net_dev_bytes`] to get it anyway).
pub fn proc_net_dev(d: &mut dyn Dialog) -> io::Result<String> {
    String::from_utf8(proc_net_dev_bytes(d)?).map_err(|_| {
        crate::error::context(
            io::Error::from_raw_os_error(libc::EILSEQ),
            "a link name is not UTF-8",
        )
    })
}
