//! VNL ("VDE network locator") parsing, with libvdeplug4's syntax.
//!
//! A VNL is `scheme://ARG` or a bare path (which means `vde://PATH`). Plugins read
//! options from ARG in one of two styles:
//!
//! * **path style** (`vde`, `hub`, `switch`): `PATH[opt/opt/...]`, the options between
//!   the first unquoted `[` and the last unquoted `]`;
//! * **URL style** (`vxvde`, `vxlan`): `ADDRESS/opt/opt...`.
//!
//! Options are `key=value` or a bare `key`. A given key matches the *first* tag of the
//! plugin's table that it is a prefix of (`vn=5` is `vni=5`); an element with an
//! empty key (`=x`) is skipped. Values may be quoted with `'...'` or `"..."`,
//! characters escaped with `\` (outside quotes; inside them a backslash is an
//! ordinary character), and bytes written as `%XX` (outside quotes), as
//! libvdeplug4's `strtokq_r` does.
//!
//! Wrapping plugins (`vlan://`, `agno://`) take a nested VNL in braces:
//! `scheme://[ARG][OPTIONS]{NESTED}` ([`nested`]).
//!
//! Everything here is pure: no I/O except [`resolve_default`], which reads the
//! `$HOME/.vdeplug/default` file the way libvdeplug4 does.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::path::Path;

pub mod nested;
pub use nested::{find_unquoted, rfind_unquoted, split_nested, Nested};

/// What was wrong with a VNL. Converts into an [`io::Error`] of kind `InvalidInput`
/// (or `Unsupported` for an unknown scheme) that keeps this value as its source.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// No plugin has this scheme.
    #[error("unknown VDE plug scheme `{0}://` (known: {known})", known = super::SCHEMES.join(", "))]
    UnknownScheme(String),
    /// An option key matches no tag of the plugin.
    #[error("{scheme}://: unknown option `{key}` (options: {known})")]
    UnknownOption {
        /// The plugin.
        scheme: &'static str,
        /// The key as given.
        key: String,
        /// The plugin's option names.
        known: String,
    },
    /// An option or address has a value the plugin cannot use.
    #[error("{scheme}://: bad {what} `{value}`: {why}")]
    BadValue {
        /// The plugin.
        scheme: &'static str,
        /// Which option or part of the URL.
        what: &'static str,
        /// The value as given.
        value: String,
        /// What is expected instead.
        why: String,
    },
    /// Quotes or brackets that do not close.
    #[error("malformed VNL `{vnl}`: {why}")]
    Syntax {
        /// The text being parsed.
        vnl: String,
        /// What is wrong with it.
        why: &'static str,
    },
}

impl From<UrlError> for io::Error {
    fn from(e: UrlError) -> io::Error {
        let kind = match e {
            UrlError::UnknownScheme(_) => io::ErrorKind::Unsupported,
            _ => io::ErrorKind::InvalidInput,
        };
        io::Error::new(kind, e)
    }
}

/// Shorthand for a [`UrlError::BadValue`].
pub(crate) fn bad_value(
    scheme: &'static str,
    what: &'static str,
    value: &str,
    why: impl Into<String>,
) -> UrlError {
    UrlError::BadValue {
        scheme,
        what,
        value: value.to_string(),
        why: why.into(),
    }
}

/// Splits a VNL into its scheme and argument. A VNL without `://` is a `vde` path.
pub fn split_scheme(vnl: &str) -> (&str, &str) {
    match vnl.find("://") {
        Some(i) => (&vnl[..i], &vnl[i + 3..]),
        None => ("vde", vnl),
    }
}

/// Applies libvdeplug4's defaults to a VNL without `://`: an empty VNL becomes
/// `$HOME/.vdeplug/default` (if it exists) or `$HOME/.vde2/default.switch`, and a path
/// naming a regular file is replaced by the first line of that file.
pub fn resolve_default(vnl: &str) -> io::Result<String> {
    if vnl.contains("://") {
        return Ok(vnl.to_string());
    }
    let mut vnl = vnl.to_string();
    if vnl.is_empty() {
        if let Some(home) = std::env::var_os("HOME") {
            let home = Path::new(&home);
            let dflt = home.join(".vdeplug/default");
            vnl = if std::fs::symlink_metadata(&dflt).is_ok() {
                dflt
            } else {
                home.join(".vde2/default.switch")
            }
            .to_string_lossy()
            .into_owned();
        }
    }
    match std::fs::metadata(&vnl) {
        Ok(m) if m.is_file() => {
            let text = std::fs::read_to_string(&vnl)?;
            Ok(text.lines().next().unwrap_or("").to_string())
        }
        _ => Ok(vnl),
    }
}

