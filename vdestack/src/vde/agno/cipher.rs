//! agno's frame format, as libvdeplug_agno writes it. Pure: the clock and the
//! random bytes come from the caller.
//!
//! ```text
//! 0..12   destination and source MAC, in clear
//! 12..14  outer ethertype (see EthType)
//! 14..30  AES-128-ECB(K, H)
//! 30..    AES-128-CBC(K, IV = H, payload zero-padded to a multiple of 16)
//! ```
//! H is 16 bytes: the original ethertype (2), the pad count (1, low nibble), 0,
//! `agno`, the sender's `time()` (big-endian u32), 4 random bytes. A receiver keeps
//! a frame only if H's tag is `agno` and the sender's time is within
//! [now - 2 s, now + 1 s]. There is no MAC: the tag and the time window are all
//! the integrity there is (the C plugin's design, kept for compatibility).

use aes::cipher::{
    block_padding::NoPadding, generic_array::GenericArray, BlockDecrypt, BlockDecryptMut,
    BlockEncrypt, BlockEncryptMut, InnerIvInit, KeyInit,
};
use aes::{Aes128Dec, Aes128Enc};

/// AES's block size.
const BLOCK: usize = 16;
/// What agno adds in front of the payload: the clear header and the encrypted H.
pub const OVERHEAD: usize = 14 + BLOCK;
/// The tag in every H.
const TAG: &[u8; 4] = b"agno";
/// The default outer ethertype.
pub const DEFAULT_ETHTYPE: u16 = 0xa6de;

/// The outer ethertype of encrypted frames (`ethtype=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EthType {
    /// The frame's own type (`copy`).
    Copy,
    /// This type (default 0xA6DE; `ipv4`, `ipv6` or a number 0x600..0xFFFE).
    Fixed(u16),
    /// A random type in 0x600..=0xFFFE for every frame (`rand`).
    Random,
}

/// Why `ethtype=` was refused.
pub const ETHTYPE_HELP: &str =
    "expected copy, ipv4, ipv6, rand, or a number 0x600..0xfffe (C syntax: 0x hex, 0 octal)";

impl EthType {
    /// Parses `ethtype=` as the C plugin does: the names exactly (case matters), else
    /// a number (empty or 0: the default).
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "copy" => Self::Copy,
            "ipv4" => Self::Fixed(0x0800),
            "ipv6" => Self::Fixed(0x86dd),
            "rand" => Self::Random,
            "" => Self::Fixed(DEFAULT_ETHTYPE),
            _ => {
                let n = if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
                    u32::from_str_radix(h, 16).ok()?
                } else if s.len() > 1 && s.starts_with('0') {
                    u32::from_str_radix(&s[1..], 8).ok()?
                } else {
                    s.parse::<u32>().ok()?
                };
                match n {
                    0 => Self::Fixed(DEFAULT_ETHTYPE),
                    0x600..=0xfffe => Self::Fixed(n as u16),
                    _ => return None,
                }
            }
        })
    }

    /// The outer type for a frame of type `own`; `random` is a fresh random number.
    fn outer(self, own: [u8; 2], random: u32) -> [u8; 2] {
        match self {
            Self::Copy => own,
            Self::Fixed(t) => t.to_be_bytes(),
            Self::Random => ((0x600 + random % 0xf9ff) as u16).to_be_bytes(),
        }
    }
}

/// Reads a key file's text as the C plugin does: only hex digits count, at most 32
/// of them, high nibble first, the rest of the key zero. The C code reads an
/// uppercase `A` as 1 (`c & 0xf`, plus 9 only when `c > 'A'`), and so does this:
/// otherwise the two would not agree on such a key. `None` with fewer than two
/// digits.
pub fn parse_key(text: &[u8]) -> Option<[u8; 16]> {
    let mut key = [0u8; 16];
    let mut digits = 0;
    for &c in text.iter().filter(|c| c.is_ascii_hexdigit()).take(32) {
        let val = (c & 0xf) + if c > b'A' { 9 } else { 0 };
        if digits & 1 == 1 {
            key[digits >> 1] |= val;
        } else {
            key[digits >> 1] = val << 4;
        }
        digits += 1;
    }
    (digits >= 2).then_some(key)
}

/// A key, ready to seal and open frames.
#[derive(Clone)]
pub struct Cipher {
    enc: Aes128Enc,
    dec: Aes128Dec,
}

impl std::fmt::Debug for Cipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cipher { .. }")
    }
}

