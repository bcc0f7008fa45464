//! VDE plugs: Ethernet frames over a transport chosen by a URL.
//!
//! A [`Plug`] sends and receives one Ethernet frame per call and has one fd to poll for
//! readability. [`open`] picks the plugin from the URL's scheme, exactly as
//! libvdeplug4's `vde_open` does, so the same URLs reach the same networks as the C
//! tools (`vde_plug`, `vdens`, libvdestack).
//!
//! | scheme | file | transport |
//! |---|---|---|
//! | `vde://PATH[opts]` (or a bare path) | [`vde_client`] | client of a `vde_switch` (or of our `switch://`/`hub://`) |
//! | `hub://PATH`, `switch://PATH` | [`netnode`] | a hub or learning switch server that `vde://` clients join |
//! | `multi://PATH`, `bonding://PATH` | [`netnode`] | one cable of several links that `vde://` clients join: frames on every link (hand-off) or on one in turn |
//! | `vxvde://GROUP/opts` | [`vxvde`] | distributed switch over UDP multicast + unicast |
//! | `vxlan://GROUP/opts` | [`vxlan`] | Linux-kernel-compatible VXLAN |
//! | `udp://[SRC:]PORT->HOST:PORT` | [`udp`] | point-to-point UDP |
//! | `ptp://PATH` | [`ptp`] | point-to-point unix datagram pair (Debian vdeplug 4.0.1's variant) |
//! | `tap://IFNAME` | [`tap`] | a kernel tap interface |
//! | `cmd://COMMAND ARGS` | [`cmd`] | a coprocess speaking [`stream`] framing on its stdin/stdout |
//! | `seqpacket://FD` | [`seqpacket`] | an inherited `SOCK_SEQPACKET` fd, one frame per message |
//! | `null://` | [`null`] | sends nowhere, never receives |
//! | `inproc://NAME[/hub]` | [`inproc`] | a switch (or hub) inside this process: plugs of one program that name it share it |
//! | `vlan://[VID][/opts]{VNL}` | [`vlan`] | 802.1Q/802.1ad tagging around a nested plug (Debian's libvdeplug-vlan) |
//! | `agno://[KEYFILE][[opts]]{VNL}` | [`agno`] | AES-128 encryption of every frame around a nested plug (Debian's libvdeplug-agno) |
//! | `vdesl://DEVICE[speed=N]` | [`vdesl`] | a serial line, in stream framing (Debian's libvdeplug-vdesl) |
//! | `pcap://IFNAME` | [`pcap`] | a kernel interface's frames through an `AF_PACKET` socket (Debian's libvdeplug-pcap) |
//! | `slirp://[/OPTIONS]` | [`slirp`] | NAT to the host's network through libslirp (DHCP, DNS forwarder, port forwards, IPv6) |
//! | `capture://FILE[OPTS]{VNL}` | [`capture`] | every frame, both ways, to a pcapng or pcap file (or stdout) that tcpdump reads |
//! | `wirefilter://[OPTS]{VNL}` | [`wirefilter`] | delay, loss, duplication, bandwidth... around a nested plug (vde2's wirefilter, the vdeplug_wirefilter plugin) |
//!
//! A wrapping plug (`vlan`, `agno`, `wirefilter`, `capture`) takes the VNL of the plug it wraps in braces,
//! nesting to any depth ([`url::nested`], [`wrapper`]).
//!
//! ## The contract of a plug
//!
//! * All fds are non-blocking and close-on-exec. [`Plug::data_fd`] becomes readable
//!   when [`Plug::recv`] has something to report; `recv` then returns
//!   [`Recv::Frame`], [`Recv::Nothing`] (an event was handled but there is no frame
//!   for the caller: a filtered datagram, a client joining a switch), or
//!   [`Recv::Closed`] (the peer or switch went away). Without readiness it returns an
//!   error of kind `WouldBlock`.
//! * [`Plug::send`] never blocks. A full peer makes it return `WouldBlock`: the frame
//!   is dropped, as a relay must drop rather than deadlock (upstream's ptp deadlock);
//!   unless the plug was asked to keep it ([`Backlog`], see below).
//!   Frames shorter than 14 bytes are discarded and reported as sent.
//! * Dropping a plug closes every fd, removes every socket file it created and reaps
//!   every process it started.
//!
//! Beyond that core (send, receive, the fd to poll) a plug may have capabilities,
//! each a trait it hands out through one query ([`Plug::offload`],
//! [`Plug::segment_batching`], [`Plug::recv_batching`], [`Plug::backlog`],
//! [`Plug::tap_delivery`]); a transport without them implements nothing for them.
//!
//! ## Large segments (offload)
//!
//! A plug may carry frames with a [`gso::VnetHdr`] in front: TCP segments of up to
//! 64 KiB cut later, checksums still to compute. Only `inproc://` does
//! ([`Offload`]), and only once turned on with [`Offload::enable`] (a stack whose
//! tap has `IFF_VNET_HDR` does); then frames move as (header, frame) pairs, and
//! the segment hands ordinary frames ([`gso::to_plain`]) to every port that did
//! not turn it on. The datagram plugs (`vxvde://`, `vxlan://`, `udp://`,
//! `vde://`) cut a segment once and send all its frames with one `sendmmsg`
//! ([`SegmentBatching`], [`batch`]): their peers still get ordinary MTU-sized
//! frames. Every other plug gets segments cut in software before they reach it
//! ([`send_segment`] picks the way); a wrapping plug (`vlan://`, `agno://`,
//! `wirefilter://`, `capture://`) too, whatever it wraps: each frame is tagged,
//! encrypted, impaired or recorded on its own.
//!
//! ## Many frames per receive
//!
//! The same datagram plugs receive up to 32 datagrams with one `recvmmsg`
//! ([`RecvBatching`], [`recv_into_batch`]) into buffers the caller owns: the relay
//! reads their frames in place, and nothing is left waiting inside a plug.
//!
//! ## Back-pressure
//!
//! A 64 KiB segment is some 45 datagrams at once, more than a `vde_switch`'s
//! receive queue takes (`net.unix.max_dgram_qlen`, 10 by default). The datagram
//! plugs above keep what their peer refuses with `EAGAIN` once asked
//! ([`Backlog::keep`]: the stack's relay asks); the relay then stops reading
//! the tap until the peer has room ([`Backlog::room_fd`] writable), so TCP slows
//! down instead of losing segments. The stream plugs (`cmd://`, stdin/stdout)
//! queue up to 256 KiB themselves and wake on room the same way
//! ([`stream_plug`]); the others drop what a full peer refuses.

