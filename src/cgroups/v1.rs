//! cgroup v1: one directory per controller. Field by field what runc 1.1's fs driver writes.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxResources};

use super::fsutil::{flat_keyed, read_trim, read_u64, write_file};
use super::stats::{self, BlkioEntry, Stats};
use super::{CgroupError, Manager};

/// The controller's directory, or an error naming the field that needs it.
fn dir<'a>(m: &'a Manager, ctrl: &str, field: &str) -> Result<&'a PathBuf, CgroupError> {
    m.v1.get(ctrl).ok_or_else(|| {
        CgroupError::field(
            field,
            format!("the {ctrl} cgroup controller is not mounted on this host"),
        )
    })
}

/// Write one value, naming the config field when the kernel refuses it.
fn set(dir: &Path, file: &str, value: &str, field: &str) -> Result<(), CgroupError> {
    write_file(&dir.join(file), value).map_err(|e| CgroupError::field(field, e.to_string()))
}

/// A new cpuset directory starts with empty cpus/mems; copy the parent's (each level) so a
/// task can join it (runc does the same).
pub fn init_cpuset(mountpoint: &Path, leaf: &Path) -> Result<(), CgroupError> {
    let Ok(rel) = leaf.strip_prefix(mountpoint) else {
        return Ok(());
    };
    let mut cur = mountpoint.to_path_buf();
    for c in rel.components() {
        let parent = cur.clone();
        cur.push(c);
        for f in ["cpuset.cpus", "cpuset.mems"] {
            let mine = read_trim(&cur.join(f)).unwrap_or_default();
            if mine.is_empty() {
                let theirs = read_trim(&parent.join(f))?;
                write_file(&cur.join(f), &theirs)?;
            }
        }
    }
    Ok(())
}

/// The freezer directory reports FROZEN (itself or an ancestor frozen).
pub fn is_frozen_path(dir: &Path) -> bool {
    let f = dir.join("freezer.state");
    f.exists() && read_trim(&f).map(|s| s == "FROZEN").unwrap_or(false)
}

pub fn is_frozen_self(dir: &Path) -> bool {
    // FREEZING counts as frozen for status: the container is being paused.
    matches!(
        read_trim(&dir.join("freezer.state")).as_deref(),
        Ok("FROZEN" | "FREEZING")
    )
}