/// Options parsed from a VNL, keyed by the plugin's tag names.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Options {
    values: HashMap<&'static str, String>,
    /// The tags in the order they were last given (for synonyms: the last wins).
    order: Vec<&'static str>,
}

impl Options {
    /// The value of a tag, if it was given (a bare key has the value `""`).
    pub fn get(&self, tag: &str) -> Option<&str> {
        self.values.get(tag).map(String::as_str)
    }

    /// Whether a tag was given at all.
    pub fn has(&self, tag: &str) -> bool {
        self.values.contains_key(tag)
    }

    /// Parses a tag's value as a number (decimal, `0x` hex or `0` octal, with an
    /// optional k/m/g/t suffix like libvdeplug's `strtoullm`); `None` if not given.
    pub fn number(&self, scheme: &'static str, tag: &'static str) -> Result<Option<u64>, UrlError> {
        match self.get(tag) {
            None => Ok(None),
            Some(v) => parse_number(v)
                .map(Some)
                .ok_or_else(|| bad_value(scheme, tag, v, "expected a number")),
        }
    }

    /// [`Self::number`], refusing 0: `why` says what 0 would mean (a table that
    /// holds nothing, addresses forgotten as soon as learned, ...).
    pub fn nonzero(
        &self,
        scheme: &'static str,
        tag: &'static str,
        why: &str,
    ) -> Result<Option<u64>, UrlError> {
        match self.number(scheme, tag)? {
            Some(0) => Err(bad_value(scheme, tag, self.get(tag).unwrap_or(""), why)),
            n => Ok(n),
        }
    }

    /// The value of whichever of `tags` was given last: for tables with synonyms
    /// (`u` and `untag` set the same thing; as in C, the last one given wins).
    pub fn last_of(&self, tags: &[&str]) -> Option<&str> {
        let tag = self.order.iter().rev().find(|t| tags.contains(t))?;
        self.get(tag)
    }

    fn insert(&mut self, tag: &'static str, value: String) {
        self.values.insert(tag, value);
        self.order.retain(|t| *t != tag);
        self.order.push(tag);
    }
}

/// Parses an unsigned number like C's `strtoull(s, NULL, 0)` followed by an optional
/// binary-magnitude suffix (`k`, `m`, `g`, `t`, either case). Whole-string only.
pub fn parse_number(s: &str) -> Option<u64> {
    let s = s.trim();
    let (digits, shift) = match s.chars().last()? {
        'k' | 'K' => (&s[..s.len() - 1], 10),
        'm' | 'M' => (&s[..s.len() - 1], 20),
        'g' | 'G' => (&s[..s.len() - 1], 30),
        't' | 'T' => (&s[..s.len() - 1], 40),
        _ => (s, 0),
    };
    let n = if let Some(hex) = digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        u64::from_str_radix(hex, 16).ok()?
    } else if digits.len() > 1 && digits.starts_with('0') {
        u64::from_str_radix(&digits[1..], 8).ok()?
    } else {
        digits.parse().ok()?
    };
    n.checked_mul(1u64 << shift)
}

/// One character of the input, remembering whether it was quoted or escaped (and so
/// is never a separator).
#[derive(Clone, Copy)]
struct Ch {
    c: char,
    literal: bool,
}

/// Which quoting rules [`lex`] follows.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Quoting {
    /// libvdeplug4's `strtokq_r` (VNLs): a backslash escapes only outside quotes
    /// (inside them it is an ordinary character), and `%XX` is decoded only outside
    /// quotes.
    Vnl,
    /// Command lines (`cmd://`, `=COMMAND`): a backslash escapes everywhere.
    Command,
}

