//! `vdestack demo`: the main job. With nothing running beforehand and no switch, it
//! shows the two layers at work:
//!
//! 1. [`stacks`]: two private network stacks on an embedded in-process network,
//!    configured through netlink, running the classic TCP echo over IPv4 and IPv6;
//! 2. [`plugs`]: an embedded VDE switch and hub that `vde://` clients join, learning,
//!    and a burst of frames through the switch.
//!
//! Everything it makes is removed before it exits.

mod plugs;
mod stacks;

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
    println!("vdestack demo, part 2: VDE plugs on an embedded switch and hub");
    plugs::run(a.frames).map_err(|e| crate::say_what(e, "demo, part 2 (plugs)"))?;
    stacks
}
