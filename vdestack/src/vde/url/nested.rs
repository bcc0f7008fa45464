//! Nested VNLs: `scheme://[ARG][OPTIONS]{NESTED VNL}`, as libvdeplug4's
//! `vde_parsenestparms` splits them (the wrapping plugins `vlan://`, `agno://`).
//!
//! The nested VNL is the text between the first unquoted `{` and the last unquoted
//! `}`. It is handed down *as written*: quotes and escapes in it belong to the
//! nested plugin, which unquotes its own part when it parses it, so nesting works to
//! any depth (`vlan://4{vlan://5/qinq{vxvde://234.1.2.3}}`). "Unquoted" follows
//! `strtokq_r`: inside `'...'` or `"..."` nothing is special (not even a
//! backslash), outside them a backslash protects the next character.
//!
//! Where this differs from the C parser, on purpose:
//! * the C code shifts the end of the outer text one byte to the left for each
//!   quoted or escaped `{` before the real one (it counts them as removed; they are
//!   not), cutting the last characters of a key file's name: here the outer text is
//!   exactly what precedes the `{`;
//! * text after the last `}` is dropped silently by the C code; here it is an
//!   error, as it is almost certainly a mistake (`{vde:///tmp/sw}x`).
//!
//! As in C, a `{` without a `}` takes the rest of the text as the nested VNL, and a
//! VNL without `{` has no nested VNL (the wrapper then opens the default switch).

use super::UrlError;

/// Where a character stands, for the scanners below.
#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Plain,
    Single,
    Double,
    Escaped,
}

/// Calls `f(byte index, char)` for every character of `s` that is neither quoted
/// nor escaped (quote characters and backslashes themselves excluded).
fn for_each_unquoted(s: &str, mut f: impl FnMut(usize, char)) {
    let mut state = State::Plain;
    for (i, c) in s.char_indices() {
        state = match (state, c) {
            (State::Plain, '\'') => State::Single,
            (State::Plain, '"') => State::Double,
            (State::Plain, '\\') => State::Escaped,
            (State::Plain, c) => {
                f(i, c);
                State::Plain
            }
            (State::Single, '\'') | (State::Double, '"') | (State::Escaped, _) => State::Plain,
            (s, _) => s,
        };
    }
}

/// The byte index of the first unquoted, unescaped `target` in `s`.
pub fn find_unquoted(s: &str, target: char) -> Option<usize> {
    let mut found = None;
    for_each_unquoted(s, |i, c| {
        if c == target && found.is_none() {
            found = Some(i);
        }
    });
    found
}

/// The byte index of the last unquoted, unescaped `target` in `s`.
pub fn rfind_unquoted(s: &str, target: char) -> Option<usize> {
    let mut found = None;
    for_each_unquoted(s, |i, c| {
        if c == target {
            found = Some(i);
        }
    });
    found
}

/// A wrapping plugin's argument, split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Nested<'a> {
    /// The wrapper's own part (`[ARG][OPTIONS]`), still quoted: parse it with
    /// [`super::parse_path_style`] or [`super::parse_url_style`].
    pub outer: &'a str,
    /// The nested VNL as written (`None`: there was no `{`; open the default
    /// switch, as `vde_open(NULL)` does).
    pub inner: Option<&'a str>,
}

impl Nested<'_> {
    /// The VNL to open for the nested plug (`""`, the default switch, when none
    /// was given).
    pub fn inner_vnl(&self) -> &str {
        self.inner.unwrap_or("")
    }
}

