//! cgroup v2 (the unified hierarchy): runc 1.1's fs2 driver, field by field, with its v1→v2
//! conversions (cpu shares → cpu.weight, blkio weight → io.weight, memory+swap → swap only).

use std::path::Path;
use std::time::{Duration, Instant};

use oci_spec::runtime::{LinuxRdma, LinuxResources};

use super::fsutil::{flat_keyed, read_trim, read_u64, write_file};
use super::layout::Hierarchies;
use super::stats::{self, BlkioEntry, Stats};
use super::{CgroupError, Manager};

fn set(dir: &Path, file: &str, value: &str, field: &str) -> Result<(), CgroupError> {
    let p = dir.join(file);
    if !p.exists() {
        return Err(CgroupError::field(
            field,
            format!(
                "{} does not exist: the controller is not available to this cgroup",
                p.display()
            ),
        ));
    }
    write_file(&p, value).map_err(|e| CgroupError::field(field, e.to_string()))
}

/// Enable every controller the parent offers in its subtree, best effort (runc does too).
pub fn enable_all_controllers(dir: &Path) {
    let Ok(avail) = read_trim(&dir.join("cgroup.controllers")) else {
        return;
    };
    let all: Vec<String> = avail.split_whitespace().map(|c| format!("+{c}")).collect();
    if all.is_empty() {
        return;
    }
    let st = dir.join("cgroup.subtree_control");
    if write_file(&st, &all.join(" ")).is_err() {
        for c in all {
            let _ = write_file(&st, &c);
        }
    }
}

/// Make `ctrl` available in `leaf`: enable it in each ancestor's subtree_control from the
/// mount down (a hybrid host's cgroup2 root offers hugetlb but does not enable it).
pub fn ensure_controller(leaf: &Path, ctrl: &str, field: &str) -> Result<(), CgroupError> {
    let has = |d: &Path| {
        read_trim(&d.join("cgroup.controllers"))
            .map(|s| s.split_whitespace().any(|c| c == ctrl))
            .unwrap_or(false)
    };
    if has(leaf) {
        return Ok(());
    }
    let mnt = Hierarchies::get()?
        .v2
        .as_ref()
        .map(|m| m.mountpoint.clone())
        .ok_or_else(|| CgroupError::field(field, "cgroup2 is not mounted"))?;
    let rel = leaf
        .strip_prefix(&mnt)
        .map_err(|_| CgroupError::path(leaf, "not below the cgroup2 mount"))?;
    let mut cur = mnt.clone();
    for c in rel.components() {
        if !has(&cur) {
            break;
        }
        let st = cur.join("cgroup.subtree_control");
        let enabled = read_trim(&st)
            .map(|s| s.split_whitespace().any(|c| c == ctrl))
            .unwrap_or(false);
        if !enabled {
            write_file(&st, &format!("+{ctrl}")).map_err(|e| {
                CgroupError::field(field, format!("enable the {ctrl} controller: {e}"))
            })?;
        }
        cur.push(c);
    }
    if has(leaf) {
        Ok(())
    } else {
        Err(CgroupError::field(
            field,
            format!("the {ctrl} cgroup controller is not available on this host"),
        ))
    }
}

pub fn is_frozen_path(dir: &Path) -> bool {
    flat_keyed(&dir.join("cgroup.events"))
        .get("frozen")
        .copied()
        == Some(1)
}

