//! The management commands of vde2's `wirefilter` (what `vdeterm` sends), on an
//! [`Engine`], free of I/O but for `load FILE`. Also what an `rc=` file holds.
//!
//! A command is matched by the line starting with its full name, in vde2's table
//! order (`bandwidth` before `band`). Replies are vde2's: `1000 Success`, or
//! `1%03d <strerror>` (an unknown command is `1038 Function not implemented`,
//! a bad value `1022 Invalid argument`, here followed by the reason); `help`,
//! `showinfo` and `load` wrap their output in `0000 DATA END WITH '.'` ... `.`.
//!
//! Commands: `help`, `showinfo`, `load FILE`, `delay`, `loss`, `lostburst`, `dup`,
//! `bandwidth` (`band`), `speed`, `chanbufsize` (`capacity`, `bufsize`), `noise`,
//! `mtu`, `fifo 0|1`, `reorder`, `corrupt`, `logout`, `shutdown`. Values take the
//! grammar of [`super::value`]. vde2's Markov-chain commands are not supported.

use std::fmt::Write as _;

use super::engine::Engine;
use super::settings::Param;
use super::value::Dir;

/// The banner a management session starts with (vde2's, with our version).
pub const BANNER: &str = concat!(
    "\nVDE wirefilter V.vdestack-",
    env!("CARGO_PKG_VERSION"),
    "\n(vdestack's wirefilter:// plug)\n"
);

/// The prompt after each reply.
pub const PROMPT: &str = "\nVDEwf$ ";

/// What the session does after a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum After {
    /// Waits for the next command.
    Continue,
    /// Ends this session (`logout`).
    Logout,
    /// Ends the wire (`shutdown`): the plug reports itself closed.
    Shutdown,
}

/// What a command's function returns: output lines, or an errno and the reason.
type Outcome = Result<After, (i32, String)>;

/// The commands, in vde2's matching order; `true`: output in a DATA block.
const TABLE: &[(&str, bool)] = &[
    ("help", true),
    ("showinfo", true),
    ("load", true),
    ("delay", false),
    ("loss", false),
    ("lostburst", false),
    ("dup", false),
    ("bandwidth", false),
    ("band", false),
    ("speed", false),
    ("chanbufsize", false),
    ("capacity", false),
    ("bufsize", false),
    ("noise", false),
    ("mtu", false),
    ("fifo", false),
    ("reorder", false),
    ("corrupt", false),
    ("logout", false),
    ("shutdown", false),
];

/// How deep `load` may nest (a file that loads itself).
const MAX_LOAD_DEPTH: usize = 8;

/// Runs one command line on `engine`; returns the reply (without the prompt) and
/// what follows. Blank lines and `#` comments get no reply.
pub fn run(engine: &mut Engine, line: &str) -> (String, After) {
    let mut out = String::new();
    let after = run_into(engine, line, &mut out, 0);
    (out, after)
}

fn run_into(engine: &mut Engine, line: &str, out: &mut String, depth: usize) -> After {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return After::Continue;
    }
    let Some(&(name, data)) = TABLE.iter().find(|(n, _)| line.starts_with(n)) else {
        let _ = writeln!(out, "1038 Function not implemented");
        return After::Continue;
    };
    let arg = line[name.len()..].trim();
    if data {
        let _ = writeln!(out, "0000 DATA END WITH '.'");
    }
    let outcome = match name {
        "help" => {
            help(out);
            Ok(After::Continue)
        }
        "showinfo" => {
            showinfo(engine, out);
            Ok(After::Continue)
        }
        "load" => load(engine, arg, out, depth),
        "fifo" => match arg {
            "0" => {
                engine.settings_mut().fifo = false;
                Ok(After::Continue)
            }
            "1" => {
                engine.settings_mut().fifo = true;
                Ok(After::Continue)
            }
            _ => Err((libc::EINVAL, format!("fifo: `{arg}` is not 0 or 1"))),
        },
        "logout" => Ok(After::Logout),
        "shutdown" => Ok(After::Shutdown),
        _ => {
            let param = Param::from_name(name).expect("the table names parameters");
            engine
                .settings_mut()
                .set(param, arg)
                .map(|_| After::Continue)
                .map_err(|why| (libc::EINVAL, why))
        }
    };
    if data {
        let _ = writeln!(out, ".");
    }
    match outcome {
        Ok(after) => {
            let _ = writeln!(out, "1000 Success");
            after
        }
        Err((errno, why)) => {
            let text = std::io::Error::from_raw_os_error(errno).to_string();
            let text = text.split(" (os error").next().unwrap_or(&text).to_string();
            let _ = writeln!(out, "1{errno:03} {text}: {why}");
            After::Continue
        }
    }
}

