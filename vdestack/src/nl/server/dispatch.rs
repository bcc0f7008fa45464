//! [`Server`]: requests in, replies out, no I/O. It splits a buffer into messages
//! (several per buffer, like the kernel), dispatches each by family and operation
//! to the stack's [`Handler`]s, and frames the replies once ([`super::frame`]).

use std::io;

use netlink_packet_route::address::AddressMessage;
use netlink_packet_route::link::LinkMessage;
use netlink_packet_route::route::RouteMessage;

use super::family::{Family, OnExisting};
use super::frame::{self, Header};
use super::handler::{Errno, Handler, Intent, RtStack};
use super::validate;
use crate::nl::wire::{NLMSG_HDRLEN, NLM_F_ACK, NLM_F_DUMP, NLM_F_MULTI, NLM_F_REQUEST};

/// `RTM_BASE`: the first rtnetlink message type (below are the control messages).
const RTM_BASE: u16 = 16;

/// What one request produced, before framing.
enum Outcome {
    /// Done; `data` are the reply objects of a non-dump GET (maybe none).
    Done(Vec<Vec<u8>>),
    /// A dump's parts (each a payload for an `NLM_F_MULTI` message).
    Dump(Vec<Vec<u8>>),
    /// A link made for a request that asked for its index (libnlq's extension):
    /// the ACK carries it.
    Created(u32),
}

/// A netlink route server for stack `S`: the kernel's side of an rtnetlink socket,
/// in user space and without I/O (see [`super::spawn_socket`] for a socket).
#[derive(Debug)]
pub struct Server<S> {
    stack: S,
    port: u32,
}

impl<S: RtStack> Server<S> {
    /// Serves `stack`; replies carry `port` as `nlmsg_pid` (the kernel puts the
    /// requesting socket's port id there).
    pub fn new(stack: S, port: u32) -> Self {
        Server { stack, port }
    }

    /// Sets the port id that replies carry: one server answers several sockets,
    /// each with its own port (as `vdestack vu` does).
    pub fn set_port(&mut self, port: u32) {
        self.port = port;
    }

    /// The stack served.
    pub fn stack(&self) -> &S {
        &self.stack
    }

    /// The stack served, to change it directly (e.g. counters).
    pub fn stack_mut(&mut self) -> &mut S {
        &mut self.stack
    }

    /// Processes every message in `request` and returns the replies, each one whole
    /// message. Never panics: a malformed message gets an error reply, a message
    /// whose length does not fit ends the buffer (as in the kernel).
    pub fn process(&mut self, request: &[u8]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for (h, msg) in frame::split(request) {
            self.one(&h, msg, &mut out);
        }
        out
    }

    fn one(&mut self, h: &Header, msg: &[u8], out: &mut Vec<Vec<u8>>) {
        let port = self.port;
        // Not a request, or a control message: nothing to do but the ACK asked for.
        let result = if h.flags & NLM_F_REQUEST == 0 || h.kind < RTM_BASE {
            Ok(Outcome::Done(Vec::new()))
        } else {
            self.request(h, &msg[NLMSG_HDRLEN..])
        };
        match result {
            Ok(Outcome::Created(index)) => {
                if h.flags & NLM_F_ACK != 0 {
                    out.push(frame::ack_with(msg, h, port, index as i32));
                }
            }
            Ok(Outcome::Done(data)) => {
                for d in data {
                    out.push(frame::message(reply_kind(h.kind), 0, h.seq, port, &d));
                }
                if h.flags & NLM_F_ACK != 0 {
                    out.push(frame::ack(msg, h, port));
                }
            }
            // The kernel never ACKs a dump, NLM_F_ACK or not.
            Ok(Outcome::Dump(parts)) => {
                for p in parts {
                    out.push(frame::message(
                        reply_kind(h.kind),
                        NLM_F_MULTI,
                        h.seq,
                        port,
                        &p,
                    ));
                }
                out.push(frame::done(h, port));
            }
            Err(errno) => out.push(frame::error(msg, h, errno, port)),
        }
    }