use std::io;
use std::time::Duration;

pub mod agno;
pub mod batch;
pub mod cable;
pub mod capture;
pub mod cmd;
mod datagram;
pub mod gro;
pub mod gso;
pub mod inproc;
pub mod mactable;
pub mod netnode;
pub mod null;
pub mod pcap;
mod plug;
pub mod poll_window;
pub mod ptp;
pub mod rate_limit;
pub mod recv_batch;
pub mod seqpacket;
pub mod slirp;
pub mod stream;
pub mod stream_plug;
pub mod tap;
pub mod udp;
pub mod url;
pub mod vde_client;
pub mod vdesl;
pub mod vlan;
pub mod vxlan;
pub mod vxvde;
pub mod wirefilter;
pub mod wrapper;

pub use plug::{
    recv_into_batch, recv_segment, send_offload_each, send_segment, Backlog, Offload, Plug, Recv,
    RecvBatching, SegmentBatching, TapDelivery,
};
pub use recv_batch::RecvBatch;
pub use url::UrlError;

/// The largest Ethernet frame a plug carries (`VDE_ETHBUFSIZE`: 9216 MTU + 14 + 4).
pub const MAX_FRAME: usize = 9234;

/// The smallest Ethernet frame: destination, source and type.
pub const MIN_FRAME: usize = 14;

/// The schemes [`open`] knows.
pub const SCHEMES: &[&str] = &[
    "vde",
    "hub",
    "switch",
    "multi",
    "bonding",
    "vxvde",
    "vxlan",
    "udp",
    "ptp",
    "tap",
    "cmd",
    "seqpacket",
    "null",
    "inproc",
    "vlan",
    "agno",
    "vdesl",
    "pcap",
    "slirp",
    "wirefilter",
    "capture",
];

/// The deprecated `struct vde_open_args` of libvdeplug, plus the description.
#[derive(Debug, Clone)]
pub struct OpenArgs {
    /// Free text that a switch shows for the port (`vde_plug -D`). [`open`] appends
    /// `user=NAME pid=PID` as libvdeplug does.
    pub descr: String,
    /// Group that gets access to socket files this plug creates (`-g`).
    pub group: Option<String>,
    /// Permissions of socket files this plug creates (`-m`), default 0700 (0600 for
    /// hub/switch control sockets). A mode of 0 is refused: the switch could not
    /// connect back.
    pub mode: Option<u32>,
    /// Port to ask a switch for (`--port`), overridden by a port in the URL.
    pub port: Option<u32>,
}

impl Default for OpenArgs {
    fn default() -> Self {
        Self {
            descr: "vdestack:".to_string(),
            group: None,
            mode: None,
            port: None,
        }
    }
}

