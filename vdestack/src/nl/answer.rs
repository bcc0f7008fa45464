//! What an answer means, written once for every dialog: the replies to one
//! request become its data messages, its acknowledgement or its error; a dump the
//! peer marks interrupted (`NLM_F_DUMP_INTR`: the table changed meanwhile) is
//! asked again, up to [`DUMP_TRIES`] times. Used by [`super::NlClient`] and the
//! ioctl emulation ([`super::emul`]).

use std::io;

use super::dialog::Dialog;
use super::wire::{
    self, Builder, NLMSG_DONE, NLMSG_ERROR, NLMSG_NOOP, NLMSG_OVERRUN, NLM_F_DUMP, NLM_F_DUMP_INTR,
    NLM_F_REQUEST,
};

/// How often a dump that the peer marks interrupted is asked before `EINTR` is
/// returned.
pub(crate) const DUMP_TRIES: usize = 5;

/// The answer to one request.
#[derive(Debug, Default)]
pub(crate) struct Answer {
    /// The data messages: (type, payload).
    pub msgs: Vec<(u16, Vec<u8>)>,
    /// The acknowledgement's value (0, or a positive value such as a new link's
    /// index from a served stack), if the answer ended with one.
    pub ack: Option<i32>,
    /// Some message carried `NLM_F_DUMP_INTR`.
    pub interrupted: bool,
}

/// Sends `req` (one whole message) through `d` and reads what its replies mean.
/// A negative error from the peer is an `io::Error` with that errno (unwrapped:
/// `raw_os_error()` works); a malformed reply is `EPROTO`.
pub(crate) fn exchange(d: &mut dyn Dialog, req: &[u8]) -> io::Result<Answer> {
    let mut ans = Answer::default();
    for bytes in d.dialog(req)? {
        for m in wire::split(&bytes)? {
            ans.interrupted |= m.flags & NLM_F_DUMP_INTR != 0;
            match m.kind {
                NLMSG_ERROR => {
                    let code = wire::error_code(m.payload)?;
                    if code < 0 {
                        return Err(io::Error::from_raw_os_error(-code));
                    }
                    ans.ack = Some(code);
                    return Ok(ans);
                }
                NLMSG_DONE => {
                    // A dump may end with a negative error in place of 0; some
                    // servers send no code at all, which is success.
                    let code = if m.payload.len() >= 4 {
                        wire::error_code(m.payload)?
                    } else {
                        0
                    };
                    if code < 0 {
                        return Err(io::Error::from_raw_os_error(-code));
                    }
                    return Ok(ans);
                }
                NLMSG_OVERRUN => return Err(io::Error::from_raw_os_error(libc::EOVERFLOW)),
                NLMSG_NOOP => {}
                k if k < 16 => return Err(wire::malformed(&format!("control message type {k}"))),
                k => ans.msgs.push((k, m.payload.to_vec())),
            }
        }
    }
    Ok(ans)
}

/// Dumps every object of request type `kind` with the fixed header `fixed`;
/// returns the payloads of the messages of type `reply`. Retries a dump that the
/// peer marks interrupted; `EINTR` after [`DUMP_TRIES`].
pub(crate) fn dump(
    d: &mut dyn Dialog,
    kind: u16,
    fixed: &[u8],
    reply: u16,
) -> io::Result<Vec<Vec<u8>>> {
    for _ in 0..DUMP_TRIES {
        let req = Builder::new(kind, NLM_F_REQUEST | NLM_F_DUMP, 0)
            .raw(fixed)
            .finish();
        let ans = exchange(d, &req)?;
        if !ans.interrupted {
            return Ok(ans
                .msgs
                .into_iter()
                .filter(|(k, _)| *k == reply)
                .map(|(_, p)| p)
                .collect());
        }
    }
    Err(io::Error::from_raw_os_error(libc::EINTR))
}
