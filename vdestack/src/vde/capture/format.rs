//! The two capture file formats tcpdump and Wireshark read, as bytes: classic
//! pcap (microsecond timestamps, no direction) and pcapng (a section header, one
//! Ethernet interface with nanosecond timestamps, and an Enhanced Packet Block per
//! frame whose `epb_flags` say inbound or outbound). Pure: the caller writes the
//! bytes. Little-endian, as the machine writes them (both formats carry a
//! byte-order magic).

use std::time::Duration;

/// Which file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// Classic libpcap: the direction is not recorded.
    Pcap,
    /// pcapng: direction and nanosecond timestamps (the default).
    #[default]
    PcapNg,
}

/// Which way a frame went, as seen from the local side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Received from the network.
    Inbound,
    /// Sent to the network.
    Outbound,
}

/// The largest frame recorded whole (tcpdump's default snapshot length).
pub const SNAPLEN: u32 = 262_144;

/// LINKTYPE_ETHERNET.
const LINKTYPE_ETHERNET: u16 = 1;

/// Appends a pcapng option (code, length, value padded to 32 bits).
fn option(out: &mut Vec<u8>, code: u16, value: &[u8]) {
    out.extend_from_slice(&code.to_le_bytes());
    out.extend_from_slice(&(value.len() as u16).to_le_bytes());
    out.extend_from_slice(value);
    out.resize(out.len() + pad(value.len()), 0);
}

fn pad(n: usize) -> usize {
    (4 - n % 4) % 4
}

/// Appends a pcapng block: type, total length, `body`, total length.
fn block(out: &mut Vec<u8>, kind: u32, body: &[u8]) {
    let total = (12 + body.len()) as u32;
    out.extend_from_slice(&kind.to_le_bytes());
    out.extend_from_slice(&total.to_le_bytes());
    out.extend_from_slice(body);
    out.extend_from_slice(&total.to_le_bytes());
}

/// What a file starts with: pcap's global header, or pcapng's section header and
/// the description of its one interface (named `ifname`).
pub fn file_header(format: Format, ifname: &str) -> Vec<u8> {
    let mut out = Vec::new();
    match format {
        Format::Pcap => {
            out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
            out.extend_from_slice(&2u16.to_le_bytes());
            out.extend_from_slice(&4u16.to_le_bytes());
            out.extend_from_slice(&0i32.to_le_bytes()); // thiszone
            out.extend_from_slice(&0u32.to_le_bytes()); // sigfigs
            out.extend_from_slice(&SNAPLEN.to_le_bytes());
            out.extend_from_slice(&u32::from(LINKTYPE_ETHERNET).to_le_bytes());
        }
        Format::PcapNg => {
            let mut shb = Vec::new();
            shb.extend_from_slice(&0x1a2b_3c4du32.to_le_bytes());
            shb.extend_from_slice(&1u16.to_le_bytes());
            shb.extend_from_slice(&0u16.to_le_bytes());
            shb.extend_from_slice(&(-1i64).to_le_bytes()); // section length unknown
            option(&mut shb, 4, b"vdestack capture://"); // shb_userappl
            option(&mut shb, 0, &[]);
            block(&mut out, 0x0a0d_0d0a, &shb);
            let mut idb = Vec::new();
            idb.extend_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
            idb.extend_from_slice(&0u16.to_le_bytes());
            idb.extend_from_slice(&SNAPLEN.to_le_bytes());
            if !ifname.is_empty() {
                let name = &ifname.as_bytes()[..ifname.len().min(256)];
                option(&mut idb, 2, name); // if_name
            }
            option(&mut idb, 9, &[9]); // if_tsresol: nanoseconds
            option(&mut idb, 0, &[]);
            block(&mut out, 1, &idb);
        }
    }
    out
}