/// Tokenizes: strips quotes and backslashes, decodes `%XX`, and marks which characters
/// were literal.
fn lex(s: &str, rules: Quoting) -> Result<Vec<Ch>, UrlError> {
    let mut out = Vec::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (q, '\\') if q.is_none() || rules == Quoting::Command => match chars.next() {
                Some(n) => out.push(Ch {
                    c: n,
                    literal: true,
                }),
                None => {
                    return Err(UrlError::Syntax {
                        vnl: s.to_string(),
                        why: "trailing backslash",
                    })
                }
            },
            (q, '%') if q.is_none() || rules == Quoting::Command => {
                let mut ahead = chars.clone();
                let hi = ahead.next().and_then(|h| h.to_digit(16));
                let lo = ahead.next().and_then(|l| l.to_digit(16));
                match (hi, lo) {
                    (Some(h), Some(l)) => {
                        chars = ahead;
                        let byte = (h * 16 + l) as u8;
                        out.push(Ch {
                            c: char::from(byte),
                            literal: true,
                        });
                    }
                    _ => out.push(Ch {
                        c: '%',
                        literal: quote.is_some(),
                    }),
                }
            }
            (q, c) => out.push(Ch {
                c,
                literal: q.is_some(),
            }),
        }
    }
    if quote.is_some() {
        return Err(UrlError::Syntax {
            vnl: s.to_string(),
            why: "unterminated quote",
        });
    }
    Ok(out)
}

fn text(chs: &[Ch]) -> String {
    chs.iter().map(|c| c.c).collect()
}

fn split_on(chs: &[Ch], sep: char) -> Vec<&[Ch]> {
    chs.split(|c| c.c == sep && !c.literal).collect()
}