pub fn freeze(dir: &Path, frozen: bool) -> Result<(), CgroupError> {
    write_file(&dir.join("cgroup.freeze"), if frozen { "1" } else { "0" })?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while is_frozen_path(dir) != frozen {
        if Instant::now() > deadline {
            if frozen {
                let _ = write_file(&dir.join("cgroup.freeze"), "0");
            }
            return Err(CgroupError::path(
                dir,
                format!(
                    "cgroup.events did not report frozen {} within 10s",
                    frozen as u8
                ),
            ));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(())
}

pub fn oom_kills(dir: &Path) -> u64 {
    flat_keyed(&dir.join("memory.events"))
        .get("oom_kill")
        .copied()
        .unwrap_or(0)
}

pub fn rdma_line(dev: &str, l: &LinuxRdma) -> String {
    let mut s = dev.to_string();
    if let Some(h) = l.hca_handles() {
        s.push_str(&format!(" hca_handle={h}"));
    }
    if let Some(o) = l.hca_objects() {
        s.push_str(&format!(" hca_object={o}"));
    }
    s
}

/// runc's ConvertMemorySwapToCgroupV2Value: OCI's swap is memory+swap; v2's is swap alone.
fn swap_v2(swap: i64, limit: i64) -> Result<Option<String>, CgroupError> {
    let f = "linux.resources.memory.swap";
    if limit == -1 && swap == 0 {
        return Ok(Some("max".into()));
    }
    match swap {
        0 => Ok(None),
        -1 => Ok(Some("max".into())),
        _ if limit == 0 || limit == -1 => Err(CgroupError::field(
            f,
            "unable to set swap limit without memory limit",
        )),
        _ if swap < limit => Err(CgroupError::field(
            f,
            format!("memory+swap limit ({swap}) should be >= memory limit ({limit})"),
        )),
        _ => Ok(Some((swap - limit).to_string())),
    }
}

fn limit_str(v: i64) -> String {
    if v < 0 {
        "max".into()
    } else {
        v.to_string()
    }
}

/// cpu.shares (2..262144) → cpu.weight (1..10000), runc's formula.
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        0
    } else {
        1 + ((shares.saturating_sub(2)) * 9999) / 262142
    }
}

/// blkio weight (10..1000) → io.weight (1..10000), runc's formula.
pub fn blkio_to_io_weight(w: u16) -> u64 {
    if w == 0 {
        0
    } else {
        1 + (u64::from(w).saturating_sub(10)) * 9999 / 990
    }
}