/// Appends the record of one frame seen at `ts` (since the Unix epoch).
pub fn record(out: &mut Vec<u8>, format: Format, ts: Duration, dir: Direction, frame: &[u8]) {
    let caplen = frame.len().min(SNAPLEN as usize);
    let data = &frame[..caplen];
    match format {
        Format::Pcap => {
            out.extend_from_slice(&(ts.as_secs() as u32).to_le_bytes());
            out.extend_from_slice(&ts.subsec_micros().to_le_bytes());
            out.extend_from_slice(&(caplen as u32).to_le_bytes());
            out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
            out.extend_from_slice(data);
        }
        Format::PcapNg => {
            let ns = ts.as_nanos() as u64;
            let mut epb = Vec::with_capacity(32 + caplen + 16);
            epb.extend_from_slice(&0u32.to_le_bytes()); // interface 0
            epb.extend_from_slice(&((ns >> 32) as u32).to_le_bytes());
            epb.extend_from_slice(&(ns as u32).to_le_bytes());
            epb.extend_from_slice(&(caplen as u32).to_le_bytes());
            epb.extend_from_slice(&(frame.len() as u32).to_le_bytes());
            epb.extend_from_slice(data);
            epb.resize(epb.len() + pad(caplen), 0);
            // epb_flags: bits 0-1 are the direction (1 inbound, 2 outbound).
            let flags: u32 = match dir {
                Direction::Inbound => 1,
                Direction::Outbound => 2,
            };
            option(&mut epb, 2, &flags.to_le_bytes());
            option(&mut epb, 0, &[]);
            block(out, 6, &epb);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u32_at(b: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
    }

    #[test]
    fn pcap_header_and_record() {
        let h = file_header(Format::Pcap, "x");
        assert_eq!(h.len(), 24);
        assert_eq!(u32_at(&h, 0), 0xa1b2c3d4);
        assert_eq!(u32_at(&h, 20), 1);
        let mut r = Vec::new();
        let ts = Duration::new(1_700_000_000, 123_456_789);
        record(&mut r, Format::Pcap, ts, Direction::Inbound, &[7u8; 60]);
        assert_eq!(r.len(), 16 + 60);
        assert_eq!(u32_at(&r, 0), 1_700_000_000);
        assert_eq!(u32_at(&r, 4), 123_456);
        assert_eq!((u32_at(&r, 8), u32_at(&r, 12)), (60, 60));
    }

    #[test]
    fn pcapng_blocks_are_well_formed_and_carry_the_direction() {
        let h = file_header(Format::PcapNg, "vde0");
        // Walk the blocks: each starts and ends with its total length.
        let mut at = 0;
        let mut kinds = Vec::new();
        while at < h.len() {
            let len = u32_at(&h, at + 4) as usize;
            assert_eq!(len % 4, 0);
            assert_eq!(u32_at(&h, at + len - 4) as usize, len);
            kinds.push(u32_at(&h, at));
            at += len;
        }
        assert_eq!(kinds, vec![0x0a0d0d0a, 1]);
        assert_eq!(u32_at(&h, 8), 0x1a2b3c4d);
        for (dir, flag) in [(Direction::Inbound, 1), (Direction::Outbound, 2)] {
            let mut r = Vec::new();
            let ts = Duration::new(2, 5);
            record(&mut r, Format::PcapNg, ts, dir, &[1u8; 61]);
            assert_eq!(u32_at(&r, 0), 6);
            let len = u32_at(&r, 4) as usize;
            assert_eq!(len, r.len());
            assert_eq!(u32_at(&r, len - 4) as usize, len);
            // Timestamp in ns, split high/low.
            let ns = (u64::from(u32_at(&r, 12)) << 32) | u64::from(u32_at(&r, 16));
            assert_eq!(ns, 2_000_000_005);
            assert_eq!((u32_at(&r, 20), u32_at(&r, 24)), (61, 61));
            // Data padded to 64 bytes, then the epb_flags option.
            let opt = 28 + 64;
            assert_eq!(u32_at(&r, opt), 2 | (4 << 16));
            assert_eq!(u32_at(&r, opt + 4), flag);
        }
    }
}