/// Splits `ARG[OPTIONS]{NESTED}` (the text after `scheme://`). `scheme` names the
/// wrapper in errors.
pub fn split_nested<'a>(scheme: &'static str, arg: &'a str) -> Result<Nested<'a>, UrlError> {
    let Some(open) = find_unquoted(arg, '{') else {
        return Ok(Nested {
            outer: arg,
            inner: None,
        });
    };
    let rest = &arg[open + 1..];
    let inner = match rfind_unquoted(rest, '}') {
        Some(close) => {
            let after = &rest[close + 1..];
            if !after.is_empty() {
                return Err(UrlError::BadValue {
                    scheme,
                    what: "nested VNL",
                    value: arg.to_string(),
                    why: format!("text `{after}` after the closing `}}`"),
                });
            }
            &rest[..close]
        }
        None => rest,
    };
    Ok(Nested {
        outer: &arg[..open],
        inner: Some(inner),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(s: &str) -> (&str, Option<&str>) {
        let n = split_nested("t", s).unwrap();
        (n.outer, n.inner)
    }

    #[test]
    fn man_page_forms() {
        assert_eq!(split("3{tap://mytap}"), ("3", Some("tap://mytap")));
        assert_eq!(
            split("3/untag=4/trunk/tag=10:11-12:12-11{vde:///tmp/myswitch}"),
            (
                "3/untag=4/trunk/tag=10:11-12:12-11",
                Some("vde:///tmp/myswitch")
            )
        );
        assert_eq!(
            split("{vde:///tmp/myswitch}"),
            ("", Some("vde:///tmp/myswitch"))
        );
        assert_eq!(
            split("/tmp/my_keyfile[ethtype=copy]{vde:///tmp/myswitch}"),
            ("/tmp/my_keyfile[ethtype=copy]", Some("vde:///tmp/myswitch"))
        );
    }

    #[test]
    fn nesting_to_any_depth_keeps_the_inner_text_as_written() {
        let (o, i) = split("4{vlan://5/qinq{agno://'/k e y'{vxvde://234.1.2.3}}}");
        assert_eq!(o, "4");
        assert_eq!(i, Some("vlan://5/qinq{agno://'/k e y'{vxvde://234.1.2.3}}"));
        let (o, i) = split(i.unwrap().split_once("://").unwrap().1);
        assert_eq!(o, "5/qinq");
        assert_eq!(i, Some("agno://'/k e y'{vxvde://234.1.2.3}"));
        let (o, i) = split(i.unwrap().split_once("://").unwrap().1);
        assert_eq!(o, "'/k e y'");
        assert_eq!(i, Some("vxvde://234.1.2.3"));
    }

    #[test]
    fn quoted_and_escaped_braces_are_text() {
        assert_eq!(split("'/a{b'{null://}"), ("'/a{b'", Some("null://")));
        assert_eq!(split("\"/a{b\"{null://}"), ("\"/a{b\"", Some("null://")));
        assert_eq!(split("/a\\{b{null://}"), ("/a\\{b", Some("null://")));
        // The last unquoted `}` closes; a quoted one inside stays.
        assert_eq!(split("{vde:///tmp/'s}w'}"), ("", Some("vde:///tmp/'s}w'")));
        // A backslash inside single quotes is an ordinary character (strtokq_r).
        assert_eq!(split("'a\\'{null://}"), ("'a\\'", Some("null://")));
    }

    #[test]
    fn missing_parts() {
        assert_eq!(split(""), ("", None));
        assert_eq!(split("3"), ("3", None));
        // `{` without `}`: the rest, as in C.
        assert_eq!(split("3{null://"), ("3", Some("null://")));
        assert_eq!(split("3{}"), ("3", Some("")));
        assert_eq!(split_nested("t", "3{}").unwrap().inner_vnl(), "");
        assert_eq!(split_nested("t", "3").unwrap().inner_vnl(), "");
    }

    #[test]
    fn text_after_the_closing_brace_is_an_error() {
        let e = split_nested("vlan", "3{null://}x").unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("vlan") && msg.contains("`x`"), "{msg}");
    }

    #[test]
    fn unquoted_search() {
        assert_eq!(find_unquoted("a'['[", '['), Some(4));
        assert_eq!(rfind_unquoted("]a']'", ']'), Some(0));
        assert_eq!(find_unquoted("é{", '{'), Some(2));
        assert_eq!(find_unquoted("\\", '{'), None);
        assert_eq!(find_unquoted("'{", '{'), None);
    }
}
