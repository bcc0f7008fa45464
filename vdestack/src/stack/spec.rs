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
/// coprocess) has no name prefix, but `NAME:=COMMAND` names one. (So `eth0:////` is
/// the URL `eth0://` + `//`: a caller that has the name apart uses [`IfSpec::new`].)
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
    IfSpec::new(&name, url)
        .map_err(|e| crate::error::context(e, format!("interface spec {spec:?}")))
}

impl IfSpec {
    /// Interface `name` on `url`, both taken as given: nothing is split off the URL,
    /// which may be any VNL (`////` is a `vde://` path, as for libvdeplug) or
    /// `=COMMAND ARGS`.
    pub fn new(name: &str, url: &str) -> io::Result<Self> {
        crate::nl::nlinline::check_ifname(name).map_err(|_| {
            bad(format!(
                "bad interface name {name:?}: 1 to 15 bytes, no '/', ':', NUL or blank"
            ))
        })?;
        if name.contains(':') {
            return Err(bad(format!("bad interface name {name:?}")));
        }
        if url.trim().is_empty() || url.trim() == "=" {
            return Err(bad(format!("interface {name}: no network URL")));
        }
        Ok(IfSpec {
            name: name.to_string(),
            url: url.to_string(),
        })
    }
}

/// Parses a list of specs, refusing duplicate names.
pub fn parse_all(specs: &[&str]) -> io::Result<Vec<IfSpec>> {
    let specs = specs
        .iter()
        .enumerate()
        .map(|(i, s)| parse(s, i))
        .collect::<io::Result<Vec<_>>>()?;
    check_unique(&specs)?;
    Ok(specs)
}

/// Refuses two interfaces of one name.
pub fn check_unique(specs: &[IfSpec]) -> io::Result<()> {
    for (i, s) in specs.iter().enumerate() {
        if specs[..i].iter().any(|o| o.name == s.name) {
            return Err(bad(format!("interface name {} given twice", s.name)));
        }
    }
    Ok(())
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

    #[test]
    fn a_name_given_apart_leaves_the_url_whole() {
        // In one string, `vde0:////` reads as the scheme `vde0`; apart, `////` is
        // the vde:// path it is for libvdeplug.
        assert_eq!(parse("vde0:////", 0).unwrap().url, "vde0:////");
        let s = IfSpec::new("vde0", "////").unwrap();
        assert_eq!((s.name.as_str(), s.url.as_str()), ("vde0", "////"));
        assert_eq!(IfSpec::new("x0", "=cmd a:b").unwrap().url, "=cmd a:b");
        assert!(IfSpec::new("a:b", "null://").is_err());
        assert!(IfSpec::new("", "null://").is_err());
        assert!(IfSpec::new("vde0", " ").is_err());
        let two = [
            IfSpec::new("a", "null://").unwrap(),
            IfSpec::new("a", "null://").unwrap(),
        ];
        assert!(check_unique(&two).is_err());
    }
}
