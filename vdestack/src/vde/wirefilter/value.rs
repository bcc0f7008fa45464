//! wirefilter's values: `[LR|RL]value[+variation][K|M|G][U|N]`, as vde2's
//! `wirefilter` and the vdeplug_wirefilter plugin read them.
//!
//! * `LR` / `RL` (either case): only that direction; none: both.
//! * `value+variation`: each draw is `value` varied by up to `variation`;
//! * `K`, `M`, `G` (either case): times 2^10, 2^20, 2^30, for the value **and** the
//!   variation (vde2's rule; the plugin scales only the value, a bug not copied). So
//!   `m` is mega, even for a delay;
//! * `U` (the default): uniform in `value ± variation`; `N`: normal, with
//!   σ = variation / 3 (more than 99% of draws inside the band).
//!
//! Several items, separated by blanks, set both directions apart
//! (`LR100 RL50`), as the plugin allows. Unlike vde2, which ignores text it cannot
//! read, anything else is an error, and so is a negative value or variation.
//! vde2's Markov-node suffix (`[node]`) is not supported.

use std::fmt;

use rand::RngExt;

/// One direction of a wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dir {
    /// Left to right: frames the local side sends, on their way to the nested plug.
    LR = 0,
    /// Right to left: frames from the nested plug, on their way to the local side.
    RL = 1,
}

impl Dir {
    /// Both directions, LR first.
    pub const BOTH: [Dir; 2] = [Dir::LR, Dir::RL];

    /// The index of this direction in per-direction arrays.
    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Dir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Dir::LR => "LR",
            Dir::RL => "RL",
        })
    }
}

/// How a value varies from draw to draw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Dist {
    /// Uniform in `value ± variation`.
    #[default]
    Uniform,
    /// Normal around `value`, σ = variation / 3.
    Normal,
}

/// A value and its variation.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Value {
    /// The central value.
    pub value: f64,
    /// How far a draw may stray from it (uniform) or three standard deviations
    /// (normal).
    pub plus: f64,
    /// The distribution of the draws.
    pub dist: Dist,
}

impl Value {
    /// No value: the impairment is off.
    pub const OFF: Value = Value {
        value: 0.0,
        plus: 0.0,
        dist: Dist::Uniform,
    };

    /// A fixed value.
    pub fn fixed(value: f64) -> Self {
        Value {
            value,
            ..Value::OFF
        }
    }

    /// The smallest value a uniform draw can take.
    pub fn min(&self) -> f64 {
        self.value - self.plus
    }

    /// The largest value a uniform draw can take.
    pub fn max(&self) -> f64 {
        self.value + self.plus
    }

    /// Whether the impairment is on (some draw can be above 0), as vde2 decides.
    pub fn is_on(&self) -> bool {
        self.max() > 0.0
    }

    /// One draw (vde2's `compute_wirevalue`: uniform, or normal by the polar method).
    pub fn draw(&self, rng: &mut impl rand::Rng) -> f64 {
        if self.plus == 0.0 {
            return self.value;
        }
        match self.dist {
            Dist::Uniform => self.value + self.plus * (rng.random::<f64>() * 2.0 - 1.0),
            Dist::Normal => loop {
                let x = rng.random::<f64>() * 2.0 - 1.0;
                let y = rng.random::<f64>() * 2.0 - 1.0;
                let r2 = x * x + y * y;
                if r2 < 1.0 && r2 > 0.0 {
                    break self.value + self.plus / 3.0 * x * (-2.0 * r2.ln() / r2).sqrt();
                }
            },
        }
    }
}

impl fmt::Display for Value {
    /// As vde2's `showinfo` prints it: `50+10N`, `0+0U`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = match self.dist {
            Dist::Uniform => 'U',
            Dist::Normal => 'N',
        };
        write!(f, "{}+{}{d}", self.value, self.plus)
    }
}

/// Parses an option's text into (direction, value) items; a `None` direction means
/// both. `Err` says what is wrong with it (the caller names the option).
pub fn parse(text: &str) -> Result<Vec<(Option<Dir>, Value)>, String> {
    let items: Vec<&str> = text.split_whitespace().collect();
    if items.is_empty() {
        return Err("a value is needed".into());
    }
    items.into_iter().map(parse_item).collect()
}