/// The per-frame inputs the C plugin takes from the clock and its random generator.
#[derive(Debug, Clone, Copy)]
pub struct Fresh {
    /// `time()`, seconds since the epoch.
    pub now: u32,
    /// H's random bytes.
    pub salt: [u8; 4],
    /// A random number for [`EthType::Random`].
    pub random: u32,
}

impl Cipher {
    /// A cipher for a 128-bit key.
    pub fn new(key: &[u8; 16]) -> Self {
        let key = GenericArray::from_slice(key);
        Self {
            enc: Aes128Enc::new(key),
            dec: Aes128Dec::new(key),
        }
    }

    /// The length of `frame` sealed: the overhead plus its payload padded to 16.
    pub fn sealed_len(frame_len: usize) -> usize {
        OVERHEAD + (frame_len - 14).div_ceil(BLOCK) * BLOCK
    }

    /// Seals `frame` (at least 14 bytes) into `out` (at least
    /// [`Cipher::sealed_len`] bytes); returns the sealed length.
    pub fn seal(&self, frame: &[u8], ethtype: EthType, fresh: Fresh, out: &mut [u8]) -> usize {
        let payload = &frame[14..];
        let total = Self::sealed_len(frame.len());
        let pad = total - OVERHEAD - payload.len();
        let mut h = [0u8; BLOCK];
        h[0..2].copy_from_slice(&frame[12..14]);
        h[2] = pad as u8;
        h[4..8].copy_from_slice(TAG);
        h[8..12].copy_from_slice(&fresh.now.to_be_bytes());
        h[12..16].copy_from_slice(&fresh.salt);
        out[..12].copy_from_slice(&frame[..12]);
        out[12..14].copy_from_slice(&ethtype.outer([frame[12], frame[13]], fresh.random));
        let block = GenericArray::from_mut_slice(&mut out[14..OVERHEAD]);
        block.copy_from_slice(&h);
        self.enc.encrypt_block(block);
        let body = &mut out[OVERHEAD..total];
        body[..payload.len()].copy_from_slice(payload);
        body[payload.len()..].fill(0);
        let body_len = body.len();
        cbc::Encryptor::<Aes128Enc>::inner_iv_init(self.enc.clone(), &h.into())
            .encrypt_padded_mut::<NoPadding>(body, body_len)
            .expect("the body is a whole number of blocks");
        total
    }

    /// Opens a sealed frame into `out`; returns the frame's length, or `None` if it
    /// is not agno's, not with this key, outside the time window around `now`, or
    /// malformed. A frame longer than `out` is cut.
    pub fn open(&self, wire: &[u8], now: i64, out: &mut [u8]) -> Option<usize> {
        // The C plugin decrypts whatever it gets; a frame that is not a whole number
        // of blocks, or too short to hold H, is nothing it could have sent.
        let body_len = wire.len().checked_sub(OVERHEAD)?;
        if body_len % BLOCK != 0 || out.len() < 14 {
            return None;
        }
        let mut h = GenericArray::clone_from_slice(&wire[14..OVERHEAD]);
        self.dec.decrypt_block(&mut h);
        if &h[4..8] != TAG {
            return None;
        }
        let sent = u32::from_be_bytes([h[8], h[9], h[10], h[11]]) as i64;
        // Sent at most 2 s ago or 1 s ahead (upstream's `(now - sent + 1) & ~3`).
        if (now - sent + 1) & !3 != 0 {
            return None;
        }
        // The upper nibble of the pad count is ignored, as in C.
        let len = 14 + body_len.checked_sub((h[2] & 0xf) as usize)?;
        out[..12].copy_from_slice(&wire[..12]);
        out[12..14].copy_from_slice(&h[..2]);
        let cbc = cbc::Decryptor::<Aes128Dec>::inner_iv_init(self.dec.clone(), &h);
        if out.len() >= 14 + body_len {
            // Decrypt in place in the caller's buffer: all blocks in one call.
            let body = &mut out[14..14 + body_len];
            body.copy_from_slice(&wire[OVERHEAD..]);
            cbc.decrypt_padded_mut::<NoPadding>(body).ok()?;
        } else {
            // A short buffer: block by block, keeping what fits.
            let mut cbc = cbc;
            let mut at = 14;
            for chunk in wire[OVERHEAD..].chunks_exact(BLOCK) {
                if at >= len.min(out.len()) {
                    break;
                }
                let mut block = GenericArray::clone_from_slice(chunk);
                cbc.decrypt_block_mut(&mut block);
                let n = BLOCK.min(len - at).min(out.len() - at);
                out[at..at + n].copy_from_slice(&block[..n]);
                at += n;
            }
        }
        Some(len.min(out.len()))
    }
}

#[cfg(test)]
#[path = "cipher_tests.rs"]
mod tests;
