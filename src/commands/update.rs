//! `husk update [flags] [--resources FILE|-] ID`: change a live container's resources.
//!
//! As runc: the JSON (a LinuxResources) is read first, the per-field flags override it, and
//! only the fields runc's update handles are taken (cpu, memory, pids, blkio weight, unified);
//! they are merged into the resources last applied, the whole set is applied again, and the
//! result is recorded in state.json.

use std::io::Read;

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxPids, LinuxResources};

use super::Ctx;
use crate::cli::UpdateArgs;
use crate::container::ops;
use crate::error::{Error, Result};
use crate::state::{ContainerDir, Status};

pub fn run(ctx: &Ctx, a: UpdateArgs) -> Result<()> {
    let dir = ContainerDir::new(&ctx.root, &a.id)?;
    let _lock = dir.lock()?;
    let (mut saved, status) = ops::status_of(&dir)?;
    if status == Status::Stopped {
        // runc's wording.
        return Err(Error::msg("container not running"));
    }
    let new = requested(&a)?;
    let mut merged = saved.cgroup.resources.clone().unwrap_or_default();
    merge(&mut merged, &new);
    // Devices are not updatable (runc ignores them too): re-writing the rules would briefly
    // deny everything to the running container.
    let mut to_apply = merged.clone();
    to_apply.set_devices(None);
    if let Err(e) = saved.cgroup.apply(&to_apply) {
        // Put back what was there (runc does too), so a refused update changes nothing.
        if let Some(mut old) = saved.cgroup.resources.clone() {
            old.set_devices(None);
            let _ = saved.cgroup.apply(&old);
        }
        return Err(e.into());
    }
    saved.cgroup.resources = Some(merged);
    dir.save(&saved)?;
    Ok(())
}

/// The JSON file (or stdin) then the flags on top.
fn requested(a: &UpdateArgs) -> Result<LinuxResources> {
    let mut r: LinuxResources = match a.resources.as_deref() {
        None => LinuxResources::default(),
        Some(src) => {
            let (text, name) = if src == "-" {
                let mut s = String::new();
                std::io::stdin()
                    .read_to_string(&mut s)
                    .map_err(|e| Error::msg(format!("--resources: read stdin: {e}")))?;
                (s, "stdin".to_string())
            } else {
                (
                    std::fs::read_to_string(src)
                        .map_err(|e| Error::msg(format!("--resources: open {src}: {e}")))?,
                    src.to_string(),
                )
            };
            let de = &mut serde_json::Deserializer::from_str(&text);
            serde_path_to_error::deserialize(de).map_err(|e| {
                Error::msg(format!(
                    "--resources: {name}: invalid LinuxResources JSON at {}: {}",
                    e.path(),
                    e.inner()
                ))
            })?
        }
    };
    let mut cpu = r.cpu().clone().unwrap_or_default();
    let mut cpu_set = r.cpu().is_some();
    macro_rules! cpu_flag {
        ($flag:expr, $setter:ident) => {
            if let Some(v) = $flag.clone() {
                cpu.$setter(Some(v));
                cpu_set = true;
            }
        };
    }
    cpu_flag!(a.cpu_period, set_period);
    cpu_flag!(a.cpu_quota, set_quota);
    cpu_flag!(a.cpu_share, set_shares);
    cpu_flag!(a.cpu_rt_period, set_realtime_period);
    cpu_flag!(a.cpu_rt_runtime, set_realtime_runtime);
    cpu_flag!(a.cpuset_cpus, set_cpus);
    cpu_flag!(a.cpuset_mems, set_mems);
    cpu_flag!(a.cpu_idle, set_idle);
    cpu_flag!(a.cpu_burst, set_burst);
    if cpu_set {
        r.set_cpu(Some(cpu));
    }
    let mut mem = (*r.memory()).unwrap_or_default();
    let mut mem_set = r.memory().is_some();
    for (flag, val, setter) in [
        (
            "--memory",
            &a.memory,
            LinuxMemory::set_limit as fn(&mut LinuxMemory, Option<i64>) -> &mut LinuxMemory,
        ),
        (
            "--memory-reservation",
            &a.memory_reservation,
            LinuxMemory::set_reservation,
        ),
        ("--memory-swap", &a.memory_swap, LinuxMemory::set_swap),
        ("--kernel-memory", &a.kernel_memory, LinuxMemory::set_kernel),
        (
            "--kernel-memory-tcp",
            &a.kernel_memory_tcp,
            LinuxMemory::set_kernel_tcp,
        ),
    ] {
        if let Some(v) = val {
            let n = ram_in_bytes(v).ok_or_else(|| {
                Error::msg(format!(
                    "invalid value for {flag}: {v:?} (a size like 4m, 1g or -1)"
                ))
            })?;
            setter(&mut mem, Some(n));
            mem_set = true;
        }
    }
    if mem_set {
        r.set_memory(Some(mem));
    }
    if let Some(p) = a.pids_limit {
        let mut pids = LinuxPids::default();
        pids.set_limit(p);
        r.set_pids(Some(pids));
    }
    if let Some(w) = a.blkio_weight {
        let mut b = r.block_io().clone().unwrap_or_default();
        b.set_weight(Some(w));
        r.set_block_io(Some(b));
    }
    if a.l3_cache_schema.is_some() || a.mem_bw_schema.is_some() {
        return Err(Error::msg(
            "--l3-cache-schema/--mem-bw-schema: Intel RDT is not supported by husk",
        ));
    }
    Ok(r)
}

