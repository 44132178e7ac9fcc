//! Device access rules on cgroup v2: an eBPF program (BPF_PROG_TYPE_CGROUP_DEVICE) attached
//! to the container's cgroup2 directory, built as runc's devicefilter does:
//! the rules are first folded the way the v1 devices controller folds them (starting from
//! "deny everything", runc's semantics on both versions; a wildcard `a` rule resets the
//! default; other rules add or remove exceptions), then the program checks the exceptions in
//! order and falls back to the default.

use std::os::fd::AsFd;
use std::path::Path;

use oci_spec::runtime::LinuxDeviceCgroup;

use super::CgroupError;
use crate::sys::bpf::{self, BpfInsn};

/// One folded rule: type ('a', 'b', 'c'), major/minor (None = any), access bits
/// (BPF_DEVCG_ACC_MKNOD 1, READ 2, WRITE 4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub typ: char,
    pub major: Option<i64>,
    pub minor: Option<i64>,
    pub access: i32,
}

fn access_bits(s: &str) -> i32 {
    s.chars()
        .map(|c| match c {
            'm' => 1,
            'r' => 2,
            'w' => 4,
            _ => 0,
        })
        .fold(0, |a, b| a | b)
}

/// Parse `type major:minor access` (the v1 text form, as produced by `v1::rule_text`).
pub fn parse(text: &str) -> Option<Rule> {
    let mut it = text.split_whitespace();
    let typ = it.next()?.chars().next()?;
    let (maj, min) = it.next()?.split_once(':')?;
    let num = |s: &str| {
        if s == "*" {
            Some(None)
        } else {
            s.parse().ok().map(Some)
        }
    };
    Some(Rule {
        typ,
        major: num(maj)?,
        minor: num(min)?,
        access: access_bits(it.next()?),
    })
}

/// The v1 devices controller's folding: (default allow?, exceptions).
pub fn fold(rules: &[(bool, Rule)]) -> (bool, Vec<Rule>) {
    let mut default_allow = false;
    let mut exc: Vec<Rule> = Vec::new();
    for (allow, r) in rules {
        if r.typ == 'a' && r.major.is_none() && r.minor.is_none() && r.access == 7 {
            default_allow = *allow;
            exc.clear();
            continue;
        }
        let same = |e: &Rule| e.typ == r.typ && e.major == r.major && e.minor == r.minor;
        if *allow != default_allow {
            match exc.iter_mut().find(|e| same(e)) {
                Some(e) => e.access |= r.access,
                None => exc.push(r.clone()),
            }
        } else {
            for e in exc.iter_mut().filter(|e| same(e)) {
                e.access &= !r.access;
            }
            exc.retain(|e| e.access != 0);
        }
    }
    (default_allow, exc)
}

const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> BpfInsn {
    BpfInsn {
        code,
        regs: dst | (src << 4),
        off,
        imm,
    }
}

// Opcodes (linux/bpf_common.h, linux/bpf.h).
const LDX_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
const AND32_K: u8 = 0x54; // BPF_ALU | BPF_AND | BPF_K
const RSH32_K: u8 = 0x74; // BPF_ALU | BPF_RSH | BPF_K
const MOV32_X: u8 = 0xbc; // BPF_ALU | BPF_MOV | BPF_X
const MOV64_K: u8 = 0xb7; // BPF_ALU64 | BPF_MOV | BPF_K
const JNE_K: u8 = 0x55; // BPF_JMP | BPF_JNE | BPF_K
const JNE_X: u8 = 0x5d; // BPF_JMP | BPF_JNE | BPF_X
const EXIT: u8 = 0x95; // BPF_JMP | BPF_EXIT

