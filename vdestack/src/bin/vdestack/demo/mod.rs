//! `vdestack demo`: the main job. With nothing running beforehand and no switch, it
//! shows the two layers at work:
//!
//! 1. [`stacks`]: two private network stacks on an embedded in-process network,
//!    configured through netlink, running the classic TCP echo over IPv4 and IPv6;
//! 2. [`user`]: the same echo between two user-space stacks (`Backend::User`: TCP/IP
//!    in this process, no namespace or privilege), and what such a stack costs next
//!    to a kernel one, measured as it runs;
//! 3. [`plugs`]: an embedded VDE switch and hub that `vde://` clients join, learning,
//!    and a burst of frames through the switch.
//!
//! Everything it makes is removed before it exits.

mod plugs;
mod stacks;
mod user;

use std::io;

/// Arguments of `vdestack demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// How many frames the switch throughput part sends.
    #[arg(long, default_value_t = 20000)]
    frames: u32,
}

/// Runs the demo.
pub fn run(a: DemoArgs) -> io::Result<()> {
    println!("vdestack demo, part 1: private network stacks (Internet of Threads)");
    let stacks = stacks::run().map_err(|e| crate::say_what(e, "demo, part 1 (stacks)"));
    if let Err(e) = &stacks {
        println!("  stacks failed: {e}");
    }
    println!();
    println!("vdestack demo, part 2: user-space stacks (no namespace, no privilege)");
    let user = user::run().map_err(|e| crate::say_what(e, "demo, part 2 (user-space stacks)"));
    if let Err(e) = &user {
        println!("  user-space stacks failed: {e}");
    }
    println!();
    println!("vdestack demo, part 3: VDE plugs on an embedded switch and hub");
    plugs::run(a.frames).map_err(|e| crate::say_what(e, "demo, part 3 (plugs)"))?;
    user?;
    match stacks {
        // Where namespaces or taps are refused (a container's seccomp profile, no
        // /dev/net/tun), the kernel part cannot run; the rest did: no failure.
        Err(e) if refused(&e) => {
            println!();
            println!("kernel stacks are refused here ({e}); user-space stacks need no privilege");
            Ok(())
        }
        other => other,
    }
}

/// Whether `e` says that kernel stacks are not allowed here, rather than broken.
fn refused(e: &io::Error) -> bool {
    match vdestack::error::errno_of(e) {
        libc::EPERM | libc::EACCES => true,
        libc::ENOENT => e.to_string().contains("/dev/net/tun"),
        _ => false,
    }
}