fn load(engine: &mut Engine, path: &str, out: &mut String, depth: usize) -> Outcome {
    if depth >= MAX_LOAD_DEPTH {
        return Err((libc::ELOOP, format!("load {path}: nested too deep")));
    }
    let text = std::fs::read_to_string(path).map_err(|e| {
        (
            e.raw_os_error().unwrap_or(libc::EIO),
            format!("load {path}: {e}"),
        )
    })?;
    for line in text.lines() {
        let _ = writeln!(out, "{PROMPT}({path}) {line}");
        if run_into(engine, line, out, depth + 1) == After::Shutdown {
            return Ok(After::Shutdown);
        }
    }
    Ok(After::Continue)
}

fn help(out: &mut String) {
    for (c, h) in [
        ("COMMAND", "HELP"),
        ("------------", "------------"),
        ("help", "print a summary of mgmt commands"),
        ("load", "load a configuration file"),
        ("showinfo", "show status and parameter values"),
        ("loss", "set loss percentage"),
        ("lostburst", "mean length of lost packet bursts"),
        ("delay", "set delay ms"),
        ("dup", "set dup packet percentage"),
        ("bandwidth", "set channel bandwidth bytes/sec"),
        ("speed", "set interface speed bytes/sec"),
        ("noise", "set noise factor bits/Mbyte"),
        ("mtu", "set channel MTU (bytes)"),
        ("chanbufsize", "set channel buffer size (bytes)"),
        ("fifo", "set channel fifoness"),
        ("reorder", "set percentage of packets that skip the delay"),
        ("corrupt", "set percentage of packets with a bit flipped"),
        ("shutdown", "shut the channel down"),
        ("logout", "log out from this mgmt session"),
    ] {
        let _ = writeln!(out, "{c:<12} {h}");
    }
}

