//! [`StackBuilder`]: how a [`Stack`] is made: its interfaces, its options, its
//! backend.

use std::io;

use super::spec::{self, IfSpec};
use super::{Backend, Inner, Stack};

/// Makes a [`Stack`]: `Stack::builder()`, then interfaces and options, then
/// [`StackBuilder::build`].
///
/// ```no_run
/// use vdestack::stack::{Backend, IfSpec, Stack};
/// let stack = Stack::builder()
///     .interface("vde0", "vxvde://239.1.2.3")       // a name and a URL
///     .spec_str("eth1:inproc://lan")                 // "[IFNAME:]URL", as libioth
///     .spec(IfSpec::new("tap1", "tap://tap1")?)      // typed
///     .offload(true)
///     .backend(Backend::Kernel)
///     .build()?;
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// Interfaces keep the order given. A bad name or URL is reported by
/// [`StackBuilder::build`] (the first one), before anything is made.
#[derive(Debug, Default)]
pub struct StackBuilder {
    specs: Vec<IfSpec>,
    /// The first bad interface given, reported by `build`.
    error: Option<io::Error>,
    offload: Option<bool>,
    backend: Backend,
}

impl StackBuilder {
    /// A builder with no interface (only `lo`), the default options and the
    /// kernel backend.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds interface `name` (1 to 15 bytes, no `/`, `:`, NUL or blank) on `url`:
    /// a VNL (`vde:///tmp/sw`, `vxvde://239.1.2.3`, `inproc://lan`, ...),
    /// `=COMMAND ARGS` (a coprocess speaking stream framing on its stdin/stdout,
    /// searched in `PATH`), or, on the kernel backend, `veth://NAME` (a kernel
    /// link to this process's other stacks on NAME: a veth pair to a kernel
    /// bridge, no relay). Nothing is split off the URL: `////` is a `vde://` path,
    /// as for libvdeplug.
    pub fn interface(self, name: &str, url: &str) -> Self {
        match IfSpec::new(name, url) {
            Ok(s) => self.spec(s),
            Err(e) => self.fail(e),
        }
    }

    /// Adds an interface given as libioth does, `[IFNAME:]URL`; without a name it
    /// is `vdeN`, N its position among the stack's interfaces (0 first).
    pub fn spec_str(self, spec: &str) -> Self {
        let index = self.specs.len();
        match spec::parse(spec, index) {
            Ok(s) => self.spec(s),
            Err(e) => self.fail(e),
        }
    }

    /// Adds a typed interface.
    pub fn spec(mut self, spec: IfSpec) -> Self {
        self.specs.push(spec);
        self
    }

    /// Adds typed interfaces.
    pub fn specs(self, specs: impl IntoIterator<Item = IfSpec>) -> Self {
        specs.into_iter().fold(self, Self::spec)
    }

    /// Whether large segments (TCP segments of up to 64 KiB, cut later) go whole
    /// between the stack and the plugs that carry them (`inproc://`: to other
    /// such stacks as they are) or cut them cheaply (the datagram plugs,
    /// `hub://`, `switch://`: cut once, sent in one `sendmmsg`). The wire still
    /// carries ordinary frames; peers see no difference. On by default, unless
    /// `VDESTACK_OFFLOAD=0` (a benchmark switch) is in the environment. Kernel
    /// backend: the taps get `IFF_VNET_HDR` and TSO; user backend: smoltcp sends
    /// TCP segments of up to 64 KiB on `inproc://`.
    pub fn offload(mut self, on: bool) -> Self {
        self.offload = Some(on);
        self
    }

    /// The backend: the kernel's network stack in a namespace of its own
    /// ([`Backend::Kernel`], the default), or one in the application
    /// ([`Backend::User`]).
    pub fn backend(mut self, backend: Backend) -> Self {
        self.backend = backend;
        self
    }

    /// Makes the stack: its plugs are opened (in the caller's network, before
    /// the stack exists), then the stack and its interfaces. `EINVAL` for a bad
    /// or duplicate interface name or URL; an interface that cannot be opened
    /// gives its error with the interface named. On [`Backend::User`], `veth://`
    /// (a kernel link) is refused.
    pub fn build(self) -> io::Result<Stack> {
        if let Some(e) = self.error {
            return Err(e);
        }
        spec::check_unique(&self.specs)?;
        let offload = self.offload.unwrap_or_else(crate::config::offload_default);
        let inner = match self.backend {
            Backend::Kernel => {
                Inner::Kernel(super::kernel::KernelStack::new(&self.specs, offload)?)
            }
            Backend::User => Inner::User(super::user::UserStack::new(&self.specs, offload)?),
        };
        Ok(Stack {
            ifnames: self.specs.into_iter().map(|s| s.name).collect(),
            inner,
        })
    }

    fn fail(mut self, e: io::Error) -> Self {
        self.error.get_or_insert(e);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::errno_of;

    /// Bad input is refused before anything is made (no namespace needed).
    #[test]
    fn bad_interfaces_fail_the_build() {
        let e = StackBuilder::new()
            .interface("vde0", "null://")
            .interface("sixteen-bytes-xx", "null://")
            .interface("a:b", "null://")
            .build()
            .unwrap_err();
        assert_eq!(errno_of(&e), libc::EINVAL);
        assert!(e.to_string().contains("sixteen-bytes-xx"), "the first: {e}");
        let dup = StackBuilder::new()
            .spec_str("null://")
            .interface("vde0", "null://")
            .build()
            .unwrap_err();
        assert!(dup.to_string().contains("vde0 given twice"), "{dup}");
        assert_eq!(
            errno_of(&StackBuilder::new().spec_str("x:").build().unwrap_err()),
            libc::EINVAL
        );
    }

    #[test]
    fn names_default_by_position() {
        let b = StackBuilder::new()
            .interface("eth0", "null://")
            .spec_str("null://")
            .spec_str("x:null://")
            .spec_str("null://");
        let names: Vec<&str> = b.specs.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["eth0", "vde1", "x", "vde3"]);
    }

    /// A user-space stack needs no privilege: it builds anywhere.
    #[test]
    fn the_user_backend_builds() {
        let s = Stack::builder()
            .backend(Backend::User)
            .interface("vde0", "null://")
            .build()
            .unwrap();
        assert_eq!(s.backend(), Backend::User);
        assert!(s.netns().is_none());
        let e = s.socket(
            crate::net::AddressFamily::INET,
            crate::net::SocketType::DGRAM,
            None,
        );
        assert_eq!(errno_of(&e.unwrap_err()), libc::EOPNOTSUPP);
    }
}
