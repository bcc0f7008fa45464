//! The impairments, with a seeded generator: each figure is checked against what
//! the model says, within bounds of several standard deviations.

use super::engine::{Admit, Engine};
use super::settings::{Param, Settings};
use super::value::Dir;

const MS: u64 = 1_000_000;

fn engine(opts: &[(Param, &str)]) -> Engine {
    let mut s = Settings::default();
    for (p, v) in opts {
        s.set(*p, v).unwrap();
    }
    Engine::new(s, 42)
}

fn frame(n: usize) -> Vec<u8> {
    (0..n).map(|i| i as u8).collect()
}

/// Frames (numbered in their first bytes) through `dir` one per ms; returns the
/// numbers in the order they came out, draining at the end.
fn run(e: &mut Engine, dir: Dir, count: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let mut now = 1_000 * MS;
    for i in 0..count {
        let mut f = frame(60);
        f[..4].copy_from_slice(&i.to_be_bytes());
        if e.admit(dir, &f, now) == Admit::Now {
            out.push(i);
        }
        while let Some(f) = e.pop_due(dir, now) {
            out.push(u32::from_be_bytes(f[..4].try_into().unwrap()));
        }
        now += MS;
    }
    now += 100_000 * MS;
    while let Some(f) = e.pop_due(dir, now) {
        out.push(u32::from_be_bytes(f[..4].try_into().unwrap()));
    }
    out
}

#[test]
fn no_impairment_passes_every_frame_at_once_unchanged() {
    let mut e = engine(&[]);
    for dir in Dir::BOTH {
        assert_eq!(e.admit(dir, &frame(60), 5), Admit::Now);
    }
    assert_eq!(e.next_due(), None);
    assert_eq!(run(&mut e, Dir::LR, 100), (0..100).collect::<Vec<_>>());
}

#[test]
fn delay_holds_a_frame_for_its_time() {
    let mut e = engine(&[(Param::Delay, "50")]);
    assert_eq!(e.admit(Dir::LR, &frame(60), 0), Admit::Queued);
    assert_eq!(e.next_due(), Some(50 * MS));
    assert_eq!(e.pop_due(Dir::LR, 50 * MS - 1), None);
    assert_eq!(e.pop_due(Dir::RL, 50 * MS), None, "the other direction");
    assert_eq!(e.pop_due(Dir::LR, 50 * MS), Some(frame(60)));
    assert_eq!(e.waiting(Dir::LR), (0, 0));
    // One direction only.
    let mut e = engine(&[(Param::Delay, "RL20")]);
    assert_eq!(e.admit(Dir::LR, &frame(60), 0), Admit::Now);
    assert_eq!(e.admit(Dir::RL, &frame(60), 0), Admit::Queued);
    assert_eq!(e.next_due(), Some(20 * MS));
}

#[test]
fn fifo_keeps_order_under_jitter_and_nofifo_does_not() {
    let mut e = engine(&[(Param::Delay, "50+40")]);
    assert_eq!(run(&mut e, Dir::LR, 500), (0..500).collect::<Vec<_>>());
    let mut e = engine(&[(Param::Delay, "50+40")]);
    e.settings_mut().fifo = false;
    let out = run(&mut e, Dir::LR, 500);
    assert_eq!(out.len(), 500);
    assert_ne!(
        out,
        (0..500).collect::<Vec<_>>(),
        "jitter reorders without fifo"
    );
}

#[test]
fn loss_matches_its_probability() {
    let mut e = engine(&[(Param::Loss, "30")]);
    let n = 100_000;
    let passed = run(&mut e, Dir::LR, n).len() as f64;
    // 5 sigma of a binomial(100000, 0.7): 5 * 145 frames.
    assert!((passed - 70_000.0).abs() < 725.0, "{passed}");
    assert_eq!(e.stats(Dir::LR).lost as f64, n as f64 - passed);
    // The other direction is untouched by a one-way loss.
    let mut e = engine(&[(Param::Loss, "LR100")]);
    assert_eq!(run(&mut e, Dir::LR, 100).len(), 0);
    assert_eq!(run(&mut e, Dir::RL, 100).len(), 100);
}

#[test]
fn gilbert_bursts_keep_the_mean_loss_and_have_the_mean_length() {
    let mut e = engine(&[(Param::Loss, "10"), (Param::LostBurst, "5")]);
    let n = 200_000u32;
    let out = run(&mut e, Dir::LR, n);
    let lost = n as usize - out.len();
    let rate = lost as f64 / n as f64;
    assert!((rate - 0.10).abs() < 0.01, "loss {rate}");
    // Bursts: runs of missing numbers.
    let (mut bursts, mut prev) = (0usize, None::<u32>);
    for &i in &out {
        let gap = i - prev.map_or(0, |p| p + 1);
        if gap > 0 {
            bursts += 1;
        }
        prev = Some(i);
    }
    let mean = lost as f64 / bursts as f64;
    assert!((mean - 5.0).abs() < 0.5, "mean burst {mean}");
    // Independent losses at the same rate come in bursts of about 1/(1-l).
    let mut e = engine(&[(Param::Loss, "10")]);
    let out = run(&mut e, Dir::LR, n);
    let lost = n as usize - out.len();
    let gaps = out.windows(2).filter(|w| w[1] != w[0] + 1).count();
    assert!((lost as f64 / gaps as f64) < 1.3);
}

