//! The v1 and v2 writers run against fake cgroup directories (plain files), so the pure-v1 and
//! pure-v2 conversions are checked on any host; the integration tests check the real thing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxResources;

use super::{v1, v2, Manager};

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("husk-cg-unit-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn touch(d: &Path, files: &[&str]) {
    for f in files {
        std::fs::write(d.join(f), "").unwrap();
    }
}

fn get(d: &Path, f: &str) -> String {
    std::fs::read_to_string(d.join(f)).unwrap()
}

fn resources(json: &str) -> LinuxResources {
    serde_json::from_str(json).unwrap()
}

#[test]
fn v2_writes_runc_conversions() {
    let d = tmpdir("v2");
    std::fs::write(
        d.join("cgroup.controllers"),
        "cpuset cpu io memory hugetlb pids rdma",
    )
    .unwrap();
    touch(
        &d,
        &[
            "memory.max",
            "memory.swap.max",
            "memory.low",
            "cpu.weight",
            "cpu.max",
            "cpu.max.burst",
            "cpuset.cpus",
            "cpuset.mems",
            "pids.max",
            "io.weight",
            "io.max",
            "hugetlb.2MB.max",
            "memory.oom.group",
        ],
    );
    let r = resources(
        r#"{
        "memory": {"limit": 67108864, "swap": 134217728, "reservation": 33554432},
        "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "burst": 1000, "cpus": "0-1", "mems": "0"},
        "pids": {"limit": -1},
        "blockIO": {"weight": 500, "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}]},
        "hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}],
        "unified": {"memory.oom.group": "1"}
    }"#,
    );
    v2::apply(&d, &r).unwrap();
    assert_eq!(get(&d, "memory.max"), "67108864");
    assert_eq!(get(&d, "memory.swap.max"), "67108864"); // swap - limit
    assert_eq!(get(&d, "memory.low"), "33554432");
    assert_eq!(get(&d, "cpu.weight"), "39"); // 1 + (1024-2)*9999/262142
    assert_eq!(get(&d, "cpu.max"), "50000 100000");
    assert_eq!(get(&d, "cpu.max.burst"), "1000");
    assert_eq!(get(&d, "cpuset.cpus"), "0-1");
    assert_eq!(get(&d, "pids.max"), "max");
    assert_eq!(get(&d, "io.weight"), "4950"); // 1 + (500-10)*9999/990
    assert_eq!(get(&d, "io.max"), "8:0 rbps=1048576");
    assert_eq!(get(&d, "hugetlb.2MB.max"), "4194304");
    assert_eq!(get(&d, "memory.oom.group"), "1");

    // Errors name the field; an unknown unified key is refused.
    let e = v2::apply(&d, &resources(r#"{"unified": {"nosuch.file": "1"}}"#)).unwrap_err();
    assert!(e.to_string().contains("linux.resources.unified"), "{e}");
    let e = v2::apply(&d, &resources(r#"{"unified": {"../x": "1"}}"#)).unwrap_err();
    assert!(e.to_string().contains("no slashes"), "{e}");
    let e = v2::apply(&d, &resources(r#"{"memory": {"limit": 100, "swap": 50}}"#)).unwrap_err();
    assert!(e.to_string().contains("linux.resources.memory.swap"), "{e}");
    let e = v2::apply(&d, &resources(r#"{"cpu": {"realtimeRuntime": 1000}}"#)).unwrap_err();
    assert!(e.to_string().contains("realtime"), "{e}");
    let e = v2::apply(&d, &resources(r#"{"memory": {"limit": -2}}"#)).unwrap_err();
    assert!(
        e.to_string().contains("linux.resources.memory.limit"),
        "{e}"
    );
    // -1 is unlimited, and implies unlimited swap.
    v2::apply(&d, &resources(r#"{"memory": {"limit": -1}}"#)).unwrap();
    assert_eq!(get(&d, "memory.max"), "max");
    assert_eq!(get(&d, "memory.swap.max"), "max");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn v1_writes_runc_files() {
    let root = tmpdir("v1");
    let mut m = Manager::default();
    let mut dirs = BTreeMap::new();
    for (ctrl, files) in [
        (
            "memory",
            &[
                "memory.limit_in_bytes",
                "memory.memsw.limit_in_bytes",
                "memory.soft_limit_in_bytes",
                "memory.swappiness",
                "memory.oom_control",
                "memory.kmem.tcp.limit_in_bytes",
            ][..],
        ),
        (
            "cpu",
            &[
                "cpu.shares",
                "cpu.cfs_quota_us",
                "cpu.cfs_period_us",
                "cpu.idle",
            ][..],
        ),
        ("cpuset", &["cpuset.cpus", "cpuset.mems"][..]),
        ("pids", &["pids.max"][..]),
        (
            "blkio",
            &[
                "blkio.weight",
                "blkio.weight_device",
                "blkio.throttle.write_iops_device",
            ][..],
        ),
        ("devices", &["devices.allow", "devices.deny"][..]),
        ("net_cls", &["net_cls.classid"][..]),
    ] {
        let d = root.join(ctrl);
        std::fs::create_dir_all(&d).unwrap();
        touch(&d, files);
        dirs.insert(ctrl.to_string(), d.clone());
    }
    // cpu.shares reads back what was written (a real kernel clamps; see apply_cpu).
    m.v1 = dirs.clone();
    let r = resources(
        r#"{
        "memory": {"limit": 67108864, "swap": 134217728, "reservation": 1048576, "swappiness": 10, "disableOOMKiller": true, "kernelTCP": 65536},
        "cpu": {"shares": 512, "quota": 20000, "period": 100000, "idle": 0, "cpus": "0", "mems": "0"},
        "pids": {"limit": 7},
        "blockIO": {"weight": 300, "weightDevice": [{"major": 8, "minor": 0, "weight": 200}], "throttleWriteIOPSDevice": [{"major": 8, "minor": 0, "rate": 10}]},
        "network": {"classID": 1048577},
        "devices": [{"allow": false, "access": "rwm"}, {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rw"}]
    }"#,
    );
    v1::apply(&m, &r).unwrap();
    let g = |c: &str, f: &str| get(&dirs[c], f);
    assert_eq!(g("memory", "memory.limit_in_bytes"), "67108864");
    assert_eq!(g("memory", "memory.memsw.limit_in_bytes"), "134217728");
    assert_eq!(g("memory", "memory.soft_limit_in_bytes"), "1048576");
    assert_eq!(g("memory", "memory.swappiness"), "10");
    assert_eq!(g("memory", "memory.oom_control"), "1");
    assert_eq!(g("memory", "memory.kmem.tcp.limit_in_bytes"), "65536");
    assert_eq!(g("cpu", "cpu.shares"), "512");
    assert_eq!(g("cpu", "cpu.cfs_quota_us"), "20000");
    assert_eq!(g("cpu", "cpu.cfs_period_us"), "100000");
    assert_eq!(g("cpu", "cpu.idle"), "0");
    assert_eq!(g("cpuset", "cpuset.cpus"), "0");
    assert_eq!(g("pids", "pids.max"), "7");
    assert_eq!(g("blkio", "blkio.weight"), "300");
    assert_eq!(g("blkio", "blkio.weight_device"), "8:0 200");
    assert_eq!(g("blkio", "blkio.throttle.write_iops_device"), "8:0 10");
    assert_eq!(g("net_cls", "net_cls.classid"), "1048577");
    // Plain files keep only the last write: the last rule is runc's last default.
    assert_eq!(g("devices", "devices.allow"), "c 10:200 rwm");
    assert_eq!(g("devices", "devices.deny"), "a *:* rwm");

    // Unified keys are refused on v1; a controller that is not mounted is named.
    let e = v1::apply(&m, &resources(r#"{"rdma": {"mlx4_0": {"hcaHandles": 1}}}"#)).unwrap_err();
    assert!(e.to_string().contains("linux.resources.rdma"), "{e}");
    let e = v1::apply(&m, &resources(r#"{"memory": {"swappiness": 101}}"#)).unwrap_err();
    assert!(e.to_string().contains("0-100"), "{e}");
    let e = super::check_unsupported(&m, &resources(r#"{"unified": {"a.b": "1"}}"#)).unwrap_err();
    assert!(e.to_string().contains("cgroup v1"), "{e}");
    let _ = std::fs::remove_dir_all(&root);
}