fn showinfo(engine: &Engine, out: &mut String) {
    let s = engine.settings();
    let _ = writeln!(out, "WireFilter: bidirectional");
    for (label, p) in [
        ("Loss  ", Param::Loss),
        ("Lburst", Param::LostBurst),
        ("Delay ", Param::Delay),
        ("Dup   ", Param::Dup),
        ("Bandw ", Param::Bandwidth),
        ("Speed ", Param::Speed),
        ("Noise ", Param::Noise),
        ("Reord ", Param::Reorder),
        ("Corr  ", Param::Corrupt),
    ] {
        let _ = writeln!(
            out,
            "{label} L->R {}   R->L {}",
            s.get(p, Dir::LR),
            s.get(p, Dir::RL)
        );
    }
    let _ = writeln!(
        out,
        "MTU    L->R {}     R->L {}   ",
        s.get(Param::Mtu, Dir::LR).min(),
        s.get(Param::Mtu, Dir::RL).min()
    );
    let _ = writeln!(
        out,
        "Cap.   L->R {}   R->L {}",
        s.get(Param::BufSize, Dir::LR),
        s.get(Param::BufSize, Dir::RL)
    );
    let (lr, rl) = (engine.waiting(Dir::LR), engine.waiting(Dir::RL));
    let _ = writeln!(
        out,
        "Current Delay Queue size:   L->R {}      R->L {}   ",
        lr.1, rl.1
    );
    let _ = writeln!(out, "Fifoness {}", if s.fifo { "TRUE" } else { "FALSE" });
    let _ = writeln!(out, "Waiting packets in delay queues {}", lr.0 + rl.0);
    for d in Dir::BOTH {
        let t = engine.stats(d);
        let _ = writeln!(
            out,
            "Stats {d}: frames {} passed {} lost {} too-big {} overflow {} dup {} damaged {} reordered {}",
            t.frames, t.passed, t.lost, t.too_big, t.overflow, t.duplicated, t.damaged, t.reordered
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vde::wirefilter::settings::Settings;

    fn engine() -> Engine {
        Engine::new(Settings::default(), 1)
    }

    #[test]
    fn values_change_and_replies_are_vde2_codes() {
        let mut e = engine();
        assert_eq!(
            run(&mut e, "delay 50\n"),
            ("1000 Success\n".into(), After::Continue)
        );
        assert_eq!(e.settings().get(Param::Delay, Dir::RL).value, 50.0);
        run(&mut e, "loss LR30");
        assert_eq!(e.settings().get(Param::Loss, Dir::LR).value, 30.0);
        assert!(!e.settings().get(Param::Loss, Dir::RL).is_on());
        run(&mut e, "band 1000");
        assert_eq!(e.settings().get(Param::Bandwidth, Dir::LR).value, 1000.0);
        run(&mut e, "capacity 5K");
        assert_eq!(e.settings().get(Param::BufSize, Dir::LR).value, 5120.0);
        run(&mut e, "fifo 0");
        assert!(!e.settings().fifo);
        let (r, _) = run(&mut e, "loss 150");
        assert!(
            r.starts_with("1022 Invalid argument") && r.contains("150"),
            "{r}"
        );
        assert_eq!(e.settings().get(Param::Loss, Dir::LR).value, 30.0);
        let (r, _) = run(&mut e, "markov-numnodes 2");
        assert_eq!(r, "1038 Function not implemented\n");
        assert_eq!(run(&mut e, "# a comment").0, "");
        assert_eq!(run(&mut e, "logout").1, After::Logout);
        assert_eq!(run(&mut e, "shutdown").1, After::Shutdown);
    }

    #[test]
    fn showinfo_and_help_are_data_blocks() {
        let mut e = engine();
        run(&mut e, "delay LR50+10N");
        let (r, _) = run(&mut e, "showinfo");
        assert!(r.starts_with("0000 DATA END WITH '.'\n"), "{r}");
        assert!(r.ends_with("\n.\n1000 Success\n"), "{r}");
        assert!(r.contains("Delay  L->R 50+10N   R->L 0+0U"), "{r}");
        assert!(r.contains("Fifoness TRUE"), "{r}");
        let (r, _) = run(&mut e, "help");
        assert!(r.contains("showinfo") && r.ends_with("1000 Success\n"));
    }

    #[test]
    fn load_runs_a_file_of_commands() {
        let dir = std::env::temp_dir().join(format!("vdestack-wfload-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("rc");
        std::fs::write(&f, "# test\ndelay 20\nloss RL5\n").unwrap();
        let mut e = engine();
        let (r, _) = run(&mut e, &format!("load {}", f.display()));
        assert!(r.ends_with("1000 Success\n"), "{r}");
        assert_eq!(e.settings().get(Param::Delay, Dir::LR).value, 20.0);
        assert_eq!(e.settings().get(Param::Loss, Dir::RL).value, 5.0);
        // A file that loads itself stops.
        std::fs::write(&f, format!("load {}\n", f.display())).unwrap();
        let (r, _) = run(&mut e, &format!("load {}", f.display()));
        assert!(r.contains("1040"), "{r}");
        let (r, _) = run(&mut e, "load /no/such/file");
        assert!(r.contains("1002") && r.contains("/no/such/file"), "{r}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
