//! A small builder of classic BPF programs for seccomp filters: the architecture
//! is checked first, then the system call number is looked up with a binary
//! decision tree over the trapped numbers, and only then, for the few calls
//! that are trapped, arguments are read.
//!
//! Why this shape: since Linux 5.11 the kernel caches, per system call number,
//! the filters whose verdict for that number depends on the number and the
//! architecture only (`seccomp_cache_prepare`). Every call this program lets
//! through without reading an argument is then allowed without running the
//! filter at all, so a supervised program pays nothing for its reads, writes
//! and polls. Calls whose rule reads an argument (socket's family, ioctl's
//! request) run a handful of instructions.
//!
//! No `unsafe` here: the program is plain data (`libc::sock_filter`), installed
//! by [`super::install`].

use std::io;

use libc::sock_filter;

// Opcodes (`linux/bpf_common.h`).
const BPF_LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
const BPF_JMP_JEQ_K: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
const BPF_JMP_JGE_K: u16 = (libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K) as u16;
const BPF_JMP_JGT_K: u16 = (libc::BPF_JMP | libc::BPF_JGT | libc::BPF_K) as u16;
const BPF_JMP_JSET_K: u16 = (libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K) as u16;
const BPF_JMP_JA: u16 = (libc::BPF_JMP | libc::BPF_JA) as u16;
const BPF_ALU_AND_K: u16 = (libc::BPF_ALU | libc::BPF_AND | libc::BPF_K) as u16;
const BPF_RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;

// Offsets in `struct seccomp_data`.
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
const OFF_ARGS: u32 = 16;

/// The longest program the kernel accepts (`BPF_MAXINSNS`).
pub const MAX_INSNS: usize = 4096;

/// The `AUDIT_ARCH_*` value of the architecture this crate is built for.
#[cfg(target_arch = "x86_64")]
pub const NATIVE_ARCH: u32 = 0xc000_003e; // AUDIT_ARCH_X86_64
/// The `AUDIT_ARCH_*` value of the architecture this crate is built for.
#[cfg(target_arch = "aarch64")]
pub const NATIVE_ARCH: u32 = 0xc000_00b7; // AUDIT_ARCH_AARCH64
/// The `AUDIT_ARCH_*` value of the architecture this crate is built for.
#[cfg(target_arch = "riscv64")]
pub const NATIVE_ARCH: u32 = 0xc000_00f3; // AUDIT_ARCH_RISCV64

/// System call numbers at or above this are x32 calls on x86_64 (another ABI
/// with its own table), refused like a foreign architecture.
#[cfg(target_arch = "x86_64")]
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// What a rule does when it matches (otherwise the call is allowed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// `SECCOMP_RET_USER_NOTIF`: the supervisor answers.
    Notify,
    /// `SECCOMP_RET_ERRNO`: the call fails with this errno at once.
    Errno(u16),
}

impl Verdict {
    fn ret(self) -> u32 {
        match self {
            Verdict::Notify => libc::SECCOMP_RET_USER_NOTIF,
            Verdict::Errno(e) => libc::SECCOMP_RET_ERRNO | e as u32,
        }
    }
}

/// When a rule matches its call. Argument conditions look at the low 32 bits
/// of an argument, which is all the kernel reads of an `int` or `unsigned int`
/// argument (socket's family, ioctl's request, open's flags).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum When {
    /// Every call.
    Always,
    /// The low half of argument `arg` is one of `values` (at most 64).
    ArgIn {
        /// Argument index (0-5).
        arg: u8,
        /// The values that match.
        values: Vec<u32>,
    },
    /// The low half of argument `arg` lies in `lo..=hi`.
    ArgRange {
        /// Argument index (0-5).
        arg: u8,
        /// Lowest matching value.
        lo: u32,
        /// Highest matching value.
        hi: u32,
    },
    /// The low half of argument `arg`, masked with `mask`, equals `value`.
    ArgMasked {
        /// Argument index (0-5).
        arg: u8,
        /// Bits compared.
        mask: u32,
        /// Their wanted value.
        value: u32,
    },
    /// The low half of argument `arg` has one of the bits of `mask` set.
    ArgAnyBit {
        /// Argument index (0-5).
        arg: u8,
        /// The bits.
        mask: u32,
    },
    /// Argument `arg` (all 64 bits) is not zero (e.g. a pointer is given).
    ArgNonZero {
        /// Argument index (0-5).
        arg: u8,
    },
    /// The low half of argument `arg` is not `value`.
    ArgNotEq {
        /// Argument index (0-5).
        arg: u8,
        /// The one value that does not match.
        value: u32,
    },
}

/// One system call's rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// The system call number (`libc::SYS_*`).
    pub nr: i64,
    /// When it matches.
    pub when: When,
    /// What happens then.
    pub verdict: Verdict,
}

