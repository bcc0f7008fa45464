use super::*;

const NOW: u32 = 1_700_000_000;

fn frame(payload_len: usize) -> Vec<u8> {
    let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
    f.extend((0..payload_len).map(|i| (i * 7) as u8));
    f
}

fn fresh() -> Fresh {
    Fresh {
        now: NOW,
        salt: [1, 2, 3, 4],
        random: 0,
    }
}

fn key() -> [u8; 16] {
    std::array::from_fn(|i| i as u8)
}

fn seal(c: &Cipher, f: &[u8], t: EthType) -> Vec<u8> {
    let mut out = vec![0u8; Cipher::sealed_len(f.len())];
    let n = c.seal(f, t, fresh(), &mut out);
    out.truncate(n);
    out
}

fn open(c: &Cipher, w: &[u8], now: u32) -> Option<Vec<u8>> {
    let mut out = vec![0u8; 9234];
    c.open(w, now as i64, &mut out).map(|n| out[..n].to_vec())
}

/// The same frame sealed by an independent AES (Python's `cryptography`, ECB for H
/// and CBC with IV = H for the zero-padded payload): the layout of the C plugin.
#[test]
fn sealed_bytes_match_an_independent_implementation() {
    let want = "020000000002020000000001a6de5059d1d3dce5085a8e606fec39081b12757c4b16bc2053f0\
                d64cc6d6d26c9e38d0124e8d5dbb2b00d20e7d1669928c73e31e131a29b21a5661c7ffa850d0\
                ea220380a7847d62066ed66bab436c3f4791";
    let got = seal(
        &Cipher::new(&key()),
        &frame(50),
        EthType::Fixed(DEFAULT_ETHTYPE),
    );
    let hex: String = got.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(hex, want);
}

#[test]
fn a_64_byte_frame_becomes_94_bytes_and_opens_again() {
    let c = Cipher::new(&key());
    for len in [14, 15, 29, 30, 64, 1514, 9234] {
        let f = frame(len - 14);
        let w = seal(&c, &f, EthType::Fixed(DEFAULT_ETHTYPE));
        assert_eq!(w.len(), 30 + (len - 14).div_ceil(16) * 16);
        assert_eq!(open(&c, &w, NOW).as_deref(), Some(&f[..]), "len {len}");
    }
    assert_eq!(Cipher::sealed_len(64), 94);
}

#[test]
fn outer_types() {
    let c = Cipher::new(&key());
    let f = frame(10);
    assert_eq!(&seal(&c, &f, EthType::Copy)[12..14], &[0x08, 0x00]);
    assert_eq!(&seal(&c, &f, EthType::Fixed(0x86dd))[12..14], &[0x86, 0xdd]);
    for random in [0, 1, 0xf9fe, 0xf9ff, u32::MAX] {
        let mut out = vec![0u8; 64];
        let mut fr = fresh();
        fr.random = random;
        c.seal(&f, EthType::Random, fr, &mut out);
        let t = u16::from_be_bytes([out[12], out[13]]);
        assert!((0x600..=0xfffe).contains(&t), "{t:#x}");
    }
    // The receiver never looks at the outer type.
    let mut w = seal(&c, &f, EthType::Copy);
    w[12] ^= 0xff;
    assert_eq!(open(&c, &w, NOW).as_deref(), Some(&f[..]));
}

#[test]
fn the_time_window_is_two_seconds_back_one_ahead() {
    let c = Cipher::new(&key());
    let f = frame(20);
    let w = seal(&c, &f, EthType::Copy);
    for now in [NOW - 1, NOW, NOW + 1, NOW + 2] {
        assert!(open(&c, &w, now).is_some(), "sent {NOW}, now {now}");
    }
    for now in [NOW - 2, NOW + 3, 0, u32::MAX] {
        assert!(open(&c, &w, now).is_none(), "sent {NOW}, now {now}");
    }
}

#[test]
fn wrong_keys_plain_frames_and_garbage_are_never_delivered() {
    let c = Cipher::new(&key());
    let f = frame(100);
    let w = seal(&c, &f, EthType::Copy);
    let mut other = key();
    other[15] ^= 1;
    assert!(open(&Cipher::new(&other), &w, NOW).is_none());
    assert!(open(&c, &f, NOW).is_none(), "a plain frame");
    for len in [0, 13, 14, 29, 31, 45] {
        assert!(open(&c, &w[..len.min(w.len())], NOW).is_none(), "len {len}");
    }
    // A frame cut short of a block is not agno's either.
    assert!(open(&c, &w[..w.len() - 1], NOW).is_none());
}

#[test]
fn a_short_buffer_gets_the_start_of_the_frame() {
    let c = Cipher::new(&key());
    let f = frame(100);
    let w = seal(&c, &f, EthType::Copy);
    let mut out = [0u8; 40];
    assert_eq!(c.open(&w, NOW as i64, &mut out), Some(40));
    assert_eq!(&out[..], &f[..40]);
    assert_eq!(c.open(&w, NOW as i64, &mut out[..13]), None);
}

#[test]
fn key_files_read_as_the_c_plugin_reads_them() {
    assert_eq!(
        parse_key(b"000102030405060708090a0b0c0d0e0f\n"),
        Some(key())
    );
    // Anything not hex is skipped; only 32 digits count.
    assert_eq!(
        parse_key(b"00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f ff ff"),
        Some(key())
    );
    // Lowercase and B-F uppercase are right; uppercase A is read as 1 (C's bug).
    assert_eq!(&parse_key(b"aBcDeF").unwrap()[..3], &[0xab, 0xcd, 0xef]);
    assert_eq!(parse_key(b"A0").unwrap()[0], 0x10);
    assert_eq!(parse_key(b"a0").unwrap()[0], 0xa0);
    // An odd count leaves the low nibble zero; the rest of the key is zero.
    assert_eq!(&parse_key(b"123").unwrap()[..3], &[0x12, 0x30, 0]);
    assert_eq!(parse_key(b"1"), None);
    assert_eq!(parse_key(b"xyz: q\n"), None);
}

#[test]
fn ethtype_option_like_the_c_plugin() {
    assert_eq!(EthType::parse(""), Some(EthType::Fixed(0xa6de)));
    assert_eq!(EthType::parse("0"), Some(EthType::Fixed(0xa6de)));
    assert_eq!(EthType::parse("copy"), Some(EthType::Copy));
    assert_eq!(EthType::parse("ipv4"), Some(EthType::Fixed(0x800)));
    assert_eq!(EthType::parse("ipv6"), Some(EthType::Fixed(0x86dd)));
    assert_eq!(EthType::parse("rand"), Some(EthType::Random));
    assert_eq!(EthType::parse("0x600"), Some(EthType::Fixed(0x600)));
    assert_eq!(EthType::parse("0xfffe"), Some(EthType::Fixed(0xfffe)));
    assert_eq!(EthType::parse("2048"), Some(EthType::Fixed(0x800)));
    for bad in ["COPY", "0xffff", "0x5ff", "86dd", "-1", "ipv4x"] {
        assert_eq!(EthType::parse(bad), None, "{bad}");
    }
}