#[test]
fn dup_makes_geometric_copies() {
    let mut e = engine(&[(Param::Dup, "50")]);
    let out = run(&mut e, Dir::LR, 10_000);
    // Mean copies 1 / (1 - 0.5) = 2.
    let ratio = out.len() as f64 / 10_000.0;
    assert!((ratio - 2.0).abs() < 0.1, "{ratio}");
    assert_eq!(e.stats(Dir::LR).duplicated as usize, out.len() - 10_000);
    // Copies come one after the other.
    assert!(out.windows(2).all(|w| w[1] >= w[0]));
}

#[test]
fn mtu_drops_longer_frames() {
    let mut e = engine(&[(Param::Mtu, "1500")]);
    assert_eq!(e.admit(Dir::LR, &frame(1500), 0), Admit::Now);
    assert_eq!(e.admit(Dir::LR, &frame(1501), 0), Admit::Dropped);
    assert_eq!(e.stats(Dir::LR).too_big, 1);
}

#[test]
fn bandwidth_queues_and_bufsize_bounds_the_queue() {
    let mut e = engine(&[(Param::Bandwidth, "1000")]);
    for _ in 0..3 {
        assert_eq!(e.admit(Dir::LR, &frame(100), 0), Admit::Queued);
    }
    assert_eq!(e.next_due(), Some(100 * MS));
    assert!(e.pop_due(Dir::LR, 100 * MS).is_some());
    assert_eq!(e.pop_due(Dir::LR, 199 * MS), None);
    assert!(e.pop_due(Dir::LR, 200 * MS).is_some());
    assert!(e.pop_due(Dir::LR, 300 * MS).is_some());
    assert_eq!(
        e.paused_until(Dir::LR, 0),
        None,
        "bandwidth never pauses input"
    );

    let mut e = engine(&[(Param::Bandwidth, "1000"), (Param::BufSize, "250")]);
    assert_eq!(e.admit(Dir::LR, &frame(100), 0), Admit::Queued);
    assert_eq!(e.admit(Dir::LR, &frame(100), 0), Admit::Queued);
    assert_eq!(e.admit(Dir::LR, &frame(100), 0), Admit::Dropped);
    assert_eq!(e.stats(Dir::LR).overflow, 1);
    assert_eq!(e.waiting(Dir::LR), (2, 200));
}

#[test]
fn speed_pauses_the_input_while_a_frame_is_sent() {
    let mut e = engine(&[(Param::Speed, "RL1K")]);
    assert_eq!(e.admit(Dir::RL, &frame(1024), 0), Admit::Queued);
    assert_eq!(e.paused_until(Dir::RL, 0), Some(1_000 * MS));
    assert_eq!(e.paused_until(Dir::RL, 1_000 * MS), None);
    assert_eq!(e.paused_until(Dir::LR, 0), None);
    assert!(e.pop_due(Dir::RL, 1_000 * MS).is_some());
}

#[test]
fn corrupt_flips_one_bit_past_the_header_and_noise_flips_bits() {
    let mut e = engine(&[(Param::Corrupt, "100")]);
    let f = frame(200);
    assert_eq!(e.admit(Dir::LR, &f, 0), Admit::Queued);
    let g = e.pop_due(Dir::LR, 0).expect("due at once");
    let diff: u32 = f.iter().zip(&g).map(|(a, b)| (a ^ b).count_ones()).sum();
    assert_eq!(diff, 1);
    assert_eq!(f[..14], g[..14], "the Ethernet header is left alone");
    assert_eq!(e.stats(Dir::LR).damaged, 1);
    // 1M damaged bits per MiB: a 1000-byte frame nearly always has some.
    let mut e = engine(&[(Param::Noise, "1M")]);
    let mut damaged = 0;
    for _ in 0..100 {
        if e.admit(Dir::LR, &frame(1000), 0) == Admit::Queued {
            let g = e.pop_due(Dir::LR, 0).unwrap();
            damaged += usize::from(g != frame(1000));
        }
    }
    assert!(damaged > 90, "{damaged}");
}

#[test]
fn reorder_lets_frames_overtake_the_delayed_ones() {
    let mut e = engine(&[(Param::Delay, "100"), (Param::Reorder, "25")]);
    let out = run(&mut e, Dir::LR, 1000);
    assert_eq!(out.len(), 1000);
    let early = e.stats(Dir::LR).reordered as f64;
    // binomial(1000, 0.25): sigma 13.7.
    assert!((early - 250.0).abs() < 70.0, "{early}");
    assert_ne!(out, (0..1000).collect::<Vec<_>>());
}

#[test]
fn a_seed_reproduces_a_run_and_another_seed_does_not() {
    let run_with = |seed| {
        let mut s = Settings::default();
        s.set(Param::Loss, "40").unwrap();
        s.set(Param::Delay, "10+5N").unwrap();
        let mut e = Engine::new(s, seed);
        run(&mut e, Dir::LR, 2000)
    };
    assert_eq!(run_with(7), run_with(7));
    assert_ne!(run_with(7), run_with(8));
}

#[test]
fn changed_settings_apply_to_the_next_frames() {
    let mut e = engine(&[(Param::Loss, "100")]);
    assert_eq!(e.admit(Dir::LR, &frame(60), 0), Admit::Dropped);
    e.settings_mut().set(Param::Loss, "0").unwrap();
    assert_eq!(e.admit(Dir::LR, &frame(60), 0), Admit::Now);
    e.settings_mut().set(Param::Delay, "5").unwrap();
    assert_eq!(e.admit(Dir::LR, &frame(60), 0), Admit::Queued);
    assert_eq!(e.clear(), 1);
    assert_eq!(e.next_due(), None);
}