fn parse_item(item: &str) -> Result<(Option<Dir>, Value), String> {
    let upper = item.to_ascii_uppercase();
    let (dir, mut rest) = if let Some(r) = upper.strip_prefix("LR") {
        (Some(Dir::LR), r)
    } else if let Some(r) = upper.strip_prefix("RL") {
        (Some(Dir::RL), r)
    } else {
        (None, upper.as_str())
    };
    let mut dist = Dist::Uniform;
    if let Some(r) = rest.strip_suffix('U') {
        rest = r;
    } else if let Some(r) = rest.strip_suffix('N') {
        dist = Dist::Normal;
        rest = r;
    }
    let mut mult = 1.0;
    for (suffix, m) in [('K', 1024.0), ('M', 1048576.0), ('G', 1073741824.0)] {
        if let Some(r) = rest.strip_suffix(suffix) {
            mult = m;
            rest = r;
            break;
        }
    }
    let (v, p) = match rest.split_once('+') {
        Some((v, p)) => (v, Some(p)),
        None => (rest, None),
    };
    let number = |s: &str| -> Result<f64, String> {
        match s.parse::<f64>() {
            Ok(n) if !n.is_finite() => Err(format!("`{item}` is out of range")),
            Ok(n) if n < 0.0 => Err(format!("`{item}`: values must not be negative")),
            Ok(n) => Ok(n),
            Err(_) => Err(format!(
                "`{item}` is not [LR|RL]value[+variation][K|M|G][U|N]"
            )),
        }
    };
    // `-1` parses as a number: say it is negative rather than malformed.
    let value = number(v)? * mult;
    let plus = p.map(number).transpose()?.unwrap_or(0.0) * mult;
    Ok((dir, Value { value, plus, dist }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn one(s: &str) -> (Option<Dir>, Value) {
        let v = parse(s).unwrap();
        assert_eq!(v.len(), 1, "{s}");
        v[0]
    }

    #[test]
    fn the_grammar() {
        assert_eq!(one("50"), (None, Value::fixed(50.0)));
        assert_eq!(
            one("LR50+10N"),
            (
                Some(Dir::LR),
                Value {
                    value: 50.0,
                    plus: 10.0,
                    dist: Dist::Normal
                }
            )
        );
        assert_eq!(one("rl2.5").0, Some(Dir::RL));
        assert_eq!(one("rl2.5").1.value, 2.5);
        // Units scale the value and the variation; `m` is mega.
        let v = one("1+1K").1;
        assert_eq!((v.value, v.plus), (1024.0, 1024.0));
        assert_eq!(one("2m").1.value, 2.0 * 1048576.0);
        assert_eq!(one("1GU").1.value, 1073741824.0);
        let both = parse("LR100 RL50").unwrap();
        assert_eq!(both[0], (Some(Dir::LR), Value::fixed(100.0)));
        assert_eq!(both[1], (Some(Dir::RL), Value::fixed(50.0)));
    }

    #[test]
    fn bad_values_say_why() {
        for (s, needle) in [
            ("-1", "negative"),
            ("LR-5", "negative"),
            ("5+-1", "negative"),
            ("abc", "abc"),
            ("5x", "5x"),
            ("", "needed"),
            ("1e999", "1e999"),
            ("NaN", "NaN"),
        ] {
            let e = parse(s).unwrap_err();
            assert!(e.contains(needle), "{s}: {e}");
        }
    }

    #[test]
    fn draws_stay_in_their_band() {
        let mut rng = rand::rngs::Xoshiro256PlusPlus::seed_from_u64(7);
        let u = one("100+10U").1;
        let n = one("100+30N").1;
        let (mut sum, mut sq) = (0.0, 0.0);
        for _ in 0..20000 {
            let x = u.draw(&mut rng);
            assert!((90.0..=110.0).contains(&x), "{x}");
            let y = n.draw(&mut rng);
            sum += y;
            sq += (y - 100.0) * (y - 100.0);
        }
        let mean = sum / 20000.0;
        let sigma = (sq / 20000.0).sqrt();
        assert!((mean - 100.0).abs() < 0.5, "normal mean {mean}");
        assert!(
            (sigma - 10.0).abs() < 0.5,
            "normal sigma {sigma} (expected 30/3)"
        );
        assert_eq!(Value::fixed(3.0).draw(&mut rng), 3.0);
        assert_eq!(one("50+10N").1.to_string(), "50+10N");
    }
}