fn stmt(code: u16, k: u32) -> sock_filter {
    sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(code: u16, k: u32, jt: usize, jf: usize) -> io::Result<sock_filter> {
    let fit = |n: usize| u8::try_from(n).map_err(|_| too_long());
    Ok(sock_filter {
        code,
        jt: fit(jt)?,
        jf: fit(jf)?,
        k,
    })
}

fn too_long() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        "seccomp filter: a jump does not fit a classic BPF offset",
    )
}

fn arg_lo(arg: u8) -> io::Result<u32> {
    if arg > 5 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("seccomp filter: no system call argument {arg}"),
        ));
    }
    // Little-endian: the low half of args[i] comes first.
    Ok(OFF_ARGS + 8 * arg as u32)
}

/// The instructions run once the call number matched: they end in a return.
fn handler(rule: &Rule) -> io::Result<Vec<sock_filter>> {
    let allow = stmt(BPF_RET_K, libc::SECCOMP_RET_ALLOW);
    let act = stmt(BPF_RET_K, rule.verdict.ret());
    Ok(match &rule.when {
        When::Always => vec![act],
        When::ArgIn { arg, values } => {
            if values.is_empty() || values.len() > 64 {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "seccomp filter: ArgIn takes 1 to 64 values",
                ));
            }
            let mut v = vec![stmt(BPF_LD_W_ABS, arg_lo(*arg)?)];
            let n = values.len();
            for (i, x) in values.iter().enumerate() {
                // Matched: skip the remaining tests and the allow.
                v.push(jump(BPF_JMP_JEQ_K, *x, n - 1 - i + 1, 0)?);
            }
            v.push(allow);
            v.push(act);
            v
        }
        When::ArgRange { arg, lo, hi } => vec![
            stmt(BPF_LD_W_ABS, arg_lo(*arg)?),
            jump(BPF_JMP_JGE_K, *lo, 0, 1)?,
            jump(BPF_JMP_JGT_K, *hi, 0, 1)?,
            allow,
            act,
        ],
        When::ArgMasked { arg, mask, value } => vec![
            stmt(BPF_LD_W_ABS, arg_lo(*arg)?),
            stmt(BPF_ALU_AND_K, *mask),
            jump(BPF_JMP_JEQ_K, *value & *mask, 1, 0)?,
            allow,
            act,
        ],
        When::ArgAnyBit { arg, mask } => vec![
            stmt(BPF_LD_W_ABS, arg_lo(*arg)?),
            jump(BPF_JMP_JSET_K, *mask, 1, 0)?,
            allow,
            act,
        ],
        When::ArgNotEq { arg, value } => vec![
            stmt(BPF_LD_W_ABS, arg_lo(*arg)?),
            jump(BPF_JMP_JEQ_K, *value, 0, 1)?,
            allow,
            act,
        ],
        When::ArgNonZero { arg } => vec![
            stmt(BPF_LD_W_ABS, arg_lo(*arg)?),
            jump(BPF_JMP_JEQ_K, 0, 0, 3)?,
            stmt(BPF_LD_W_ABS, arg_lo(*arg)? + 4),
            jump(BPF_JMP_JEQ_K, 0, 0, 1)?,
            allow,
            act,
        ],
    })
}

/// The decision tree over `rules` (sorted by number, the call number in the
/// accumulator): halves split by one comparison, leaves of at most two numbers
/// tested in turn; every path ends in a return.
fn tree(rules: &[Rule]) -> io::Result<Vec<sock_filter>> {
    if rules.len() <= 2 {
        let mut v = Vec::new();
        for r in rules {
            let h = handler(r)?;
            v.push(jump(BPF_JMP_JEQ_K, r.nr as u32, 0, h.len())?);
            v.extend(h);
        }
        v.push(stmt(BPF_RET_K, libc::SECCOMP_RET_ALLOW));
        return Ok(v);
    }
    let mid = rules.len() / 2;
    let left = tree(&rules[..mid])?;
    let right = tree(&rules[mid..])?;
    let split = rules[mid].nr as u32;
    let mut v = Vec::with_capacity(left.len() + right.len() + 2);
    if left.len() <= 255 {
        v.push(jump(BPF_JMP_JGE_K, split, left.len(), 0)?);
    } else {
        v.push(jump(BPF_JMP_JGE_K, split, 0, 1)?);
        v.push(stmt(BPF_JMP_JA, left.len() as u32));
    }
    v.extend(left);
    v.extend(right);
    Ok(v)
}