/// The program: r2 = type, r3 = access, r4 = major, r5 = minor (struct bpf_cgroup_dev_ctx:
/// access_type = access << 16 | type, major, minor); each exception returns !default.
pub fn program(default_allow: bool, exc: &[Rule]) -> Vec<BpfInsn> {
    let mut p = vec![
        insn(LDX_W, 2, 1, 0, 0),
        insn(AND32_K, 2, 0, 0, 0xffff),
        insn(LDX_W, 3, 1, 0, 0),
        insn(RSH32_K, 3, 0, 0, 16),
        insn(LDX_W, 4, 1, 4, 0),
        insn(LDX_W, 5, 1, 8, 0),
    ];
    for r in exc {
        // (instruction, jumps to the end of this block on mismatch)
        let mut block: Vec<(BpfInsn, bool)> = Vec::new();
        match r.typ {
            'b' => block.push((insn(JNE_K, 2, 0, 0, 1), true)),
            'c' => block.push((insn(JNE_K, 2, 0, 0, 2), true)),
            _ => {}
        }
        if r.access != 7 {
            block.push((insn(MOV32_X, 1, 3, 0, 0), false));
            block.push((insn(AND32_K, 1, 0, 0, r.access), false));
            block.push((insn(JNE_X, 1, 3, 0, 0), true));
        }
        if let Some(m) = r.major {
            block.push((insn(JNE_K, 4, 0, 0, m as i32), true));
        }
        if let Some(m) = r.minor {
            block.push((insn(JNE_K, 5, 0, 0, m as i32), true));
        }
        block.push((insn(MOV64_K, 0, 0, 0, i32::from(!default_allow)), false));
        block.push((insn(EXIT, 0, 0, 0, 0), false));
        let len = block.len();
        for (i, (mut ins, jumps)) in block.into_iter().enumerate() {
            if jumps {
                ins.off = (len - i - 1) as i16;
            }
            p.push(ins);
        }
    }
    p.push(insn(MOV64_K, 0, 0, 0, i32::from(default_allow)));
    p.push(insn(EXIT, 0, 0, 0, 0));
    p
}

/// Build, load and attach the program for these rules (config rules, then runc's defaults).
pub fn apply_bpf(dir: &Path, rules: &[LinuxDeviceCgroup]) -> Result<(), CgroupError> {
    let field = "linux.resources.devices";
    let mut all = Vec::new();
    for r in rules {
        let text = super::v1::rule_text(r)?;
        let rule = parse(&text)
            .ok_or_else(|| CgroupError::field(field, format!("cannot parse rule {text:?}")))?;
        all.push((r.allow(), rule));
    }
    for d in super::v1::DEFAULT_RULES {
        if let Some(rule) = parse(d) {
            all.push((true, rule));
        }
    }
    let (default_allow, exc) = fold(&all);
    let prog = program(default_allow, &exc);
    let fd = bpf::load_cgroup_device_prog(&prog).map_err(|(e, log)| {
        CgroupError::field(field, format!("load the eBPF device filter: {e}: {log}"))
    })?;
    let dirfd =
        std::fs::File::open(dir).map_err(|e| CgroupError::path(dir, format!("open: {e}")))?;
    bpf::attach_cgroup_device(dirfd.as_fd(), fd.as_fd()).map_err(|e| {
        CgroupError::field(
            field,
            format!("attach the eBPF device filter to {}: {e}", dir.display()),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> Rule {
        parse(s).unwrap()
    }

    #[test]
    fn folding_like_v1() {
        let rules = vec![
            (false, r("a *:* rwm")),
            (true, r("c 1:3 rwm")),
            (true, r("c 1:3 r")),
            (false, r("c 1:3 w")),
        ];
        let (def, exc) = fold(&rules);
        assert!(!def);
        assert_eq!(exc, vec![r("c 1:3 rm")]);
        let (def, exc) = fold(&[(true, r("a *:* rwm")), (false, r("b 8:0 rwm"))]);
        assert!(def);
        assert_eq!(exc, vec![r("b 8:0 rwm")]);
    }

    #[test]
    fn jumps_land_on_the_next_block() {
        let p = program(false, &[r("c 1:3 rw"), r("b *:* m")]);
        // Every jump stays inside the program.
        for (i, ins) in p.iter().enumerate() {
            if ins.code == JNE_K || ins.code == JNE_X {
                assert!(i + 1 + (ins.off as usize) < p.len());
            }
        }
        assert_eq!(p.last().unwrap().code, EXIT);
    }
}