/// docker/go-units RAMInBytes: a number with an optional binary unit (b, k, m, g, t, p; an
/// optional trailing "b"/"ib"), or -1.
fn ram_in_bytes(s: &str) -> Option<i64> {
    let t = s.trim().to_ascii_lowercase();
    if t == "-1" {
        return Some(-1);
    }
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().ok()?;
    let unit = unit.trim_end_matches("ib").trim_end_matches('b');
    let mul: f64 = match unit {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        "t" => 1024.0f64.powi(4),
        "p" => 1024.0f64.powi(5),
        _ => return None,
    };
    Some((n * mul) as i64)
}

/// Copy the fields runc's update takes from `new` into `old` (unset fields keep their value).
fn merge(old: &mut LinuxResources, new: &LinuxResources) {
    if let Some(nc) = new.cpu() {
        let mut c: LinuxCpu = old.cpu().clone().unwrap_or_default();
        macro_rules! take {
            ($get:ident, $set:ident) => {
                if nc.$get().is_some() {
                    c.$set(nc.$get());
                }
            };
        }
        take!(shares, set_shares);
        take!(quota, set_quota);
        take!(period, set_period);
        take!(burst, set_burst);
        take!(realtime_runtime, set_realtime_runtime);
        take!(realtime_period, set_realtime_period);
        take!(idle, set_idle);
        if nc.cpus().is_some() {
            c.set_cpus(nc.cpus().clone());
        }
        if nc.mems().is_some() {
            c.set_mems(nc.mems().clone());
        }
        old.set_cpu(Some(c));
    }
    if let Some(nm) = new.memory() {
        let mut m: LinuxMemory = (*old.memory()).unwrap_or_default();
        if nm.limit().is_some() {
            m.set_limit(nm.limit());
        }
        if nm.reservation().is_some() {
            m.set_reservation(nm.reservation());
        }
        if nm.swap().is_some() {
            m.set_swap(nm.swap());
        }
        if nm.check_before_update().is_some() {
            m.set_check_before_update(nm.check_before_update());
        }
        old.set_memory(Some(m));
    }
    // A pids limit of 0 means "unchanged" (runc).
    if let Some(p) = new.pids().filter(|p| p.limit() != 0) {
        old.set_pids(Some(p));
    }
    if let Some(w) = new.block_io().as_ref().and_then(|b| b.weight()) {
        let mut b: LinuxBlockIo = old.block_io().clone().unwrap_or_default();
        b.set_weight(Some(w));
        old.set_block_io(Some(b));
    }
    if let Some(u) = new.unified() {
        let mut all = old.unified().clone().unwrap_or_default();
        all.extend(u.iter().map(|(k, v)| (k.clone(), v.clone())));
        old.set_unified(Some(all));
    }
}

#[cfg(test)]
mod tests {
    use super::ram_in_bytes;

    #[test]
    fn sizes() {
        assert_eq!(ram_in_bytes("4m"), Some(4 << 20));
        assert_eq!(ram_in_bytes("4MiB"), Some(4 << 20));
        assert_eq!(ram_in_bytes("1G"), Some(1 << 30));
        assert_eq!(ram_in_bytes("100"), Some(100));
        assert_eq!(ram_in_bytes("-1"), Some(-1));
        assert_eq!(ram_in_bytes("x"), None);
        assert_eq!(ram_in_bytes("4q"), None);
    }
}