/// A whole filter: calls of another architecture (or, on x86_64, of the x32
/// ABI) get `foreign`; then each rule's call is looked up; everything else is
/// allowed. Rules must name distinct system calls.
pub fn program(rules: &[Rule], foreign: Verdict) -> io::Result<Vec<sock_filter>> {
    let mut sorted = rules.to_vec();
    sorted.sort_by_key(|r| r.nr);
    if sorted.windows(2).any(|w| w[0].nr == w[1].nr) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "seccomp filter: two rules for one system call",
        ));
    }
    if sorted
        .iter()
        .any(|r| !(0..=u32::MAX as i64).contains(&r.nr))
    {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "seccomp filter: a system call number out of range",
        ));
    }
    let mut v = vec![
        stmt(BPF_LD_W_ABS, OFF_ARCH),
        jump(BPF_JMP_JEQ_K, NATIVE_ARCH, 1, 0)?,
        stmt(BPF_RET_K, foreign.ret()),
        stmt(BPF_LD_W_ABS, OFF_NR),
    ];
    #[cfg(target_arch = "x86_64")]
    {
        v.push(jump(BPF_JMP_JGE_K, X32_SYSCALL_BIT, 0, 1)?);
        v.push(stmt(BPF_RET_K, foreign.ret()));
    }
    v.extend(tree(&sorted)?);
    if v.len() > MAX_INSNS {
        return Err(too_long());
    }
    Ok(v)
}