pub fn apply(d: &Path, r: &LinuxResources) -> Result<(), CgroupError> {
    if let Some(mem) = r.memory() {
        for (name, v) in [
            ("limit", mem.limit()),
            ("swap", mem.swap()),
            ("reservation", mem.reservation()),
        ] {
            if let Some(v) = v {
                if v < -1 {
                    return Err(CgroupError::field(
                        &format!("linux.resources.memory.{name}"),
                        format!(
                            "{v} is invalid: use a positive number of bytes, or -1 for unlimited"
                        ),
                    ));
                }
            }
        }
        let limit = mem.limit().unwrap_or(0);
        let swap = swap_v2(mem.swap().unwrap_or(0), limit)?;
        let any = limit != 0 || swap.is_some() || mem.reservation().unwrap_or(0) != 0;
        if any {
            ensure_controller(d, "memory", "linux.resources.memory")?;
        }
        if let Some(s) = swap {
            let p = d.join("memory.swap.max");
            // Without swap accounting, "max"/"0" are what the host does anyway (runc ignores).
            if p.exists() {
                write_file(&p, &s).map_err(|e| {
                    CgroupError::field("linux.resources.memory.swap", e.to_string())
                })?;
            } else if s != "max" && s != "0" {
                return Err(CgroupError::field(
                    "linux.resources.memory.swap",
                    "swap accounting is not enabled on this host (no memory.swap.max)",
                ));
            }
        }
        if limit != 0 {
            if mem.check_before_update() == Some(true) && limit > 0 {
                let cur = read_u64(&d.join("memory.current"));
                if cur > limit as u64 {
                    return Err(CgroupError::field(
                        "linux.resources.memory.limit",
                        format!("rejecting memory limit {limit} below current usage {cur}"),
                    ));
                }
            }
            set(
                d,
                "memory.max",
                &limit_str(limit),
                "linux.resources.memory.limit",
            )?;
        }
        if let Some(res) = mem.reservation() {
            if res != 0 {
                set(
                    d,
                    "memory.low",
                    &limit_str(res),
                    "linux.resources.memory.reservation",
                )?;
            }
        }
        // Out of range is bad input on every layout (the same config must not be accepted
        // or refused depending on the host); in range, v2 has no such knob.
        if let Some(s) = mem.swappiness().filter(|s| *s != u64::MAX && *s > 100) {
            return Err(CgroupError::field(
                "linux.resources.memory.swappiness",
                format!("invalid memory swappiness value: {s} (valid range is 0-100)"),
            ));
        }
        if mem.swappiness().is_some_and(|s| s != u64::MAX) {
            crate::logging::warn(
                "linux.resources.memory.swappiness: not supported on cgroup v2, ignored (as runc)",
            );
        }
        if mem.kernel().unwrap_or(0) != 0 || mem.kernel_tcp().unwrap_or(0) != 0 {
            crate::logging::warn("linux.resources.memory.kernel/kernelTCP: not supported on cgroup v2, ignored (as runc)");
        }
    }
    if let Some(cpu) = r.cpu() {
        if cpu.realtime_period().unwrap_or(0) != 0 || cpu.realtime_runtime().unwrap_or(0) != 0 {
            return Err(CgroupError::field(
                "linux.resources.cpu.realtimeRuntime",
                "real-time CPU scheduling is not supported on cgroup v2",
            ));
        }
        let shares = cpu.shares().unwrap_or(0);
        let quota = cpu.quota().unwrap_or(0);
        let period = cpu.period().unwrap_or(0);
        if shares != 0 || quota != 0 || period != 0 || cpu.burst().is_some() || cpu.idle().is_some()
        {
            ensure_controller(d, "cpu", "linux.resources.cpu")?;
        }
        if shares != 0 {
            if !(2..=262144).contains(&shares) {
                return Err(CgroupError::field(
                    "linux.resources.cpu.shares",
                    format!("{shares} is out of range (2-262144)"),
                ));
            }
            set(
                d,
                "cpu.weight",
                &shares_to_weight(shares).to_string(),
                "linux.resources.cpu.shares",
            )?;
        }
        if quota != 0 || period != 0 {
            let mut s = if quota > 0 {
                quota.to_string()
            } else {
                "max".to_string()
            };
            if period != 0 {
                s.push_str(&format!(" {period}"));
            }
            set(d, "cpu.max", &s, "linux.resources.cpu.quota")?;
        }
        if let Some(b) = cpu.burst() {
            set(
                d,
                "cpu.max.burst",
                &b.to_string(),
                "linux.resources.cpu.burst",
            )?;
        }
        if let Some(i) = cpu.idle() {
            set(d, "cpu.idle", &i.to_string(), "linux.resources.cpu.idle")?;
        }
        let cpus = cpu.cpus().as_deref().filter(|s| !s.is_empty());
        let mems = cpu.mems().as_deref().filter(|s| !s.is_empty());
        if cpus.is_some() || mems.is_some() {
            ensure_controller(d, "cpuset", "linux.resources.cpu.cpus")?;
        }
        if let Some(c) = cpus {
            set(d, "cpuset.cpus", c, "linux.resources.cpu.cpus")?;
        }
        if let Some(c) = mems {
            set(d, "cpuset.mems", c, "linux.resources.cpu.mems")?;
        }
    }
    if let Some(p) = r.pids() {
        if p.limit() != 0 {
            ensure_controller(d, "pids", "linux.resources.pids.limit")?;
            set(
                d,
                "pids.max",
                &limit_str(p.limit()),
                "linux.resources.pids.limit",
            )?;
        }
    }
    if let Some(b) = r.block_io() {
        apply_io(d, b)?;
    }
    apply_hugetlb(d, r)?;
    if let Some(rd) = r.rdma() {
        if !rd.is_empty() {
            ensure_controller(d, "rdma", "linux.resources.rdma")?;
            for (dev, l) in rd {
                set(d, "rdma.max", &rdma_line(dev, l), "linux.resources.rdma")?;
            }
        }
    }
    if let Some(n) = r.network() {
        if n.class_id().is_some() || n.priorities().as_ref().is_some_and(|p| !p.is_empty()) {
            return Err(CgroupError::field(
                "linux.resources.network",
                "net_cls/net_prio do not exist on cgroup v2 (use the network namespace)",
            ));
        }
    }
    if let Some(devs) = r.devices() {
        super::devices::apply_bpf(d, devs)?;
    }
    if let Some(u) = r.unified() {
        apply_unified(d, u)?;
    }
    Ok(())
}

