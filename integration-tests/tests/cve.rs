//! Regression tests for container-escape CVEs of runc and friends: each builds the hostile
//! rootfs or config of its class and shows that the attack fails (create refuses it, or the
//! container stays confined).

use integration_tests::*;
use serde_json::json;
use std::fs;
use std::os::unix::fs::symlink;

/// CVE-2021-30465 (runc < 1.0.0-rc95): a mount destination that is a symlink (swapped in by a
/// racing container) was followed on the host, mounting over a host directory. Here the
/// destination is a symlink out of the rootfs: the mount must land inside the rootfs.
#[test]
fn cve_2021_30465_symlinked_mount_destination_stays_in_root() {
    require_root!();
    let rt = Runtime::new("cf-cve-30465");
    let mut b = Bundle::new("cve-30465");
    let host_dir = b.path().join("hostdir");
    fs::create_dir(&host_dir).unwrap();
    fs::write(host_dir.join("host-file"), "host\n").unwrap();
    // Relative and absolute escapes.
    symlink("../../hostdir", b.rootfs().join("evil-rel")).unwrap();
    symlink(host_dir.display().to_string(), b.rootfs().join("evil-abs")).unwrap();
    for dest in ["/evil-rel", "/evil-abs"] {
        b.add_mount(
            json!({"destination": dest, "type": "tmpfs", "source": "tmpfs",
                           "options": ["nosuid"]}),
        );
    }
    b.sh("touch /evil-rel/written-rel /evil-abs/written-abs; ls /evil-rel /evil-abs");
    let id = rt.id("c");
    let out = rt.run(&id, &b, &[]);
    eprintln!("{out:?}");
    rt.assert_gone(&id);
    let mut host: Vec<String> = fs::read_dir(&host_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    host.sort();
    assert_eq!(host, ["host-file"], "the host dir was written: {out:?}");
    assert!(mounts_containing("hostdir").is_empty());
}

/// CVE-2019-16884 / CVE-2019-19921 / CVE-2023-27561: `/proc` in the rootfs is a symlink to a
/// directory the image controls, so procfs (and the LSM label writes through it) would go
/// elsewhere. Either create refuses, or the container's `/proc` is the kernel's procfs.
#[test]
fn cve_2019_16884_proc_symlink_in_rootfs() {
    require_root!();
    let rt = Runtime::new("cf-cve-16884");
    let mut b = Bundle::new("cve-16884");
    let proc_dir = b.rootfs().join("proc");
    let _ = fs::remove_dir(&proc_dir);
    fs::create_dir_all(b.rootfs().join("fakeproc/self/attr")).unwrap();
    fs::write(b.rootfs().join("fakeproc/self/attr/exec"), "").unwrap();
    symlink("/fakeproc", &proc_dir).unwrap();
    b.sh("stat -f -c %T /proc/self/attr/; cat /proc/1/comm");
    let id = rt.id("c");
    let out = rt.run(&id, &b, &[]);
    eprintln!("{out:?}");
    rt.assert_gone(&id);
    if out.success() {
        assert_eq!(out.stdout, "proc\nsh\n", "{out:?}");
    }
    assert_eq!(
        fs::read_to_string(b.rootfs().join("fakeproc/self/attr/exec")).unwrap(),
        ""
    );
}

/// CVE-2025-31133: masked paths are masked by bind-mounting the container's `/dev/null`; if
/// the image made it a symlink (or a racing container swapped it), the "mask" became a bind of
/// a procfs file such as core_pattern. Here `/dev` is not a runtime tmpfs, so the image's
/// `/dev/null` (a symlink to core_pattern) is what a naive runtime would use.
#[test]
fn cve_2025_31133_dev_null_symlink_not_used_for_masking() {
    require_root!();
    let rt = Runtime::new("cf-cve-31133");
    let mut b = Bundle::new("cve-31133");
    b.config["mounts"].as_array_mut().unwrap().retain(|m| {
        m["destination"] != "/dev"
            && m["destination"] != "/dev/pts"
            && m["destination"] != "/dev/shm"
            && m["destination"] != "/dev/mqueue"
    });
    let dev = b.rootfs().join("dev");
    fs::create_dir_all(&dev).unwrap();
    let _ = fs::remove_file(dev.join("null"));
    symlink("/proc/sys/kernel/core_pattern", dev.join("null")).unwrap();
    b.config["linux"]["maskedPaths"] = json!(["/proc/kcore", "/proc/timer_list"]);
    b.sh("stat -c '%F %t:%T' /proc/kcore; wc -c < /proc/timer_list; stat -c %F /dev/null");
    let id = rt.id("c");
    let out = rt.run(&id, &b, &[]);
    eprintln!("{out:?}");
    rt.assert_gone(&id);
    // runc 1.1.5 predates the fix (runc 1.2.8 / 1.3.3): it "succeeds" here with the
    // process's output lost; only the host-side check below applies to it.
    if out.success() && !is_runc() {
        let lines: Vec<&str> = out.stdout.lines().collect();
        assert_eq!(
            lines.first().copied(),
            Some("character special file 1:3"),
            "{out:?}"
        );
        assert_eq!(lines.get(1).map(|l| l.trim()), Some("0"), "{out:?}");
    }
    let pattern = fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap();
    assert!(!pattern.contains("husk"), "{pattern}");
}

/// CVE-2024-21626 (runc < 1.1.12): an fd of the runtime's (a host directory) leaked into the
/// init, and `process.cwd` `/proc/self/fd/N` put the process's cwd outside the rootfs. Every
/// small N must fail or stay inside the container.
#[test]
fn cve_2024_21626_cwd_through_leaked_fd() {
    require_root!();
    let rt = Runtime::new("cf-cve-21626");
    let marker = format!("husk-cve-21626-marker-{}", std::process::id());
    let marker_path = std::path::Path::new("/tmp").join(&marker);
    fs::write(&marker_path, "host\n").unwrap();
    let mut escaped = Vec::new();
    for n in 3..=12 {
        let mut b = Bundle::new("cve-21626");
        b.config["process"]["cwd"] = json!(format!("/proc/self/fd/{n}"));
        b.sh(&format!(
            "for i in 1 2 3 4 5 6 7 8 9 10; do cd .. 2>/dev/null; done; test -e tmp/{marker} && echo ESCAPED; true"
        ));
        let id = rt.id(&format!("c{n}"));
        let out = rt.run(&id, &b, &[]);
        eprintln!("fd {n}: {out:?}");
        rt.assert_gone(&id);
        if out.stdout.contains("ESCAPED") {
            escaped.push(n);
        }
    }
    let _ = fs::remove_file(&marker_path);
    assert!(
        escaped.is_empty(),
        "cwd /proc/self/fd/N escaped for N in {escaped:?}"
    );
}

/// CVE-2022-29162 (runc < 1.1.2): the inheritable set was not emptied, so a file with
/// inheritable file capabilities gained them. Without `inheritable` in the config the set is
/// empty; the ambient set too.
#[test]
fn cve_2022_29162_inheritable_caps_empty_by_default() {
    require_root!();
    let rt = Runtime::new("cf-cve-29162");
    let mut b = Bundle::new("cve-29162");
    let caps = json!(["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    b.config["process"]["capabilities"] =
        json!({"bounding": caps, "effective": caps, "permitted": caps});
    b.sh("grep -E '^Cap(Inh|Prm|Eff|Bnd|Amb):' /proc/self/status");
    let out = rt.run_once(&b);
    out.ok();
    // CAP_CHOWN (0), CAP_KILL (5), CAP_NET_BIND_SERVICE (10) = 0x421.
    assert_eq!(
        out.stdout,
        "CapInh:\t0000000000000000\nCapPrm:\t0000000000000421\nCapEff:\t0000000000000421\n\
         CapBnd:\t0000000000000421\nCapAmb:\t0000000000000000\n",
        "{out:?}"
    );
}

/// CVE-2023-27561 / CVE-2023-25809 class: masked and read-only paths that are symlinks out of
/// the rootfs must be resolved inside it, never mask or remount a host path.
#[test]
fn cve_2023_27561_masked_and_readonly_paths_through_symlinks() {
    require_root!();
    let rt = Runtime::new("cf-cve-27561");
    let mut b = Bundle::new("cve-27561");
    let host_ro = b.path().join("host-ro");
    let host_mask = b.path().join("host-mask");
    fs::create_dir(&host_ro).unwrap();
    fs::create_dir(&host_mask).unwrap();
    fs::write(host_mask.join("secret"), "s\n").unwrap();
    symlink("../../host-ro", b.rootfs().join("ro-link")).unwrap();
    symlink(
        host_mask.display().to_string(),
        b.rootfs().join("mask-link"),
    )
    .unwrap();
    b.config["linux"]["readonlyPaths"] = json!(["/ro-link"]);
    b.config["linux"]["maskedPaths"] = json!(["/mask-link"]);
    b.sh("sleep 1000");
    let id = rt.id("c");
    let out = rt.create(&id, &b);
    eprintln!("{out:?}");
    if out.success() {
        rt.start(&id).ok();
        // While it runs, no host path is mounted over and the host dir stays writable.
        assert!(
            mounts_containing("host-ro").is_empty(),
            "{:?}",
            mounts_containing("host-ro")
        );
        assert!(mounts_containing("host-mask").is_empty());
        fs::write(host_ro.join("still-writable"), "x").unwrap();
        assert_eq!(fs::read_to_string(host_mask.join("secret")).unwrap(), "s\n");
        rt.kill(&id, Some("KILL")).ok();
        rt.wait_status(&id, "stopped");
        rt.delete(&id, false).ok();
    }
    rt.assert_gone(&id);
}

/// CVE-2025-52881: the runtime's own writes under /proc (sysctls, oom_score_adj, LSM labels)
/// were redirected by a mount over the target, so they landed in another file. Two shapes
/// from the config: a bind over the sysctl file, and a directory of decoys bound at /proc
/// itself. Neither write may reach a decoy.
#[test]
fn cve_2025_52881_proc_writes_not_redirected() {
    require_root!();
    let rt = Runtime::new("cf-cve-52881");
    for shape in ["bind-over-file", "fake-proc-dir"] {
        let mut b = Bundle::new("cve-52881");
        let fake = b.path().join("fakeproc");
        fs::create_dir_all(fake.join("sys/kernel")).unwrap();
        fs::create_dir_all(fake.join("self")).unwrap();
        let decoy = fake.join("sys/kernel/shmmni");
        fs::write(&decoy, "untouched\n").unwrap();
        fs::write(fake.join("self/oom_score_adj"), "untouched\n").unwrap();
        if shape == "bind-over-file" {
            b.add_mount(
                json!({"destination": "/proc/sys/kernel/shmmni", "type": "bind",
                               "source": decoy.display().to_string(), "options": ["bind", "rw"]}),
            );
        } else {
            let m = b.config["mounts"].as_array_mut().unwrap();
            m[0] = json!({"destination": "/proc", "type": "bind",
                          "source": fake.display().to_string(), "options": ["rbind", "rw"]});
        }
        b.config["linux"]["sysctl"] = json!({"kernel.shmmni": "1234"});
        b.config["process"]["oomScoreAdj"] = json!(500);
        b.sh("true");
        let id = rt.id("c");
        let out = rt.run(&id, &b, &[]);
        eprintln!("{shape}: {out:?}");
        rt.assert_gone(&id);
        assert_eq!(
            fs::read_to_string(&decoy).unwrap(),
            "untouched\n",
            "{shape}: the sysctl write went into a decoy: {out:?}"
        );
        assert_eq!(
            fs::read_to_string(fake.join("self/oom_score_adj")).unwrap(),
            "untouched\n",
            "{shape}: the oom_score_adj write went into a decoy: {out:?}"
        );
    }
}

/// CVE-2019-16884 class, the LSM half: a requested label is never silently dropped. On a host
/// without the LSM, create fails naming the field (runc fails too, later and less clearly).
#[test]
fn lsm_labels_are_not_silently_dropped() {
    require_root!();
    let rt = Runtime::new("cf-lsm");
    let apparmor = fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .map(|s| s.trim() == "Y")
        .unwrap_or(false);
    let selinux = std::path::Path::new("/sys/fs/selinux/enforce").exists();
    let mut cases = Vec::new();
    if !apparmor {
        cases.push(("apparmorProfile", "process.apparmorProfile"));
    }
    if !selinux {
        cases.push(("selinuxLabel", "process.selinuxLabel"));
    }
    for (key, field) in cases {
        let mut b = Bundle::new("lsm");
        b.config["process"][key] = json!("husk-test-label");
        b.sh("true");
        let id = rt.id("c");
        let out = rt.run(&id, &b, &[]);
        out.failed();
        if !is_runc() {
            out.stderr_has(field);
        }
        rt.assert_gone(&id);
    }
}