/// Runs `prog` on one call as the kernel would (for tests): the value returned.
pub fn run(prog: &[sock_filter], arch: u32, nr: u32, args: [u64; 6]) -> Option<u32> {
    let mut data = [0u8; 64];
    data[0..4].copy_from_slice(&nr.to_ne_bytes());
    data[4..8].copy_from_slice(&arch.to_ne_bytes());
    for (i, a) in args.iter().enumerate() {
        data[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_le_bytes());
    }
    let (mut a, mut pc) = (0u32, 0usize);
    for _ in 0..MAX_INSNS {
        let ins = prog.get(pc)?;
        pc += 1;
        match ins.code {
            BPF_LD_W_ABS => {
                let k = ins.k as usize;
                a = u32::from_ne_bytes(data.get(k..k + 4)?.try_into().ok()?);
            }
            BPF_ALU_AND_K => a &= ins.k,
            BPF_JMP_JA => pc += ins.k as usize,
            BPF_RET_K => return Some(ins.k),
            c => {
                let hit = match c {
                    BPF_JMP_JEQ_K => a == ins.k,
                    BPF_JMP_JGE_K => a >= ins.k,
                    BPF_JMP_JGT_K => a > ins.k,
                    BPF_JMP_JSET_K => a & ins.k != 0,
                    _ => return None,
                };
                pc += if hit { ins.jt } else { ins.jf } as usize;
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOTIFY: u32 = libc::SECCOMP_RET_USER_NOTIF;
    const ALLOW: u32 = libc::SECCOMP_RET_ALLOW;

    fn rules() -> Vec<Rule> {
        let mut r = vec![
            Rule {
                nr: libc::SYS_socket,
                when: When::ArgIn {
                    arg: 0,
                    values: vec![2, 10, 16],
                },
                verdict: Verdict::Notify,
            },
            Rule {
                nr: libc::SYS_ioctl,
                when: When::ArgRange {
                    arg: 1,
                    lo: 0x8900,
                    hi: 0x89ff,
                },
                verdict: Verdict::Notify,
            },
            Rule {
                nr: libc::SYS_openat,
                when: When::ArgMasked {
                    arg: 2,
                    mask: 3,
                    value: 0,
                },
                verdict: Verdict::Notify,
            },
            Rule {
                nr: libc::SYS_sendto,
                when: When::ArgNonZero { arg: 4 },
                verdict: Verdict::Notify,
            },
            Rule {
                nr: libc::SYS_unshare,
                when: When::ArgAnyBit {
                    arg: 0,
                    mask: 0x4000_0000,
                },
                verdict: Verdict::Errno(1),
            },
            Rule {
                nr: libc::SYS_io_uring_setup,
                when: When::Always,
                verdict: Verdict::Errno(38),
            },
            Rule {
                nr: libc::SYS_sendmsg,
                when: When::ArgNotEq {
                    arg: 2,
                    value: 0x48c0,
                },
                verdict: Verdict::Notify,
            },
        ];
        for nr in [libc::SYS_bind, libc::SYS_connect, libc::SYS_getsockname] {
            r.push(Rule {
                nr,
                when: When::Always,
                verdict: Verdict::Notify,
            });
        }
        r
    }

    fn eval(nr: i64, args: [u64; 6]) -> u32 {
        let p = program(&rules(), Verdict::Errno(38)).unwrap();
        run(&p, NATIVE_ARCH, nr as u32, args).unwrap()
    }

    #[test]
    fn untrapped_calls_are_allowed() {
        for nr in [libc::SYS_read, libc::SYS_write, libc::SYS_close, 0, 1, 400] {
            assert_eq!(eval(nr, [0; 6]), ALLOW, "nr {nr}");
        }
    }

    #[test]
    fn argument_conditions() {
        assert_eq!(eval(libc::SYS_socket, [2, 1, 0, 0, 0, 0]), NOTIFY);
        assert_eq!(eval(libc::SYS_socket, [16, 3, 0, 0, 0, 0]), NOTIFY);
        assert_eq!(eval(libc::SYS_socket, [1, 1, 0, 0, 0, 0]), ALLOW);
        // Only the low half counts, as for the kernel's int argument.
        assert_eq!(
            eval(libc::SYS_socket, [(7 << 32) | 10, 1, 0, 0, 0, 0]),
            NOTIFY
        );
        assert_eq!(eval(libc::SYS_ioctl, [3, 0x8933, 0, 0, 0, 0]), NOTIFY);
        assert_eq!(eval(libc::SYS_ioctl, [3, 0x8900, 0, 0, 0, 0]), NOTIFY);
        assert_eq!(eval(libc::SYS_ioctl, [3, 0x89ff, 0, 0, 0, 0]), NOTIFY);
        assert_eq!(eval(libc::SYS_ioctl, [3, 0x88ff, 0, 0, 0, 0]), ALLOW);
        assert_eq!(eval(libc::SYS_ioctl, [3, 0x8a00, 0, 0, 0, 0]), ALLOW);
        assert_eq!(eval(libc::SYS_ioctl, [3, 0x541b, 0, 0, 0, 0]), ALLOW);
        assert_eq!(eval(libc::SYS_openat, [0, 0, 0o2000000, 0, 0, 0]), NOTIFY);
        assert_eq!(eval(libc::SYS_openat, [0, 0, 0o101, 0, 0, 0]), ALLOW);
        assert_eq!(eval(libc::SYS_sendto, [3, 0, 0, 0, 0, 0]), ALLOW);
        assert_eq!(eval(libc::SYS_sendto, [3, 0, 0, 0, 1 << 40, 0]), NOTIFY);
        assert_eq!(eval(libc::SYS_sendto, [3, 0, 0, 0, 8, 0]), NOTIFY);
        assert_eq!(
            eval(libc::SYS_unshare, [0x4000_0000, 0, 0, 0, 0, 0]),
            libc::SECCOMP_RET_ERRNO | 1
        );
        assert_eq!(eval(libc::SYS_unshare, [0x20000, 0, 0, 0, 0, 0]), ALLOW);
        assert_eq!(
            eval(libc::SYS_io_uring_setup, [0; 6]),
            libc::SECCOMP_RET_ERRNO | 38
        );
        for nr in [libc::SYS_bind, libc::SYS_connect, libc::SYS_getsockname] {
            assert_eq!(eval(nr, [0; 6]), NOTIFY);
        }
        assert_eq!(eval(libc::SYS_sendmsg, [3, 0, 0, 0, 0, 0]), NOTIFY);
        assert_eq!(eval(libc::SYS_sendmsg, [3, 0, 0x48c0, 0, 0, 0]), ALLOW);
        assert_eq!(eval(libc::SYS_sendmsg, [3, 0, 0x48c1, 0, 0, 0]), NOTIFY);
    }

    #[test]
    fn foreign_calls_are_refused() {
        let p = program(&rules(), Verdict::Errno(38)).unwrap();
        let enosys = libc::SECCOMP_RET_ERRNO | 38;
        assert_eq!(run(&p, 0x4000_0003, 0, [0; 6]), Some(enosys));
        #[cfg(target_arch = "x86_64")]
        assert_eq!(run(&p, NATIVE_ARCH, 0x4000_0000, [0; 6]), Some(enosys));
    }

    #[test]
    fn every_number_finds_its_rule() {
        // Many rules: the tree's splits and leaves all route right.
        let rules: Vec<Rule> = (0..300)
            .map(|i| Rule {
                nr: i * 3,
                when: When::Always,
                verdict: Verdict::Errno((i % 100) as u16 + 1),
            })
            .collect();
        let p = program(&rules, Verdict::Errno(38)).unwrap();
        for n in 0..1000u32 {
            let want = if n % 3 == 0 && n < 900 {
                libc::SECCOMP_RET_ERRNO | ((n / 3) % 100 + 1)
            } else {
                ALLOW
            };
            assert_eq!(run(&p, NATIVE_ARCH, n, [0; 6]), Some(want), "nr {n}");
        }
    }

    #[test]
    fn duplicate_rules_are_refused() {
        let r = Rule {
            nr: 1,
            when: When::Always,
            verdict: Verdict::Notify,
        };
        assert!(program(&[r.clone(), r], Verdict::Notify).is_err());
    }
}