fn apply_unified(
    d: &Path,
    u: &std::collections::HashMap<String, String>,
) -> Result<(), CgroupError> {
    for (k, v) in u {
        let field = format!("linux.resources.unified[{k:?}]");
        if k.contains('/') || k.starts_with('.') || k.is_empty() {
            return Err(CgroupError::field(
                &field,
                "must be a file name of the cgroup (no slashes)",
            ));
        }
        let p = d.join(k);
        if !p.exists() {
            // Enable the controller if the key names one the host has (runc does too).
            if let Some((ctrl, _)) = k.split_once('.') {
                if ctrl != "cgroup" {
                    let _ = ensure_controller(d, ctrl, &field);
                }
            }
        }
        if !p.exists() {
            return Err(CgroupError::field(
                &field,
                format!("unknown cgroup file {}", p.display()),
            ));
        }
        write_file(&p, v).map_err(|e| CgroupError::field(&field, e.to_string()))?;
    }
    Ok(())
}

fn apply_io(d: &Path, b: &oci_spec::runtime::LinuxBlockIo) -> Result<(), CgroupError> {
    let weight = b.weight().unwrap_or(0);
    let wdev = b.weight_device().as_ref().is_some_and(|v| !v.is_empty());
    let thr: Vec<(&str, &Vec<oci_spec::runtime::LinuxThrottleDevice>)> = [
        ("rbps", b.throttle_read_bps_device()),
        ("wbps", b.throttle_write_bps_device()),
        ("riops", b.throttle_read_iops_device()),
        ("wiops", b.throttle_write_iops_device()),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.as_ref().map(|v| (k, v)))
    .collect();
    if b.leaf_weight().unwrap_or(0) != 0 {
        return Err(CgroupError::field(
            "linux.resources.blockIO.leafWeight",
            "not supported on cgroup v2",
        ));
    }
    if weight == 0 && !wdev && thr.iter().all(|(_, v)| v.is_empty()) {
        return Ok(());
    }
    ensure_controller(d, "io", "linux.resources.blockIO")?;
    let bfq = d.join("io.bfq.weight").exists();
    if weight != 0 {
        if bfq {
            set(
                d,
                "io.bfq.weight",
                &weight.to_string(),
                "linux.resources.blockIO.weight",
            )?;
        } else {
            set(
                d,
                "io.weight",
                &blkio_to_io_weight(weight).to_string(),
                "linux.resources.blockIO.weight",
            )?;
        }
    }
    for wd in b.weight_device().iter().flatten() {
        if let Some(w) = wd.weight() {
            let (file, val) = if bfq {
                ("io.bfq.weight", u64::from(w))
            } else {
                ("io.weight", blkio_to_io_weight(w))
            };
            set(
                d,
                file,
                &format!("{}:{} {val}", wd.major(), wd.minor()),
                "linux.resources.blockIO.weightDevice",
            )?;
        }
    }
    for (key, list) in thr {
        for t in list {
            set(
                d,
                "io.max",
                &format!("{}:{} {key}={}", t.major(), t.minor(), t.rate()),
                "linux.resources.blockIO.throttle",
            )?;
        }
    }
    Ok(())
}

fn apply_hugetlb(d: &Path, r: &LinuxResources) -> Result<(), CgroupError> {
    let Some(h) = r.hugepage_limits() else {
        return Ok(());
    };
    if h.is_empty() {
        return Ok(());
    }
    ensure_controller(d, "hugetlb", "linux.resources.hugepageLimits")?;
    for l in h {
        let file = format!("hugetlb.{}.max", l.page_size());
        let field = format!("linux.resources.hugepageLimits[{}]", l.page_size());
        super::v1::check_page_size(d, &file, &field)?;
        set(d, &file, &limit_str(l.limit()), &field)?;
    }
    Ok(())
}

/// Hybrid host: what v1 lacks but cgroup2 has (hugetlb here).
pub fn apply_hybrid_extras(m: &Manager, d: &Path, r: &LinuxResources) -> Result<(), CgroupError> {
    if !m.v1.contains_key("hugetlb") && r.hugepage_limits().as_ref().is_some_and(|h| !h.is_empty())
    {
        let offered = read_trim(&d.join("cgroup.controllers"))
            .map(|s| s.split_whitespace().any(|c| c == "hugetlb"))
            .unwrap_or(false);
        if offered {
            apply_hugetlb(d, r)?;
        } else {
            // runc 1.1 ignores hugepageLimits when no v1 hugetlb hierarchy is mounted; husk
            // uses the cgroup2 one when the host enables it, but does not change the host's
            // own cgroups to get it.
            crate::logging::warn(
                "linux.resources.hugepageLimits: no hugetlb controller available to the container (not mounted on v1, not enabled on cgroup2); ignored as runc does",
            );
        }
    }
    Ok(())
}