    fn request(&mut self, h: &Header, payload: &[u8]) -> Result<Outcome, Errno> {
        // rtnetlink ignores requests without even a family byte.
        if payload.is_empty() {
            return Ok(Outcome::Done(Vec::new()));
        }
        let op = h.kind & 3;
        let dump = op == 2 && h.flags & NLM_F_DUMP != 0;
        match (h.kind - RTM_BASE) >> 2 {
            0 => {
                if op == 0 {
                    if let Some(stripped) = validate::strip_index_ask(payload) {
                        return self.create_link_reporting_index(h, &stripped);
                    }
                }
                validate::link(payload)?;
                family::<LinkMessage, S>(&mut self.stack, h, payload, op, dump)
            }
            1 if op != 3 => family::<AddressMessage, S>(&mut self.stack, h, payload, op, dump),
            2 if op != 3 => family::<RouteMessage, S>(&mut self.stack, h, payload, op, dump),
            // Neighbours, rules, qdiscs, ... are not modelled.
            _ => Err(Errno::OPNOTSUPP),
        }
    }
}

impl<S: RtStack> Server<S> {
    /// A NEWLINK that asked for the new link's index (the attribute already taken
    /// out): made as any NEWLINK, then looked up by the request (its name) so the
    /// ACK can carry the index.
    fn create_link_reporting_index(
        &mut self,
        h: &Header,
        payload: &[u8],
    ) -> Result<Outcome, Errno> {
        validate::link(payload)?;
        family::<LinkMessage, S>(&mut self.stack, h, payload, 0, false)?;
        let req = LinkMessage::parse(payload).map_err(|_| Errno::INVAL)?;
        let made = Handler::<LinkMessage>::get(&self.stack, &req)?;
        Ok(Outcome::Created(made.header.index))
    }
}

/// The data messages answering a request of type `kind` are its family's NEW.
fn reply_kind(kind: u16) -> u16 {
    RTM_BASE + ((kind - RTM_BASE) & !3)
}

/// One request of family `M`, with the kernel's flag rules.
fn family<M, S>(
    stack: &mut S,
    h: &Header,
    payload: &[u8],
    op: u16,
    dump: bool,
) -> Result<Outcome, Errno>
where
    M: Family,
    S: Handler<M>,
{
    let af = payload[0];
    if !M::serves(af, op, dump) {
        return Err(Errno::OPNOTSUPP);
    }
    if dump {
        // Dumps take what they can of the request: a short or odd header still
        // selects by address family (the kernel ignores filters it cannot parse).
        let req = if payload.len() >= M::FIXED {
            M::parse(payload).unwrap_or_else(|_| M::of_family(af))
        } else {
            M::of_family(af)
        };
        return Ok(Outcome::Dump(
            Handler::<M>::dump(stack, &req).iter().map(emit).collect(),
        ));
    }
    if payload.len() < M::FIXED {
        return Err(Errno::INVAL);
    }
    let req = M::parse(payload).map_err(|_| Errno::INVAL)?;
    match op {
        2 => Ok(Outcome::Done(vec![emit(&stack.get(&req)?)])),
        0 => {
            match stack.find(&req, Intent::New)? {
                Some(key) => match M::on_existing(h.flags) {
                    OnExisting::Change => stack.change(key, &req)?,
                    OnExisting::Fail(e) => return Err(e),
                },
                None => {
                    M::on_missing(h.flags, af)?;
                    stack.create(&req)?;
                }
            }
            Ok(Outcome::Done(Vec::new()))
        }
        _ => {
            let intent = if op == 1 { Intent::Del } else { Intent::Set };
            let key = stack.find(&req, intent)?.ok_or(M::MISSING)?;
            if op == 1 {
                stack.delete(key, &req)?;
            } else {
                stack.change(key, &req)?;
            }
            Ok(Outcome::Done(Vec::new()))
        }
    }
}

fn emit<M: Family>(m: &M) -> Vec<u8> {
    let mut buf = vec![0u8; m.buffer_len()];
    m.emit(&mut buf);
    buf
}

impl<S: RtStack> crate::nl::dialog::Dialog for Server<S> {
    /// Answers at once; a buffer that is not one whole message is `EINVAL`.
    fn dialog(&mut self, request: &[u8]) -> io::Result<Vec<Vec<u8>>> {
        match frame::split(request).as_slice() {
            [(h, _)] if h.len == request.len() => Ok(self.process(request)),
            _ => Err(crate::error::context(
                io::Error::from_raw_os_error(libc::EINVAL),
                "netlink server: the request is not one whole message",
            )),
        }
    }
}
