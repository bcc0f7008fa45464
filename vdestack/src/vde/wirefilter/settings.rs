//! What a wire does to frames: one [`Value`] per impairment and direction, checked
//! when it is set (from the URL, an rc file or the management socket alike).

use std::fmt;

use super::value::{self, Dir, Value};

/// One impairment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Param {
    /// Added latency, ms.
    Delay,
    /// Frames lost, percent.
    Loss,
    /// Mean length of a burst of lost frames (the Gilbert model); 0: independent losses.
    LostBurst,
    /// Frames duplicated, percent (each copy may be duplicated again).
    Dup,
    /// The largest frame that passes, bytes; 0: any.
    Mtu,
    /// Bytes a direction may hold waiting (vde2's `chanbufsize`, the plugin's
    /// `bufsize`); 0: no limit but the plug's own.
    BufSize,
    /// The channel's bandwidth, bytes/s: frames queue behind each other.
    Bandwidth,
    /// The interface's speed, bytes/s: the sender waits while a frame is sent.
    Speed,
    /// Damaged bits per 2^20 bytes.
    Noise,
    /// Frames that skip the delay and overtake those waiting, percent.
    Reorder,
    /// Frames with one bit flipped past their Ethernet header, percent.
    Corrupt,
}

impl Param {
    /// Every impairment, in the order `showinfo` lists them.
    pub const ALL: [Param; 11] = [
        Param::Loss,
        Param::LostBurst,
        Param::Delay,
        Param::Dup,
        Param::Bandwidth,
        Param::Speed,
        Param::Noise,
        Param::Mtu,
        Param::BufSize,
        Param::Reorder,
        Param::Corrupt,
    ];

    /// The option name in a URL (the plugin's).
    pub fn name(self) -> &'static str {
        match self {
            Param::Delay => "delay",
            Param::Loss => "loss",
            Param::LostBurst => "lostburst",
            Param::Dup => "dup",
            Param::Mtu => "mtu",
            Param::BufSize => "bufsize",
            Param::Bandwidth => "bandwidth",
            Param::Speed => "speed",
            Param::Noise => "noise",
            Param::Reorder => "reorder",
            Param::Corrupt => "corrupt",
        }
    }

    /// The impairment a URL option or management command names (with vde2's
    /// synonyms: `band`, `chanbufsize`, `capacity`).
    pub fn from_name(name: &str) -> Option<Param> {
        Some(match name {
            "delay" => Param::Delay,
            "loss" => Param::Loss,
            "lostburst" => Param::LostBurst,
            "dup" => Param::Dup,
            "mtu" => Param::Mtu,
            "bufsize" | "chanbufsize" | "capacity" => Param::BufSize,
            "bandwidth" | "band" => Param::Bandwidth,
            "speed" => Param::Speed,
            "noise" => Param::Noise,
            "reorder" => Param::Reorder,
            "corrupt" => Param::Corrupt,
            _ => return None,
        })
    }

    fn index(self) -> usize {
        self as usize
    }

    /// What a value of it must be; `Err` says why it is refused.
    fn check(self, v: &Value) -> Result<(), String> {
        let percent = |most: f64, why: &str| {
            if v.max() > most {
                Err(format!("{} exceeds {most}%{why}", v.max()))
            } else {
                Ok(())
            }
        };
        match self {
            Param::Loss | Param::Reorder | Param::Corrupt => percent(100.0, ""),
            // 100% would duplicate every copy again, for ever.
            Param::Dup if v.max() >= 100.0 => Err(format!(
                "{} is not below 100% (every copy would be duplicated again, for ever)",
                v.max()
            )),
            _ => Ok(()),
        }
    }
}

impl fmt::Display for Param {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The values of every impairment, both directions.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    values: [[Value; 2]; 11],
    /// Whether frames of one direction leave in the order they came (the default;
    /// `nofifo` turns it off, so a delay that varies reorders them).
    pub fifo: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            values: [[Value::OFF; 2]; 11],
            fifo: true,
        }
    }
}

impl Settings {
    /// The value of `param` in direction `dir`.
    pub fn get(&self, param: Param, dir: Dir) -> Value {
        self.values[param.index()][dir.index()]
    }

    /// Sets `param` in one direction (`None`: both), after checking it.
    pub fn put(&mut self, param: Param, dir: Option<Dir>, v: Value) -> Result<(), String> {
        param.check(&v)?;
        for d in Dir::BOTH {
            if dir.is_none_or(|x| x == d) {
                self.values[param.index()][d.index()] = v;
            }
        }
        Ok(())
    }

    /// Sets `param` from text in the value grammar ([`value`]); nothing changes if
    /// any item is refused. `Err` says why, naming the option.
    pub fn set(&mut self, param: Param, text: &str) -> Result<(), String> {
        let items = value::parse(text).map_err(|why| format!("{param}: {why}"))?;
        let mut next = self.clone();
        for (dir, v) in items {
            next.put(param, dir, v)
                .map_err(|why| format!("{param} `{text}`: {why}"))?;
        }
        *self = next;
        Ok(())
    }

    /// Whether any impairment is on in `dir`.
    pub fn any_on(&self, dir: Dir) -> bool {
        self.values.iter().any(|v| v[dir.index()].is_on())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_checked_and_name_their_option() {
        let mut s = Settings::default();
        s.set(Param::Loss, "30").unwrap();
        assert_eq!(s.get(Param::Loss, Dir::LR).value, 30.0);
        assert_eq!(s.get(Param::Loss, Dir::RL).value, 30.0);
        s.set(Param::Delay, "LR50").unwrap();
        assert_eq!(s.get(Param::Delay, Dir::LR).value, 50.0);
        assert!(!s.get(Param::Delay, Dir::RL).is_on());
        for (p, text, needle) in [
            (Param::Loss, "150", "loss"),
            (Param::Loss, "90+20", "loss"),
            (Param::Delay, "-1", "delay"),
            (Param::Dup, "100", "dup"),
            (Param::Corrupt, "101", "corrupt"),
            (Param::Mtu, "x", "mtu"),
        ] {
            let e = s.clone().set(p, text).unwrap_err();
            assert!(e.contains(needle) && e.contains(text), "{text}: {e}");
        }
        // A refused item leaves everything as it was.
        let before = s.clone();
        assert!(s.set(Param::Loss, "LR10 RL200").is_err());
        assert_eq!(s, before);
        assert!(s.any_on(Dir::LR) && s.any_on(Dir::RL));
        assert!(!Settings::default().any_on(Dir::LR));
    }

    #[test]
    fn names_and_synonyms() {
        for p in Param::ALL {
            assert_eq!(Param::from_name(p.name()), Some(p));
        }
        assert_eq!(Param::from_name("band"), Some(Param::Bandwidth));
        assert_eq!(Param::from_name("capacity"), Some(Param::BufSize));
        assert_eq!(Param::from_name("chanbufsize"), Some(Param::BufSize));
        assert_eq!(Param::from_name("colour"), None);
    }
}