/// Finds the tag a key stands for: the first tag the key is a prefix of.
fn match_tag(key: &str, tags: &[&'static str]) -> Option<&'static str> {
    tags.iter()
        .copied()
        .find(|t| !t.is_empty() && t.starts_with(key) && !key.is_empty())
}

/// Stores one option element into `opts`, following libvdeplug4's rules.
fn store(
    scheme: &'static str,
    elem: &[Ch],
    tags: &[&'static str],
    opts: &mut Options,
) -> Result<(), UrlError> {
    if elem.is_empty() {
        return Ok(());
    }
    let eq = elem.iter().position(|c| c.c == '=' && !c.literal);
    let (key, value) = match eq {
        Some(i) => (text(&elem[..i]), text(&elem[i + 1..])),
        None => (text(elem), String::new()),
    };
    // libvdeplug4 skips an element with an empty key (`=x`, `=`).
    if key.is_empty() {
        return Ok(());
    }
    match match_tag(&key, tags) {
        Some(tag) => opts.insert(tag, value),
        // A bare word that is no tag goes to the unnamed tag `""`, if the plugin has
        // one: this is how `vde:///tmp/sw[3]` selects port 3.
        None if eq.is_none() && tags.first() == Some(&"") => opts.insert("", key),
        None => {
            return Err(UrlError::UnknownOption {
                scheme,
                key,
                known: tags
                    .iter()
                    .filter(|t| !t.is_empty())
                    .copied()
                    .collect::<Vec<_>>()
                    .join(", "),
            })
        }
    }
    Ok(())
}

/// Parses a path-style argument `PATH[opt/opt...]`. Returns the path (quotes and
/// escapes removed) and the options.
pub fn parse_path_style(
    scheme: &'static str,
    arg: &str,
    tags: &[&'static str],
) -> Result<(String, Options), UrlError> {
    let chs = lex(arg, Quoting::Vnl)?;
    let mut opts = Options::default();
    let open = chs.iter().position(|c| c.c == '[' && !c.literal);
    let Some(open) = open else {
        return Ok((text(&chs), opts));
    };
    let close = chs.iter().rposition(|c| c.c == ']' && !c.literal);
    let close = match close {
        Some(c) if c > open => c,
        _ => {
            return Err(UrlError::Syntax {
                vnl: arg.to_string(),
                why: "`[` without a closing `]`",
            })
        }
    };
    for elem in split_on(&chs[open + 1..close], '/') {
        store(scheme, elem, tags, &mut opts)?;
    }
    Ok((text(&chs[..open]), opts))
}

/// Parses a URL-style argument `ADDRESS/opt/opt...`. Returns the address and options.
pub fn parse_url_style(
    scheme: &'static str,
    arg: &str,
    tags: &[&'static str],
) -> Result<(String, Options), UrlError> {
    let chs = lex(arg, Quoting::Vnl)?;
    let mut opts = Options::default();
    let mut parts = split_on(&chs, '/').into_iter();
    let addr = parts.next().map(text).unwrap_or_default();
    for elem in parts {
        store(scheme, elem, tags, &mut opts)?;
    }
    Ok((addr, opts))
}

/// Splits a command line into words like libexecs' `s2argv`: blanks separate words,
/// quotes and backslashes group and escape. Used by `cmd://`.
pub fn split_command(cmd: &str) -> Result<Vec<String>, UrlError> {
    let chs = lex(cmd, Quoting::Command)?;
    let mut words = Vec::new();
    let mut cur: Option<String> = None;
    for ch in chs {
        if ch.c.is_whitespace() && !ch.literal {
            words.extend(cur.take());
        } else {
            cur.get_or_insert_with(String::new).push(ch.c);
        }
    }
    words.extend(cur);
    // An empty quoted word ('') still counts as a word in s2argv; `lex` drops the
    // quotes, so it is lost here; no real command line needs one.
    Ok(words)
}

/// Splits a sequence of commands like libexecs' `s2multiargv` (what
/// `vde_stackcmd` uses): [`split_command`]'s words, and a new command at every
/// unquoted `;`. Empty commands (`a;;b`, a trailing `;`) are skipped.
pub fn split_commands(cmds: &str) -> Result<Vec<Vec<String>>, UrlError> {
    let chs = lex(cmds, Quoting::Command)?;
    let mut all = Vec::new();
    let mut words: Vec<String> = Vec::new();
    let mut cur: Option<String> = None;
    for ch in chs {
        if ch.c == ';' && !ch.literal {
            words.extend(cur.take());
            if !words.is_empty() {
                all.push(std::mem::take(&mut words));
            }
        } else if ch.c.is_whitespace() && !ch.literal {
            words.extend(cur.take());
        } else {
            cur.get_or_insert_with(String::new).push(ch.c);
        }
    }
    words.extend(cur);
    if !words.is_empty() {
        all.push(words);
    }
    Ok(all)
}

impl fmt::Display for Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut keys: Vec<_> = self.values.iter().collect();
        keys.sort();
        for (i, (k, v)) in keys.iter().enumerate() {
            if i > 0 {
                f.write_str("/")?;
            }
            write!(f, "{k}={v}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VDE_TAGS: &[&str] = &["", "port", "portgroup", "group", "mode"];
    use crate::vde::vxvde::TAGS as VXVDE_TAGS;

    #[test]
    fn command_sequences() {
        let v = |s: &str| split_commands(s).unwrap();
        assert_eq!(
            v("/bin/true; /bin/false;/bin/x a"),
            vec![
                vec!["/bin/true".to_string()],
                vec!["/bin/false".into()],
                vec!["/bin/x".into(), "a".into()]
            ]
        );
        assert_eq!(
            v("/bin/sh -c 'exit 3; echo'"),
            vec![vec![
                "/bin/sh".to_string(),
                "-c".into(),
                "exit 3; echo".into()
            ]]
        );
        assert_eq!(v("a\\;b"), vec![vec!["a;b".to_string()]]);
        assert_eq!(v(" ; ;"), Vec::<Vec<String>>::new());
        assert!(split_commands("'open").is_err());
    }

    #[test]
    fn scheme_split() {
        assert_eq!(split_scheme("vxvde://239.0.0.1"), ("vxvde", "239.0.0.1"));
        assert_eq!(split_scheme("/tmp/sw"), ("vde", "/tmp/sw"));
        assert_eq!(split_scheme("vde://"), ("vde", ""));
        assert_eq!(split_scheme(""), ("vde", ""));
        assert_eq!(split_scheme("null://"), ("null", ""));
    }

    // Examples from the vdeplug4 man pages (libvdeplug_vde.1, _vxvde.1, _hub.1, ...).
    #[test]
    fn man_page_vde_examples() {
        let (p, o) = parse_path_style("vde", "/tmp/myswitch", VDE_TAGS).unwrap();
        assert_eq!(p, "/tmp/myswitch");
        assert_eq!(o, Options::default());

        let (p, o) = parse_path_style("vde", "/tmp/myswitch[10]", VDE_TAGS).unwrap();
        assert_eq!(p, "/tmp/myswitch");
        assert_eq!(o.get(""), Some("10"));

        let (p, o) = parse_path_style("vde", "/tmp/vde.ctl[port=10]", VDE_TAGS).unwrap();
        assert_eq!(p, "/tmp/vde.ctl");
        assert_eq!(o.get("port"), Some("10"));

        let (_, o) = parse_path_style("vde", "[privatelan]", VDE_TAGS).unwrap();
        assert_eq!(o.get(""), Some("privatelan"));

        let (p, o) = parse_path_style("vde", "/tmp/sw[port=4/mode=0770]", VDE_TAGS).unwrap();
        assert_eq!(p, "/tmp/sw");
        assert_eq!(o.get("port"), Some("4"));
        assert_eq!(o.get("mode"), Some("0770"));

        let (p, o) = parse_path_style("vde", "", VDE_TAGS).unwrap();
        assert_eq!(p, "");
        assert!(!o.has("port"));
    }

    #[test]
    fn man_page_vxvde_examples() {
        let (a, o) = parse_url_style("vxvde", "", VXVDE_TAGS).unwrap();
        assert_eq!(a, "");
        assert_eq!(o, Options::default());

        let (a, o) = parse_url_style("vxvde", "239.1.2.3", VXVDE_TAGS).unwrap();
        assert_eq!(a, "239.1.2.3");
        assert_eq!(o, Options::default());

        let (a, o) =
            parse_url_style("vxvde", "239.0.0.1/port=14789/vni=1/ttl=2", VXVDE_TAGS).unwrap();
        assert_eq!(a, "239.0.0.1");
        assert_eq!(o.get("port"), Some("14789"));
        assert_eq!(o.get("vni"), Some("1"));
        assert_eq!(o.get("ttl"), Some("2"));

        let (a, o) = parse_url_style("vxvde", "ff15::3/if=eth0", VXVDE_TAGS).unwrap();
        assert_eq!(a, "ff15::3");
        assert_eq!(o.get("if"), Some("eth0"));

        let (a, o) = parse_url_style("vxvde", "/grp=vxvdegrp", VXVDE_TAGS).unwrap();
        assert_eq!(a, "");
        assert_eq!(o.get("grp"), Some("vxvdegrp"));

        let (_, o) = parse_url_style("vxvde", "/v6", VXVDE_TAGS).unwrap();
        assert!(o.has("v6"));
    }

    #[test]
    fn prefix_matching_takes_the_first_tag() {
        // `p` is a prefix of both `port` and `portgroup`: the first tag wins.
        let (_, o) = parse_path_style("vde", "/x[p=3]", VDE_TAGS).unwrap();
        assert_eq!(o.get("port"), Some("3"));
        let (_, o) = parse_path_style("vde", "/x[portg=lan]", VDE_TAGS).unwrap();
        assert_eq!(o.get("portgroup"), Some("lan"));
        let (_, o) = parse_url_style("vxvde", "/vn=12/exp=30", VXVDE_TAGS).unwrap();
        assert_eq!(o.get("vni"), Some("12"));
        assert_eq!(o.get("expiretime"), Some("30"));
    }

    #[test]
    fn unknown_option_names_the_key() {
        let e = parse_url_style("vxvde", "/colour=blue", VXVDE_TAGS).unwrap_err();
        assert!(matches!(&e, UrlError::UnknownOption { key, .. } if key == "colour"));
        let msg = e.to_string();
        assert!(msg.contains("colour") && msg.contains("vxvde"), "{msg}");
        // Path style with key=value that matches nothing is an error even with "".
        assert!(parse_path_style("vde", "/x[colour=blue]", VDE_TAGS).is_err());
    }

    #[test]
    fn quoting_escapes_and_percent() {
        let (p, o) = parse_path_style("vde", "'/tmp/a[b]'[port=2]", VDE_TAGS).unwrap();
        assert_eq!(p, "/tmp/a[b]");
        assert_eq!(o.get("port"), Some("2"));
        let (p, _) = parse_path_style("vde", "/tmp/a\\[b", VDE_TAGS).unwrap();
        assert_eq!(p, "/tmp/a[b");
        let (a, o) = parse_url_style("vxvde", "239.0.0.1/if=\"e/0\"", VXVDE_TAGS).unwrap();
        assert_eq!(a, "239.0.0.1");
        assert_eq!(o.get("if"), Some("e/0"));
        let (a, o) = parse_url_style("vxvde", "239.0.0.1/if=e%2f0", VXVDE_TAGS).unwrap();
        assert_eq!(a, "239.0.0.1");
        assert_eq!(o.get("if"), Some("e/0"));
        // An invalid %XX stays as it is.
        let (a, _) = parse_url_style("vxvde", "a%zz", VXVDE_TAGS).unwrap();
        assert_eq!(a, "a%zz");
        // As strtokq_r: %XX and backslashes are plain text inside quotes.
        let (a, o) = parse_url_style("vxvde", "'a%2f'/if='e\\0'", VXVDE_TAGS).unwrap();
        assert_eq!(a, "a%2f");
        assert_eq!(o.get("if"), Some("e\\0"));
        let (a, _) = parse_url_style("vxvde", "a%2F%41", VXVDE_TAGS).unwrap();
        assert_eq!(a, "a/A");
        let (a, _) = parse_url_style("vxvde", "%%41", VXVDE_TAGS).unwrap();
        assert_eq!(a, "%A");
        // An element with an empty key is skipped, as libvdeplug4 skips it.
        let (_, o) = parse_url_style("vxvde", "x/=5/port=7/=", VXVDE_TAGS).unwrap();
        assert_eq!(o.get("port"), Some("7"));
        // Command lines keep their own rules: a backslash escapes inside quotes.
        assert_eq!(split_command("'a\\'b'").unwrap(), vec!["a'b"]);
    }

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        assert!(parse_path_style("vde", "/tmp/sw[port=3", VDE_TAGS).is_err());
        assert!(parse_path_style("vde", "/tmp/sw]x[", VDE_TAGS).is_err());
        assert!(parse_url_style("vxvde", "'239.0.0.1", VXVDE_TAGS).is_err());
        assert!(parse_url_style("vxvde", "a\\", VXVDE_TAGS).is_err());
        assert!(parse_url_style("vxvde", "%", VXVDE_TAGS).is_ok());
        assert!(parse_url_style("vxvde", "%é", VXVDE_TAGS).is_ok());
    }

    #[test]
    fn numbers_like_strtoullm() {
        assert_eq!(parse_number("10"), Some(10));
        assert_eq!(parse_number("0x10"), Some(16));
        assert_eq!(parse_number("010"), Some(8));
        assert_eq!(parse_number("0"), Some(0));
        assert_eq!(parse_number("4k"), Some(4096));
        assert_eq!(parse_number("2M"), Some(2 << 20));
        assert_eq!(parse_number("1g"), Some(1 << 30));
        assert_eq!(parse_number("x"), None);
        assert_eq!(parse_number(""), None);
        assert_eq!(parse_number("99999999999999999999t"), None);
    }

    #[test]
    fn command_words() {
        assert_eq!(
            split_command("vde_plug  vde:///tmp/sw").unwrap(),
            vec!["vde_plug", "vde:///tmp/sw"]
        );
        assert_eq!(
            split_command("sh -c 'echo a b'").unwrap(),
            vec!["sh", "-c", "echo a b"]
        );
        assert_eq!(split_command("a\\ b c").unwrap(), vec!["a b", "c"]);
        assert!(split_command("").unwrap().is_empty());
    }

    #[test]
    fn default_file_is_read() {
        let dir = std::env::temp_dir().join(format!("vdestack-url-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("net");
        std::fs::write(&f, "vxvde://239.2.2.2\nignored\n").unwrap();
        assert_eq!(
            resolve_default(f.to_str().unwrap()).unwrap(),
            "vxvde://239.2.2.2"
        );
        assert_eq!(resolve_default("null://").unwrap(), "null://");
        assert_eq!(resolve_default("/no/such/sw").unwrap(), "/no/such/sw");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
