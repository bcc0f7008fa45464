//! Interface specifications: `[IFNAME:]URL`.

use std::io;

/// One interface of a stack, as given to [`super::Stack::with_interfaces`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfSpec {
    /// The tap's name inside the stack.
    pub name: String,
    /// A VNL (`vde:///tmp/sw`, `vxvde://239.1.2.3`, ...) or `=COMMAND ARGS`.
    pub url: String,
}

fn bad(msg: String) -> io::Error {
    crate::error::context(io::Error::from_raw_os_error(libc::EINVAL), msg)
}

/// Parses `[IFNAME:]URL`, the name defaulting to `vde<index>`. As in libioth, a name
/// is the text before a `:` that does not start `://`; a spec starting with `=` (a
/// coprocess) has no name prefix, but `NAME:=COMMAND` names one.
pub fn parse(spec: &str, index: usize) -> io::Result<IfSpec> {
    let (name, url) = match spec.find(':') {
        Some(p) if !spec.starts_with('=') && !spec[p..].starts_with("://") => {
            (&spec[..p], &spec[p + 1..])
        }
        _ => ("", spec),
    };
    let name = if name.is_empty() {
        format!("vde{index}")
    } else {
        name.to_string()
    };
    crate::nl::nlinline::check_ifname(&name).map_err(|_| {
        bad(format!(
            "bad interface name {name:?} in {spec:?}: 1 to 15 bytes, no '/', ':', NUL or blank"
        ))
    })?;
    if name.contains(':') {
        return Err(bad(format!("bad interface name {name:?}")));
    }
    if url.trim().is_empty() || url.trim() == "=" {
        return Err(bad(format!("interface {name}: no network URL in {spec:?}")));
    }
    Ok(IfSpec {
        name,
        url: url.to_string(),
    })
}

/// Parses a list of specs, refusing duplicate names.
pub fn parse_all(specs: &[&str]) -> io::Result<Vec<IfSpec>> {
    let mut out: Vec<IfSpec> = Vec::with_capacity(specs.len());
    for (i, s) in specs.iter().enumerate() {
        let spec = parse(s, i)?;
        if out.iter().any(|o| o.name == spec.name) {
            return Err(bad(format!("interface name {} given twice", spec.name)));
        }
        out.push(spec);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_urls() {
        let p = |s, i| parse(s, i).unwrap();
        assert_eq!(
            p("vde:///tmp/sw", 0),
            IfSpec {
                name: "vde0".into(),
                url: "vde:///tmp/sw".into()
            }
        );
        assert_eq!(p("eth1:vde:///tmp/sw", 3).name, "eth1");
        assert_eq!(p("eth1:vde:///tmp/sw", 3).url, "vde:///tmp/sw");
        assert_eq!(p("vxvde://239.1.2.3", 2).name, "vde2");
        assert_eq!(
            p("/tmp/sw", 1),
            IfSpec {
                name: "vde1".into(),
                url: "/tmp/sw".into()
            }
        );
        assert_eq!(
            p("=vde_plug vde:///tmp/sw", 0).url,
            "=vde_plug vde:///tmp/sw"
        );
        assert_eq!(p("=vde_plug vde:///tmp/sw", 0).name, "vde0");
        assert_eq!(p("x0:=vde_plug vde:///tmp/sw", 0).name, "x0");
        assert_eq!(
            p("x0:=vde_plug vde:///tmp/sw", 0).url,
            "=vde_plug vde:///tmp/sw"
        );
    }

    #[test]
    fn bad_specs() {
        let e = parse("abcdefghijklmnop:null://", 0).unwrap_err();
        assert!(e.to_string().contains("abcdefghijklmnop"), "{e}");
        assert_eq!(crate::error::errno_of(&e), libc::EINVAL);
        assert!(parse("a b:null://", 0).is_err());
        assert!(parse("vde0:", 0).is_err());
        assert!(parse("", 0).is_err());
        assert!(parse("=", 0).is_err());
        assert!(parse_all(&["a:null://", "a:null://"]).is_err());
        assert!(parse_all(&["null://", "vde0:null://"]).is_err());
        assert_eq!(parse_all(&["null://", "null://"]).unwrap()[1].name, "vde1");
    }
}