pub fn freeze(dir: &Path, frozen: bool) -> Result<(), CgroupError> {
    let want = if frozen { "FROZEN" } else { "THAWED" };
    let f = dir.join("freezer.state");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut n = 0u32;
    loop {
        // Re-writing FROZEN nudges tasks that were mid-fork when the freeze started (runc
        // retries the same way).
        if n.is_multiple_of(50) {
            write_file(&f, want)?;
        }
        n += 1;
        if read_trim(&f)? == want {
            return Ok(());
        }
        if Instant::now() > deadline {
            if frozen {
                let _ = write_file(&f, "THAWED");
            }
            return Err(CgroupError::path(
                &f,
                format!("did not reach {want} within 10s"),
            ));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

pub fn oom_kills(dir: &Path) -> u64 {
    flat_keyed(&dir.join("memory.oom_control"))
        .get("oom_kill")
        .copied()
        .unwrap_or(0)
}

pub fn apply(m: &Manager, r: &LinuxResources) -> Result<(), CgroupError> {
    if let Some(mem) = r.memory() {
        let d = dir(m, "memory", "linux.resources.memory")?;
        apply_memory(d, mem)?;
    }
    if let Some(cpu) = r.cpu() {
        apply_cpu(m, cpu)?;
    }
    if let Some(p) = r.pids() {
        if p.limit() != 0 {
            let d = dir(m, "pids", "linux.resources.pids.limit")?;
            let v = if p.limit() > 0 {
                p.limit().to_string()
            } else {
                "max".to_string()
            };
            set(d, "pids.max", &v, "linux.resources.pids.limit")?;
        }
    }
    if let Some(b) = r.block_io() {
        apply_blkio(m, b)?;
    }
    if let Some(h) = r.hugepage_limits() {
        if !h.is_empty() {
            match m.v1.get("hugetlb") {
                Some(d) => {
                    for l in h {
                        let file = format!("hugetlb.{}.limit_in_bytes", l.page_size());
                        let field = format!("linux.resources.hugepageLimits[{}]", l.page_size());
                        check_page_size(d, &file, &field)?;
                        set(d, &file, &l.limit().to_string(), &field)?;
                    }
                }
                // Hybrid hosts may have hugetlb on cgroup2 only: Manager::apply does it there.
                None if m.v2.is_some() => {}
                None => {
                    return Err(CgroupError::field(
                        "linux.resources.hugepageLimits",
                        "the hugetlb cgroup controller is not mounted on this host",
                    ))
                }
            }
        }
    }
    if let Some(n) = r.network() {
        if let Some(c) = n.class_id() {
            let d = dir(m, "net_cls", "linux.resources.network.classID")?;
            set(
                d,
                "net_cls.classid",
                &c.to_string(),
                "linux.resources.network.classID",
            )?;
        }
        if let Some(ps) = n.priorities() {
            if !ps.is_empty() {
                let d = dir(m, "net_prio", "linux.resources.network.priorities")?;
                for p in ps {
                    set(
                        d,
                        "net_prio.ifpriomap",
                        &format!("{} {}", p.name(), p.priority()),
                        "linux.resources.network.priorities",
                    )?;
                }
            }
        }
    }
    if let Some(rd) = r.rdma() {
        if !rd.is_empty() {
            let d = dir(m, "rdma", "linux.resources.rdma")?;
            for (dev, l) in rd {
                set(
                    d,
                    "rdma.max",
                    &super::v2::rdma_line(dev, l),
                    "linux.resources.rdma",
                )?;
            }
        }
    }
    if let Some(devs) = r.devices() {
        if let Some(d) = m.v1.get("devices") {
            apply_devices(d, devs)?;
        }
    }
    Ok(())
}

/// A hugepage size the kernel does not have: name it rather than "no such file".
pub(crate) fn check_page_size(d: &Path, file: &str, field: &str) -> Result<(), CgroupError> {
    if d.join(file).exists() {
        Ok(())
    } else {
        Err(CgroupError::field(
            field,
            format!(
                "hugepage size not supported by this host (no {})",
                d.join(file).display()
            ),
        ))
    }
}

fn apply_memory(d: &Path, mem: &oci_spec::runtime::LinuxMemory) -> Result<(), CgroupError> {
    for (name, v) in [
        ("limit", mem.limit()),
        ("swap", mem.swap()),
        ("reservation", mem.reservation()),
        ("kernelTCP", mem.kernel_tcp()),
    ] {
        if let Some(v) = v {
            if v < -1 {
                return Err(CgroupError::field(
                    &format!("linux.resources.memory.{name}"),
                    format!("{v} is invalid: use a positive number of bytes, or -1 for unlimited"),
                ));
            }
        }
    }
    let limit = mem.limit().unwrap_or(0);
    let mut swap = mem.swap().unwrap_or(0);
    let memsw = d.join("memory.memsw.limit_in_bytes");
    if limit == -1 && swap == 0 && memsw.exists() {
        swap = -1;
    }
    let set_limit = || -> Result<(), CgroupError> {
        if limit != 0 {
            write_file(&d.join("memory.limit_in_bytes"), &limit.to_string()).map_err(|e| {
                let usage = read_u64(&d.join("memory.usage_in_bytes"));
                CgroupError::field(
                    "linux.resources.memory.limit",
                    format!("unable to set memory limit to {limit} (current usage: {usage}): {e}"),
                )
            })?;
        }
        Ok(())
    };
    let set_swap = || -> Result<(), CgroupError> {
        if swap != 0 {
            if !memsw.exists() {
                return Err(CgroupError::field(
                    "linux.resources.memory.swap",
                    "swap accounting is not enabled on this host (no memory.memsw.limit_in_bytes)",
                ));
            }
            set(
                d,
                "memory.memsw.limit_in_bytes",
                &swap.to_string(),
                "linux.resources.memory.swap",
            )?;
        }
        Ok(())
    };
    // Order the two writes so that the kernel's rule memsw >= limit holds in between.
    let cur = read_u64(&d.join("memory.limit_in_bytes"));
    if limit != 0 && swap != 0 && (swap == -1 || cur < swap as u64) {
        set_swap()?;
        set_limit()?;
    } else {
        set_limit()?;
        set_swap()?;
    }
    if let Some(k) = mem.kernel() {
        if k != 0 {
            crate::logging::warn(
                "linux.resources.memory.kernel: kernel memory limits are deprecated and ignored (as runc)",
            );
        }
    }
    if let Some(k) = mem.kernel_tcp() {
        if k != 0 {
            set(
                d,
                "memory.kmem.tcp.limit_in_bytes",
                &k.to_string(),
                "linux.resources.memory.kernelTCP",
            )?;
        }
    }
    if let Some(r) = mem.reservation() {
        if r != 0 {
            set(
                d,
                "memory.soft_limit_in_bytes",
                &r.to_string(),
                "linux.resources.memory.reservation",
            )?;
        }
    }
    if mem.disable_oom_killer() == Some(true) {
        set(
            d,
            "memory.oom_control",
            "1",
            "linux.resources.memory.disableOOMKiller",
        )?;
    }
    if let Some(s) = mem.swappiness() {
        // runc treats -1 (as u64: u64::MAX) as unset.
        if s != u64::MAX {
            if s > 100 {
                return Err(CgroupError::field(
                    "linux.resources.memory.swappiness",
                    format!("invalid memory swappiness value: {s} (valid range is 0-100)"),
                ));
            }
            set(
                d,
                "memory.swappiness",
                &s.to_string(),
                "linux.resources.memory.swappiness",
            )?;
        }
    }
    Ok(())
}

fn apply_cpu(m: &Manager, cpu: &oci_spec::runtime::LinuxCpu) -> Result<(), CgroupError> {
    let needs_cpu = cpu.shares().unwrap_or(0) != 0
        || cpu.quota().unwrap_or(0) != 0
        || cpu.period().unwrap_or(0) != 0
        || cpu.burst().is_some()
        || cpu.realtime_period().unwrap_or(0) != 0
        || cpu.realtime_runtime().unwrap_or(0) != 0
        || cpu.idle().is_some();
    if needs_cpu {
        let d = dir(m, "cpu", "linux.resources.cpu")?;
        if let Some(s) = cpu.shares() {
            if s != 0 {
                set(
                    d,
                    "cpu.shares",
                    &s.to_string(),
                    "linux.resources.cpu.shares",
                )?;
                let got = read_u64(&d.join("cpu.shares"));
                if s > got {
                    return Err(CgroupError::field(
                        "linux.resources.cpu.shares",
                        format!("the maximum allowed cpu-shares is {got}"),
                    ));
                } else if s < got {
                    return Err(CgroupError::field(
                        "linux.resources.cpu.shares",
                        format!("the minimum allowed cpu-shares is {got}"),
                    ));
                }
            }
        }
        let period = cpu.period().unwrap_or(0);
        let mut period_pending = false;
        if period != 0 {
            // A shorter period may conflict with the current quota: retry after the quota.
            if write_file(&d.join("cpu.cfs_period_us"), &period.to_string()).is_err() {
                period_pending = true;
            }
        }
        if let Some(q) = cpu.quota() {
            if q != 0 {
                set(
                    d,
                    "cpu.cfs_quota_us",
                    &q.to_string(),
                    "linux.resources.cpu.quota",
                )?;
            }
        }
        if period_pending {
            set(
                d,
                "cpu.cfs_period_us",
                &period.to_string(),
                "linux.resources.cpu.period",
            )?;
        }
        if let Some(b) = cpu.burst() {
            set(
                d,
                "cpu.cfs_burst_us",
                &b.to_string(),
                "linux.resources.cpu.burst",
            )?;
        }
        if let Some(p) = cpu.realtime_period() {
            if p != 0 {
                set(
                    d,
                    "cpu.rt_period_us",
                    &p.to_string(),
                    "linux.resources.cpu.realtimePeriod",
                )?;
            }
        }
        if let Some(r) = cpu.realtime_runtime() {
            if r != 0 {
                set(
                    d,
                    "cpu.rt_runtime_us",
                    &r.to_string(),
                    "linux.resources.cpu.realtimeRuntime",
                )?;
            }
        }
        if let Some(i) = cpu.idle() {
            set(d, "cpu.idle", &i.to_string(), "linux.resources.cpu.idle")?;
        }
    }
    if let Some(c) = cpu.cpus().as_deref().filter(|s| !s.is_empty()) {
        let d = dir(m, "cpuset", "linux.resources.cpu.cpus")?;
        set(d, "cpuset.cpus", c, "linux.resources.cpu.cpus")?;
    }
    if let Some(c) = cpu.mems().as_deref().filter(|s| !s.is_empty()) {
        let d = dir(m, "cpuset", "linux.resources.cpu.mems")?;
        set(d, "cpuset.mems", c, "linux.resources.cpu.mems")?;
    }
    Ok(())
}

fn apply_blkio(m: &Manager, b: &oci_spec::runtime::LinuxBlockIo) -> Result<(), CgroupError> {
    let any = b.weight().unwrap_or(0) != 0
        || b.leaf_weight().unwrap_or(0) != 0
        || b.weight_device().as_ref().is_some_and(|v| !v.is_empty())
        || b.throttle_read_bps_device()
            .as_ref()
            .is_some_and(|v| !v.is_empty())
        || b.throttle_write_bps_device()
            .as_ref()
            .is_some_and(|v| !v.is_empty())
        || b.throttle_read_iops_device()
            .as_ref()
            .is_some_and(|v| !v.is_empty())
        || b.throttle_write_iops_device()
            .as_ref()
            .is_some_and(|v| !v.is_empty());
    if !any {
        return Ok(());
    }
    let d = dir(m, "blkio", "linux.resources.blockIO")?;
    // CFQ's blkio.weight, or BFQ's blkio.bfq.weight on newer kernels (runc picks the same way).
    let (weight, weight_dev) = if d.join("blkio.weight").exists() {
        ("blkio.weight", "blkio.weight_device")
    } else {
        ("blkio.bfq.weight", "blkio.bfq.weight_device")
    };
    if let Some(w) = b.weight() {
        if w != 0 {
            set(d, weight, &w.to_string(), "linux.resources.blockIO.weight")?;
        }
    }
    if let Some(w) = b.leaf_weight() {
        if w != 0 {
            set(
                d,
                "blkio.leaf_weight",
                &w.to_string(),
                "linux.resources.blockIO.leafWeight",
            )?;
        }
    }
    for wd in b.weight_device().iter().flatten() {
        if let Some(w) = wd.weight() {
            if w != 0 {
                set(
                    d,
                    weight_dev,
                    &format!("{}:{} {}", wd.major(), wd.minor(), w),
                    "linux.resources.blockIO.weightDevice",
                )?;
            }
        }
        if let Some(w) = wd.leaf_weight() {
            if w != 0 {
                set(
                    d,
                    "blkio.leaf_weight_device",
                    &format!("{}:{} {}", wd.major(), wd.minor(), w),
                    "linux.resources.blockIO.weightDevice.leafWeight",
                )?;
            }
        }
    }
    for (list, file, field) in [
        (
            b.throttle_read_bps_device(),
            "blkio.throttle.read_bps_device",
            "throttleReadBpsDevice",
        ),
        (
            b.throttle_write_bps_device(),
            "blkio.throttle.write_bps_device",
            "throttleWriteBpsDevice",
        ),
        (
            b.throttle_read_iops_device(),
            "blkio.throttle.read_iops_device",
            "throttleReadIOPSDevice",
        ),
        (
            b.throttle_write_iops_device(),
            "blkio.throttle.write_iops_device",
            "throttleWriteIOPSDevice",
        ),
    ] {
        for t in list.iter().flatten() {
            set(
                d,
                file,
                &format!("{}:{} {}", t.major(), t.minor(), t.rate()),
                &format!("linux.resources.blockIO.{field}"),
            )?;
        }
    }
    Ok(())
}

/// runc's default device rules, appended after the config's (later rules win).
pub(crate) const DEFAULT_RULES: &[&str] = &[
    "c *:* m",
    "b *:* m",
    "c 1:3 rwm",
    "c 1:8 rwm",
    "c 1:7 rwm",
    "c 5:0 rwm",
    "c 1:5 rwm",
    "c 1:9 rwm",
    "c 136:* rwm",
    "c 5:2 rwm",
    "c 10:200 rwm",
];

/// `type major:minor access` of a rule.
pub(crate) fn rule_text(r: &LinuxDeviceCgroup) -> Result<String, CgroupError> {
    let t = r
        .typ()
        .map(|t| t.as_str().to_string())
        .unwrap_or_else(|| "a".into());
    if !matches!(t.as_str(), "a" | "b" | "c") {
        return Err(CgroupError::field(
            "linux.resources.devices[].type",
            format!("{t:?} is not a cgroup device type (a, b or c)"),
        ));
    }
    let num = |n: Option<i64>| {
        n.filter(|v| *v >= 0)
            .map(|v| v.to_string())
            .unwrap_or("*".into())
    };
    let access = r.access().clone().unwrap_or_else(|| "rwm".into());
    if access.is_empty() || !access.chars().all(|c| matches!(c, 'r' | 'w' | 'm')) {
        return Err(CgroupError::field(
            "linux.resources.devices[].access",
            format!("{access:?}: only r, w and m are allowed"),
        ));
    }
    Ok(format!(
        "{t} {}:{} {access}",
        num(r.major()),
        num(r.minor())
    ))
}

fn apply_devices(d: &Path, rules: &[LinuxDeviceCgroup]) -> Result<(), CgroupError> {
    // runc's semantics on both versions: start from "deny everything", then the rules.
    let mut lines: Vec<(bool, String)> = vec![(false, "a *:* rwm".to_string())];
    for r in rules {
        lines.push((r.allow(), rule_text(r)?));
    }
    for r in DEFAULT_RULES {
        lines.push((true, r.to_string()));
    }
    for (allow, text) in lines {
        let file = if allow {
            "devices.allow"
        } else {
            "devices.deny"
        };
        set(d, file, &text, "linux.resources.devices")?;
    }
    Ok(())
}

pub fn stats(m: &Manager) -> Stats {
    let mut s = Stats::default();
    if let Some(d) = m.v1.get("cpuacct") {
        s.cpu.usage.total = read_u64(&d.join("cpuacct.usage"));
        let list = |f: &str| -> Vec<u64> {
            read_trim(&d.join(f))
                .map(|t| {
                    t.split_whitespace()
                        .filter_map(|v| v.parse().ok())
                        .collect()
                })
                .unwrap_or_default()
        };
        s.cpu.usage.percpu = list("cpuacct.usage_percpu");
        s.cpu.usage.percpu_kernel = list("cpuacct.usage_percpu_sys");
        s.cpu.usage.percpu_user = list("cpuacct.usage_percpu_user");
        let st = flat_keyed(&d.join("cpuacct.stat"));
        // USER_HZ ticks to nanoseconds (USER_HZ is 100 on Linux).
        s.cpu.usage.user = st.get("user").copied().unwrap_or(0) * 10_000_000;
        s.cpu.usage.kernel = st.get("system").copied().unwrap_or(0) * 10_000_000;
    }
    if let Some(d) = m.v1.get("cpu") {
        let st = flat_keyed(&d.join("cpu.stat"));
        s.cpu.throttling.periods = st.get("nr_periods").copied().unwrap_or(0);
        s.cpu.throttling.throttled_periods = st.get("nr_throttled").copied().unwrap_or(0);
        s.cpu.throttling.throttled_time = st.get("throttled_time").copied().unwrap_or(0);
    }
    if let Some(d) = m.v1.get("cpuset") {
        s.cpuset.cpus = stats::parse_list(&read_trim(&d.join("cpuset.cpus")).unwrap_or_default());
        s.cpuset.mems = stats::parse_list(&read_trim(&d.join("cpuset.mems")).unwrap_or_default());
        s.cpuset.cpu_exclusive = read_u64(&d.join("cpuset.cpu_exclusive"));
        s.cpuset.mem_hardwall = read_u64(&d.join("cpuset.mem_hardwall"));
        s.cpuset.mem_exclusive = read_u64(&d.join("cpuset.mem_exclusive"));
        s.cpuset.memory_migrate = read_u64(&d.join("cpuset.memory_migrate"));
        s.cpuset.memory_spread_page = read_u64(&d.join("cpuset.memory_spread_page"));
        s.cpuset.memory_spread_slab = read_u64(&d.join("cpuset.memory_spread_slab"));
        s.cpuset.memory_pressure = read_u64(&d.join("cpuset.memory_pressure"));
        s.cpuset.sched_load_balance = read_u64(&d.join("cpuset.sched_load_balance"));
        s.cpuset.sched_relax_domain_level = read_trim(&d.join("cpuset.sched_relax_domain_level"))
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
    }
    if let Some(d) = m.v1.get("memory") {
        let entry = |prefix: &str| super::stats::MemoryEntry {
            limit: read_u64(&d.join(format!("{prefix}.limit_in_bytes"))),
            usage: read_u64(&d.join(format!("{prefix}.usage_in_bytes"))),
            max: read_u64(&d.join(format!("{prefix}.max_usage_in_bytes"))),
            failcnt: read_u64(&d.join(format!("{prefix}.failcnt"))),
        };
        s.memory.usage = entry("memory");
        s.memory.swap = entry("memory.memsw");
        s.memory.kernel = entry("memory.kmem");
        s.memory.kernel_tcp = entry("memory.kmem.tcp");
        s.memory.raw = flat_keyed(&d.join("memory.stat"));
        s.memory.cache = s.memory.raw.get("cache").copied().unwrap_or(0);
    }
    if let Some(d) = m.v1.get("pids") {
        s.pids.current = read_u64(&d.join("pids.current"));
        s.pids.limit = read_u64(&d.join("pids.max"));
    }
    if let Some(d) = m.v1.get("blkio") {
        for (name, bytes) in [
            ("blkio.io_service_bytes_recursive", true),
            ("blkio.io_serviced_recursive", false),
            ("blkio.bfq.io_service_bytes_recursive", true),
            ("blkio.bfq.io_serviced_recursive", false),
            ("blkio.throttle.io_service_bytes_recursive", true),
            ("blkio.throttle.io_serviced_recursive", false),
        ] {
            let target = if bytes {
                &mut s.blkio.io_service_bytes_recursive
            } else {
                &mut s.blkio.io_serviced_recursive
            };
            if target.is_empty() {
                *target = blkio_entries(&d.join(name));
            }
        }
    }
    if let Some(d) = m.v1.get("hugetlb") {
        for size in hugepage_sizes() {
            s.hugetlb.insert(
                size.clone(),
                stats::Hugetlb {
                    usage: read_u64(&d.join(format!("hugetlb.{size}.usage_in_bytes"))),
                    max: read_u64(&d.join(format!("hugetlb.{size}.max_usage_in_bytes"))),
                    failcnt: read_u64(&d.join(format!("hugetlb.{size}.failcnt"))),
                },
            );
        }
    }
    s
}

/// `8:0 Read 4096` lines.
fn blkio_entries(p: &Path) -> Vec<BlkioEntry> {
    let mut out = Vec::new();
    let Ok(t) = std::fs::read_to_string(p) else {
        return out;
    };
    for l in t.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() != 3 {
            continue;
        }
        let Some((maj, min)) = f[0].split_once(':') else {
            continue;
        };
        out.push(BlkioEntry {
            major: maj.parse().unwrap_or(0),
            minor: min.parse().unwrap_or(0),
            op: f[1].to_string(),
            value: f[2].parse().unwrap_or(0),
        });
    }
    out
}

/// The host's hugepage sizes in cgroup notation ("2MB", "1GB").
pub fn hugepage_sizes() -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir("/sys/kernel/mm/hugepages") {
        for e in rd.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if let Some(kb) = n
                .strip_prefix("hugepages-")
                .and_then(|s| s.strip_suffix("kB"))
                .and_then(|s| s.parse::<u64>().ok())
            {
                out.push(if kb >= 1 << 20 {
                    format!("{}GB", kb >> 20)
                } else if kb >= 1 << 10 {
                    format!("{}MB", kb >> 10)
                } else {
                    format!("{kb}KB")
                });
            }
        }
    }
    out.sort();
    out
}