pub fn hugetlb_stats(d: &Path) -> std::collections::BTreeMap<String, stats::Hugetlb> {
    let mut out = std::collections::BTreeMap::new();
    for size in super::v1::hugepage_sizes() {
        let cur = d.join(format!("hugetlb.{size}.current"));
        if !cur.exists() {
            continue;
        }
        out.insert(
            size.clone(),
            stats::Hugetlb {
                usage: read_u64(&cur),
                max: read_u64(&d.join(format!("hugetlb.{size}.max"))),
                failcnt: flat_keyed(&d.join(format!("hugetlb.{size}.events")))
                    .get("max")
                    .copied()
                    .unwrap_or(0),
            },
        );
    }
    out
}

fn max_or(p: &Path) -> u64 {
    match read_trim(p).as_deref() {
        Ok("max") => u64::MAX,
        Ok(s) => s.parse().unwrap_or(0),
        Err(_) => 0,
    }
}

pub fn stats(d: &Path) -> Stats {
    let mut s = Stats::default();
    let cpu = flat_keyed(&d.join("cpu.stat"));
    let g = |k: &str| cpu.get(k).copied().unwrap_or(0);
    s.cpu.usage.total = g("usage_usec") * 1000;
    s.cpu.usage.user = g("user_usec") * 1000;
    s.cpu.usage.kernel = g("system_usec") * 1000;
    s.cpu.throttling.periods = g("nr_periods");
    s.cpu.throttling.throttled_periods = g("nr_throttled");
    s.cpu.throttling.throttled_time = g("throttled_usec") * 1000;
    s.cpuset.cpus =
        stats::parse_list(&read_trim(&d.join("cpuset.cpus.effective")).unwrap_or_default());
    s.cpuset.mems =
        stats::parse_list(&read_trim(&d.join("cpuset.mems.effective")).unwrap_or_default());
    s.memory.raw = flat_keyed(&d.join("memory.stat"));
    s.memory.cache = s.memory.raw.get("file").copied().unwrap_or(0);
    s.memory.usage.usage = read_u64(&d.join("memory.current"));
    s.memory.usage.limit = max_or(&d.join("memory.max"));
    s.memory.usage.max = read_u64(&d.join("memory.peak"));
    s.memory.usage.failcnt = flat_keyed(&d.join("memory.events"))
        .get("max")
        .copied()
        .unwrap_or(0);
    s.memory.swap.usage = read_u64(&d.join("memory.swap.current"));
    s.memory.swap.limit = max_or(&d.join("memory.swap.max"));
    s.pids.current = read_u64(&d.join("pids.current"));
    s.pids.limit = read_u64(&d.join("pids.max"));
    if let Ok(t) = std::fs::read_to_string(d.join("io.stat")) {
        for l in t.lines() {
            let mut it = l.split_whitespace();
            let Some((maj, min)) = it.next().and_then(|x| x.split_once(':')) else {
                continue;
            };
            let (major, minor) = (maj.parse().unwrap_or(0), min.parse().unwrap_or(0));
            for kv in it {
                let Some((k, v)) = kv.split_once('=') else {
                    continue;
                };
                let v: u64 = v.parse().unwrap_or(0);
                let (list, op) = match k {
                    "rbytes" => (&mut s.blkio.io_service_bytes_recursive, "Read"),
                    "wbytes" => (&mut s.blkio.io_service_bytes_recursive, "Write"),
                    "rios" => (&mut s.blkio.io_serviced_recursive, "Read"),
                    "wios" => (&mut s.blkio.io_serviced_recursive, "Write"),
                    _ => continue,
                };
                list.push(BlkioEntry {
                    major,
                    minor,
                    op: op.into(),
                    value: v,
                });
            }
        }
    }
    s.hugetlb = hugetlb_stats(d);
    s
}