impl OpenArgs {
    /// The description sent to a switch: `"<descr> user=<name> pid=<pid>"`, at most
    /// 127 bytes, like libvdeplug's.
    pub fn full_description(&self) -> String {
        let uid = rustix::process::getuid().as_raw();
        let user = crate::sys::user_name(uid).unwrap_or_else(|| uid.to_string());
        let mut d = format!("{} user={} pid={}", self.descr, user, std::process::id());
        if let Some(ssh) = std::env::var("SSH_CLIENT")
            .ok()
            .and_then(|s| s.split_whitespace().next().map(str::to_string))
        {
            d.push_str(" SSH=");
            d.push_str(&ssh);
        }
        let mut end = d.len().min(127);
        while !d.is_char_boundary(end) {
            end -= 1;
        }
        d.truncate(end);
        d
    }
}

/// Opens a plug from a VNL with default arguments.
pub fn open(vnl: &str) -> io::Result<Box<dyn Plug>> {
    open_with(vnl, &OpenArgs::default())
}

/// Opens a plug from a VNL (`scheme://ARG` or a bare path).
pub fn open_with(vnl: &str, args: &OpenArgs) -> io::Result<Box<dyn Plug>> {
    let vnl = url::resolve_default(vnl)?;
    let (scheme, arg) = url::split_scheme(&vnl);
    let plug: Box<dyn Plug> = match scheme {
        "vde" => Box::new(vde_client::VdeClient::open(arg, args)?),
        "hub" => Box::new(netnode::NetNode::open(netnode::Kind::Hub, arg, args)?),
        "switch" => Box::new(netnode::NetNode::open(netnode::Kind::Switch, arg, args)?),
        "multi" => Box::new(netnode::NetNode::open(netnode::Kind::Multi, arg, args)?),
        "bonding" => Box::new(netnode::NetNode::open(netnode::Kind::Bonding, arg, args)?),
        "vxvde" => Box::new(vxvde::Vxvde::open(arg)?),
        "vxlan" => Box::new(vxlan::Vxlan::open(arg)?),
        "udp" => Box::new(udp::Udp::open(arg)?),
        "ptp" => Box::new(ptp::Ptp::open(arg, args)?),
        "tap" => Box::new(tap::Tap::open(arg)?),
        "cmd" => Box::new(cmd::Cmd::open(arg)?),
        "seqpacket" => Box::new(seqpacket::SeqPacket::open(arg)?),
        "null" => Box::new(null::Null::open(arg)?),
        "inproc" => Box::new(inproc::InProc::open(arg)?),
        "vlan" => Box::new(vlan::Vlan::open(arg, args)?),
        "agno" => Box::new(agno::Agno::open(arg, args)?),
        "vdesl" => Box::new(vdesl::Vdesl::open(arg)?),
        "pcap" => Box::new(pcap::Pcap::open(arg)?),
        "slirp" => Box::new(slirp::Slirp::open(arg)?),
        "wirefilter" => Box::new(wirefilter::Wirefilter::open(arg, args)?),
        "capture" => Box::new(capture::Capture::open(arg, args)?),
        "veth" => {
            return Err(crate::error::context(
                io::Error::from_raw_os_error(libc::EPROTONOSUPPORT),
                "veth://NAME joins stacks of one process in the kernel: it is a stack \
                 interface, not a plug (for a plug, use inproc://NAME)",
            ))
        }
        other => return Err(UrlError::UnknownScheme(other.to_string()).into()),
    };
    Ok(plug)
}

/// Waits until `plug` has something for [`Plug::recv`], or `timeout` passes
/// (`None`: forever). Returns whether it is ready.
pub fn wait_readable(plug: &dyn Plug, timeout: Option<Duration>) -> io::Result<bool> {
    crate::sys::poll_readable(plug.data_fd(), timeout)
}

/// Receives the next frame, waiting up to `timeout` for it: `Ok(Some(n))` for a frame,
/// `Ok(None)` on timeout, an error of kind `UnexpectedEof` when the plug closed.
pub fn recv_timeout(
    plug: &mut dyn Plug,
    buf: &mut [u8],
    timeout: Duration,
) -> io::Result<Option<usize>> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        match plug.recv(buf) {
            Ok(Recv::Frame(n)) => return Ok(Some(n)),
            Ok(Recv::Closed) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the plug's peer closed",
                ))
            }
            // Handled something else (a busy switch's port-to-port traffic): keep
            // going, but not past the deadline.
            Ok(Recv::Nothing) => {
                if std::time::Instant::now() >= deadline {
                    return Ok(None);
                }
                continue;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() || !wait_readable(plug, Some(left))? {
            return Ok(None);
        }
    }
}
