//! Cgroups: every resource read back from the host's cgroup files and from inside the container
//! (through its own `cgroup` mount at /sys/fs/cgroup), pause/resume/ps/kill --all/update/events,
//! and nothing left on any hierarchy afterwards.
//!
//! Layout-independent: the layout (pure v1, pure v2, hybrid) is detected from
//! /proc/self/mountinfo and each check reads the file of whichever layout is present.

use integration_tests::*;
use serde_json::{json, Value};
use std::fs;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// The host's cgroup mounts: v1 controller → mountpoint, and the cgroup2 mountpoint.
struct Layout {
    v1: Vec<(String, PathBuf)>,
    v2: Option<PathBuf>,
}

impl Layout {
    fn detect() -> Layout {
        let mi = fs::read_to_string("/proc/self/mountinfo").unwrap();
        let mut v1 = Vec::new();
        let mut v2 = None;
        for l in mi.lines() {
            let Some((pre, post)) = l.split_once(" - ") else {
                continue;
            };
            let pre: Vec<&str> = pre.split(' ').collect();
            let post: Vec<&str> = post.split(' ').collect();
            match post[0] {
                "cgroup2" if v2.is_none() => v2 = Some(PathBuf::from(pre[4])),
                "cgroup" => {
                    for o in post[2].split(',') {
                        v1.push((o.to_string(), PathBuf::from(pre[4])));
                    }
                }
                _ => {}
            }
        }
        Layout { v1, v2 }
    }

    /// The v1 mountpoint of `ctrl`.
    fn v1(&self, ctrl: &str) -> Option<&PathBuf> {
        self.v1.iter().find(|(c, _)| c == ctrl).map(|(_, p)| p)
    }

    fn is_v1(&self, ctrl: &str) -> bool {
        self.v1(ctrl).is_some()
    }

    /// Host path of `file` of cgroup `/<id>` for a controller: its v1 file or its v2 file.
    fn host(&self, id: &str, ctrl: &str, v1_file: &str, v2_file: &str) -> PathBuf {
        match self.v1(ctrl) {
            Some(m) => m.join(id).join(v1_file),
            None => self
                .v2
                .as_ref()
                .expect("cgroup2 mount")
                .join(id)
                .join(v2_file),
        }
    }

    /// The same file as seen inside the container (cgroup namespace + `cgroup` mount).
    fn inside(&self, ctrl: &str, v1_file: &str, v2_file: &str) -> String {
        match self.v1(ctrl) {
            Some(m) => format!(
                "/sys/fs/cgroup/{}/{v1_file}",
                m.file_name().unwrap().to_string_lossy()
            ),
            // Pure v2: the mount is at /sys/fs/cgroup; hybrid: at /sys/fs/cgroup/unified.
            None if self.v1.is_empty() => format!("/sys/fs/cgroup/{v2_file}"),
            None => format!("/sys/fs/cgroup/unified/{v2_file}"),
        }
    }

    /// Every directory of cgroup `/<id>` that exists on any hierarchy.
    fn dirs(&self, id: &str) -> Vec<PathBuf> {
        let mut all: Vec<PathBuf> = self.v1.iter().map(|(_, m)| m.join(id)).collect();
        all.extend(self.v2.iter().map(|m| m.join(id)));
        all.sort();
        all.dedup();
        all.into_iter().filter(|d| d.exists()).collect()
    }
}

fn read(p: &PathBuf) -> String {
    fs::read_to_string(p)
        .unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
        .trim()
        .to_string()
}

/// A bundle whose cgroup is `/<id>` with these resources.
fn bundle_with(name: &str, id: &str, resources: Value) -> Bundle {
    let mut b = Bundle::new(name);
    b.config["linux"]["cgroupsPath"] = json!(format!("/{id}"));
    b.config["linux"]["resources"] = resources;
    b
}

/// One checked resource: controller, v1 file, v2 file, what the file must hold on v1 / on v2.
struct Check {
    ctrl: &'static str,
    v1: &'static str,
    v2: &'static str,
    want_v1: &'static str,
    want_v2: &'static str,
}

const fn c(
    ctrl: &'static str,
    v1: &'static str,
    v2: &'static str,
    want_v1: &'static str,
    want_v2: &'static str,
) -> Check {
    Check {
        ctrl,
        v1,
        v2,
        want_v1,
        want_v2,
    }
}

#[test]
fn resources_seen_from_host_and_inside() {
    require_root!();
    let lay = Layout::detect();
    let rt = Runtime::new("cgres");
    let id = rt.id("");
    let mut res = json!({
        "memory": {"limit": 67108864, "reservation": 33554432},
        "pids": {"limit": 50},
        "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0"},
        "blockIO": {"weight": 500},
    });
    // On v1 a blkio weight needs BFQ (blkio.bfq.weight) or the old CFQ (blkio.weight); a host
    // with neither (the test VM, no block device) refuses it, as runc does.
    let bfq = std::path::Path::new("/sys/module/bfq").exists()
        || std::fs::read_dir("/sys/block")
            .into_iter()
            .flatten()
            .flatten()
            .any(|d| {
                std::fs::read_to_string(d.path().join("queue/scheduler"))
                    .is_ok_and(|s| s.contains("bfq"))
            });
    let blkio_weight = !lay.is_v1("blkio")
        || bfq
        || lay
            .v1("blkio")
            .is_some_and(|r| r.join("blkio.weight").exists());
    if !blkio_weight {
        eprintln!("no BFQ/CFQ on this host: blockIO.weight left out");
        res.as_object_mut().unwrap().remove("blockIO");
    }
    let mut checks = vec![
        c(
            "memory",
            "memory.limit_in_bytes",
            "memory.max",
            "67108864",
            "67108864",
        ),
        c(
            "memory",
            "memory.soft_limit_in_bytes",
            "memory.low",
            "33554432",
            "33554432",
        ),
        c("pids", "pids.max", "pids.max", "50", "50"),
        // v2: runc's shares→weight conversion, 1 + (512-2)*9999/262142 = 20.
        c("cpu", "cpu.shares", "cpu.weight", "512", "20"),
        c(
            "cpu",
            "cpu.cfs_quota_us",
            "cpu.max",
            "50000",
            "50000 100000",
        ),
        c(
            "cpu",
            "cpu.cfs_period_us",
            "cpu.max",
            "100000",
            "50000 100000",
        ),
        c("cpuset", "cpuset.cpus", "cpuset.cpus", "0", "0"),
        c("cpuset", "cpuset.mems", "cpuset.mems", "0", "0"),
    ];
    // The swap limit needs swap accounting (memsw on v1, memory.swap.max on v2).
    let swap_ok = match lay.v1("memory") {
        Some(m) => m.join("memory.memsw.limit_in_bytes").exists(),
        None => lay
            .v2
            .as_ref()
            .is_some_and(|m| m.join("user.slice").exists() || m.join("init.scope").exists()),
    };
    if swap_ok && lay.is_v1("memory") {
        res["memory"]["swap"] = json!(134217728);
        checks.push(c(
            "memory",
            "memory.memsw.limit_in_bytes",
            "memory.swap.max",
            "134217728",
            "67108864",
        ));
    }
    let mut b = bundle_with("cgres", &id, res);
    let mut script = String::new();
    for (i, ch) in checks.iter().enumerate() {
        script.push_str(&format!(
            "cat {} > /out/c{i} 2>&1; ",
            lay.inside(ch.ctrl, ch.v1, ch.v2)
        ));
    }
    script.push_str("echo done > /out/done; sleep 1000");
    b.sh(&script);
    rt.create_and_start(&id, &b);
    b.wait_out("done");
    let mut bad = Vec::new();
    for (i, ch) in checks.iter().enumerate() {
        let want = if lay.is_v1(ch.ctrl) {
            ch.want_v1
        } else {
            ch.want_v2
        };
        let host = read(&lay.host(&id, ch.ctrl, ch.v1, ch.v2));
        let inside = b.read_out(&format!("c{i}"));
        if host != want {
            bad.push(format!("host {} = {host:?}, want {want:?}", ch.v1));
        }
        if inside.trim() != want {
            bad.push(format!("inside {} = {inside:?}, want {want:?}", ch.v1));
        }
    }
    // blkio weight: CFQ's blkio.weight or BFQ's blkio.bfq.weight ("default 500"), or io.*.
    let blk = if lay.is_v1("blkio") && blkio_weight {
        let d = lay.v1("blkio").unwrap().join(&id);
        [d.join("blkio.weight"), d.join("blkio.bfq.weight")]
            .into_iter()
            .find(|p| p.exists())
    } else {
        None
    };
    if let Some(p) = blk {
        let v = read(&p);
        if !v.split_whitespace().any(|w| w == "500") {
            bad.push(format!("{} = {v:?}, want weight 500", p.display()));
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
    rt.delete(&id, true).ok();
    assert!(lay.dirs(&id).is_empty(), "left: {:?}", lay.dirs(&id));
    rt.assert_gone(&id);
}

/// husk's own processes never enter the container's cgroup: a container starts under a 4 MiB
/// memory limit and a pids limit of 1 (the init is then the only task).
#[test]
fn starts_under_tiny_limits() {
    require_root!();
    if is_runc() {
        // runc's Go init does not fit in 4 MiB.
        eprintln!("SKIP: runc's init needs more than 4 MiB");
        return;
    }
    let lay = Layout::detect();
    let rt = Runtime::new("cgtiny");
    let id = rt.id("");
    let mut b = bundle_with(
        "cgtiny",
        &id,
        json!({"memory": {"limit": 4194304}, "pids": {"limit": 1}}),
    );
    // Builtins only: with pids.max = 1 the shell cannot fork.
    let pids = lay.inside("pids", "pids.max", "pids.max");
    b.sh(&format!("read p < {pids}; echo $p > /out/pids"));
    let out = rt.run(&id, &b, &[]);
    out.ok();
    assert_eq!(b.read_out("pids").trim(), "1");
    assert!(lay.dirs(&id).is_empty(), "left: {:?}", lay.dirs(&id));
    rt.assert_gone(&id);
}

fn frozen_on_host(lay: &Layout, id: &str) -> bool {
    match lay.v1("freezer") {
        Some(m) => read(&m.join(id).join("freezer.state")) == "FROZEN",
        None => read(&lay.v2.as_ref().unwrap().join(id).join("cgroup.events"))
            .lines()
            .any(|l| l == "frozen 1"),
    }
}

#[test]
fn pause_resume_ps_and_delete_paused() {
    require_root!();
    let lay = Layout::detect();
    let rt = Runtime::new("cgpause");
    let id = rt.id("");
    let mut b = bundle_with("cgpause", &id, json!({}));
    b.sh("sleep 1000 & sleep 1000 & echo up > /out/up; wait");
    let pid = rt.create_and_start(&id, &b);
    b.wait_out("up");

    // ps --format json: runc's array of host pids, the init among them.
    let pids: Vec<i32> =
        serde_json::from_value(rt.cmd(&["ps", "--format", "json", &id]).ok().json()).unwrap();
    assert!(pids.contains(&pid), "{pids:?} lacks init {pid}");
    assert_eq!(pids.len(), 3, "{pids:?}");
    // ps (table): ps -ef's header, then exactly the container's lines.
    let t = rt.cmd(&["ps", &id]).ok().stdout.clone();
    let mut lines = t.lines();
    let header = lines.next().unwrap();
    // procps puts PID second, busybox's ps (the test VM's) first.
    let pid_col = header
        .split_whitespace()
        .position(|f| f == "PID")
        .unwrap_or_else(|| panic!("no PID column: {t}"));
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 3, "{t}");
    for r in rows {
        let p: i32 = r.split_whitespace().nth(pid_col).unwrap().parse().unwrap();
        assert!(pids.contains(&p), "{r}");
    }
    // ps with ps(1) options.
    let t = rt.cmd(&["ps", &id, "-o", "pid,comm"]).ok().stdout.clone();
    assert!(t.lines().next().unwrap().contains("PID"), "{t}");
    assert_eq!(t.lines().count(), 4, "{t}");

    rt.cmd(&["pause", &id]).ok();
    assert_eq!(rt.status(&id), "paused");
    assert!(frozen_on_host(&lay, &id));
    for p in &pids {
        // 'S' (sleeping in the freezer) or 'D': never running.
        let st = proc_state(*p).unwrap();
        assert!(st != 'R', "pid {p} state {st}");
    }
    // Pausing a paused container fails as in runc.
    rt.cmd(&["pause", &id])
        .failed()
        .stderr_has("container not running");
    rt.cmd(&["resume", &id]).ok();
    assert_eq!(rt.status(&id), "running");
    assert!(!frozen_on_host(&lay, &id));
    rt.cmd(&["resume", &id])
        .failed()
        .stderr_has("container not paused");

    // delete --force of a paused container: thawed, killed, removed everywhere.
    rt.cmd(&["pause", &id]).ok();
    rt.delete(&id, false).failed();
    rt.delete(&id, true).ok();
    for p in &pids {
        assert!(!proc_alive(*p), "pid {p} survived delete --force");
    }
    assert!(lay.dirs(&id).is_empty(), "left: {:?}", lay.dirs(&id));
    rt.assert_gone(&id);
}

/// kill --all of a paused container without its own pid namespace: every process gets the
/// signal (none would die with the init) and the SIGKILL lands although they were frozen.
#[test]
fn kill_all_reaches_every_process_even_paused() {
    require_root!();
    let lay = Layout::detect();
    let rt = Runtime::new("cgkill");
    let id = rt.id("");
    let mut b = bundle_with("cgkill", &id, json!({}));
    b.set_namespaces(&["mount", "ipc", "uts"]);
    b.sh("sleep 1000 & sleep 1000 & echo up > /out/up; wait");
    rt.create_and_start(&id, &b);
    b.wait_out("up");
    let pids: Vec<i32> =
        serde_json::from_value(rt.cmd(&["ps", "--format", "json", &id]).ok().json()).unwrap();
    assert_eq!(pids.len(), 3, "{pids:?}");
    rt.cmd(&["pause", &id]).ok();
    rt.cmd(&["kill", "--all", &id, "9"]).ok();
    wait_for("every container process to die", || {
        pids.iter().all(|p| !proc_alive(*p)).then_some(())
    });
    rt.wait_status(&id, "stopped");
    rt.delete(&id, false).ok();
    assert!(lay.dirs(&id).is_empty(), "left: {:?}", lay.dirs(&id));
    rt.assert_gone(&id);
}

/// `update` through stdin (as containerd: `--resources=-`).
fn update_stdin(rt: &Runtime, id: &str, flag: &str, input: &str) -> (bool, String) {
    let mut child = Command::new(husk_bin())
        .args(["--root", &rt.root_str(), "update", flag, id])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn update_flags_json_and_bad_input() {
    require_root!();
    let lay = Layout::detect();
    let rt = Runtime::new("cgupd");
    let id = rt.id("");
    let mut b = bundle_with(
        "cgupd",
        &id,
        json!({"memory": {"limit": 67108864}, "pids": {"limit": 50}}),
    );
    b.sh("echo up > /out/up; sleep 1000");
    rt.create_and_start(&id, &b);
    b.wait_out("up");
    let mem = lay.host(&id, "memory", "memory.limit_in_bytes", "memory.max");
    let pids = lay.host(&id, "pids", "pids.max", "pids.max");
    let shares = lay.host(&id, "cpu", "cpu.shares", "cpu.weight");

    // Per-field flags (runc's names and units).
    rt.cmd(&[
        "update",
        "--memory",
        "100m",
        "--pids-limit",
        "20",
        "--cpu-share",
        "256",
        &id,
    ])
    .ok();
    assert_eq!(read(&mem), "104857600");
    assert_eq!(read(&pids), "20");
    let want_shares = if lay.is_v1("cpu") { "256" } else { "10" };
    assert_eq!(read(&shares), want_shares);

    // --resources=- (containerd) and --resources FILE (Podman).
    let (ok, err) = update_stdin(
        &rt,
        &id,
        "--resources=-",
        r#"{"memory": {"limit": 134217728}, "pids": {"limit": 30}}"#,
    );
    assert!(ok, "{err}");
    assert_eq!(read(&mem), "134217728");
    assert_eq!(read(&pids), "30");
    let f = rt.scratch().join("res.json");
    fs::write(&f, r#"{"pids": {"limit": 40}}"#).unwrap();
    rt.cmd(&["update", "--resources", &f.display().to_string(), &id])
        .ok();
    assert_eq!(read(&pids), "40");
    // Unset fields keep their value.
    assert_eq!(read(&mem), "134217728");

    // Malformed JSON: a clear error, nothing changed.
    let (ok, err) = update_stdin(&rt, &id, "--resources=-", r#"{"memory": {"limit": "x"}}"#);
    assert!(!ok);
    assert!(err.contains("memory"), "{err}");
    assert_eq!(read(&mem), "134217728");
    // A bad value the kernel refuses names the field (runc: exit 1 only).
    let out = rt.cmd(&["update", "--memory", "200m", "--cpuset-cpus", "999", &id]);
    out.failed();
    if !is_runc() {
        out.stderr_has("linux.resources.cpu.cpus");
    }
    // The memory limit written before the refused cpuset was put back.
    assert_eq!(read(&mem), "134217728");
    rt.cmd(&["update", "--memory", "lots", &id]).failed();
    assert_eq!(read(&mem), "134217728");

    // Unknown and stopped containers.
    rt.cmd(&["update", "--memory", "50m", "nosuch-cg-upd"])
        .failed()
        .stderr_has("does not exist");
    rt.kill(&id, Some("KILL")).ok();
    rt.wait_status(&id, "stopped");
    rt.cmd(&["update", "--memory", "50m", &id])
        .failed()
        .stderr_has("container not running");
    rt.delete(&id, false).ok();
    assert!(lay.dirs(&id).is_empty(), "left: {:?}", lay.dirs(&id));
    rt.assert_gone(&id);
}

#[test]
fn events_stats_shape() {
    require_root!();
    let rt = Runtime::new("cgev");
    let id = rt.id("");
    let mut b = bundle_with(
        "cgev",
        &id,
        json!({"memory": {"limit": 67108864}, "pids": {"limit": 50}}),
    );
    b.sh("echo up > /out/up; sleep 1000");
    rt.create_and_start(&id, &b);
    b.wait_out("up");
    let out = rt.cmd(&["events", "--stats", &id]);
    out.ok();
    let ev = out.json();
    assert_eq!(ev["type"], "stats", "{ev}");
    assert_eq!(ev["id"], id.as_str());
    let d = &ev["data"];
    for k in ["cpu", "memory", "pids", "blkio", "hugetlb"] {
        assert!(d.get(k).is_some(), "data lacks {k}: {ev}");
    }
    assert!(d["pids"]["current"].as_u64().unwrap() >= 1, "{ev}");
    assert_eq!(d["pids"]["limit"], 50, "{ev}");
    assert_eq!(d["memory"]["usage"]["limit"], 67108864u64, "{ev}");
    assert!(d["memory"]["usage"]["usage"].as_u64().unwrap() > 0, "{ev}");
    assert!(d["cpu"]["usage"]["total"].as_u64().unwrap() > 0, "{ev}");

    rt.cmd(&["events", "--interval", "0s", &id]).failed();
    rt.kill(&id, Some("KILL")).ok();
    rt.wait_status(&id, "stopped");
    rt.cmd(&["events", "--stats", &id]).failed();
    rt.delete(&id, false).ok();
    rt.assert_gone(&id);
}

/// A cgroup that already exists is refused (husk; runc would join it), and left alone.
#[test]
fn existing_cgroup_is_an_error() {
    require_root!();
    if is_runc() {
        eprintln!("SKIP: runc joins an existing cgroup");
        return;
    }
    let lay = Layout::detect();
    let rt = Runtime::new("cgexist");
    let id = rt.id("");
    let pre = match lay.v1("pids") {
        Some(m) => m.join(&id),
        None => lay.v2.as_ref().unwrap().join(&id),
    };
    fs::create_dir(&pre).unwrap();
    let b = bundle_with("cgexist", &id, json!({}));
    let out = rt.create(&id, &b);
    let _ = fs::remove_dir(&pre);
    out.failed().stderr_has("already exists");
    rt.assert_gone(&id);
}

/// A device rule with an access letter other than r, w, m is refused and leaves nothing
/// (runc 1.1.5 silently accepts "rwx").
#[test]
fn device_rule_with_bad_access_is_refused() {
    require_root!();
    if is_runc() {
        eprintln!("SKIP: runc 1.1.5 accepts unknown access letters");
        return;
    }
    let rt = Runtime::new("cgdev");
    let id = rt.id("");
    let b = bundle_with(
        "cgdev",
        &id,
        json!({"devices": [{"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwx"}]}),
    );
    rt.create(&id, &b)
        .failed()
        .stderr_has("linux.resources.devices");
    assert!(Layout::detect().dirs(&id).is_empty());
    rt.assert_gone(&id);
}

/// v1 device rules (where the devices controller is v1): deny all, then allow /dev/null only;
/// the config's rules and runc's defaults are in devices.list, and /dev/full stays openable
/// (a default rule) while a denied device cannot be created.
#[test]
fn v1_device_rules() {
    require_root!();
    let lay = Layout::detect();
    let Some(m) = lay.v1("devices").cloned() else {
        eprintln!("SKIP: no v1 devices controller");
        return;
    };
    let rt = Runtime::new("cgdev1");
    let id = rt.id("");
    let mut b = bundle_with(
        "cgdev1",
        &id,
        json!({"devices": [
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"}
        ]}),
    );
    b.sh("echo x > /dev/null && echo ok > /out/null; mknod /tmp/sda b 8 0 2>/out/mknod-err || true; echo done > /out/done; sleep 1000");
    rt.create_and_start(&id, &b);
    b.wait_out("done");
    let list = read(&m.join(&id).join("devices.list"));
    assert!(list.lines().any(|l| l == "c 1:3 rwm"), "{list}");
    assert!(!list.lines().any(|l| l == "a *:* rwm"), "{list}");
    assert!(!list.lines().any(|l| l.starts_with("b 8:")), "{list}");
    assert_eq!(b.read_out("null").trim(), "ok");
    rt.delete(&id, true).ok();
    rt.assert_gone(&id);
}

/// Device rules enforced from inside on any layout (v1 devices controller, or the eBPF
/// filter on cgroup v2): two device nodes from linux.devices, only one of them allowed.
#[test]
fn device_rules_enforced_inside() {
    require_root!();
    let rt = Runtime::new("cgdevin");
    let id = rt.id("");
    let mut b = bundle_with(
        "cgdevin",
        &id,
        json!({"devices": [
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 7, "access": "rw"}
        ]}),
    );
    b.config["linux"]["devices"] = json!([
        {"path": "/dev/full2", "type": "c", "major": 1, "minor": 7, "fileMode": 438},
        {"path": "/dev/kmsg2", "type": "c", "major": 1, "minor": 11, "fileMode": 438}
    ]);
    b.sh("head -c 1 /dev/full2 > /dev/null && echo ok > /out/full2; \
          head -c 1 /dev/kmsg2 > /dev/null 2>/out/kmsg2-err || echo denied > /out/kmsg2; \
          echo x > /dev/null && echo ok > /out/null");
    rt.run(&id, &b, &[]).ok();
    assert_eq!(b.read_out("full2").trim(), "ok");
    assert_eq!(b.read_out("null").trim(), "ok", "a default device");
    assert_eq!(b.read_out("kmsg2").trim(), "denied");
    let err = b.read_out("kmsg2-err");
    assert!(err.contains("not permitted"), "{err}");
    rt.assert_gone(&id);
}

/// The init of a container without its own pid namespace exits, leaving a child behind in the
/// cgroup: delete kills it and removes the cgroup everywhere.
#[test]
fn delete_reaps_leftover_processes() {
    require_root!();
    let lay = Layout::detect();
    let rt = Runtime::new("cgleft");
    let id = rt.id("");
    let mut b = bundle_with("cgleft", &id, json!({}));
    b.set_namespaces(&["mount", "ipc", "uts"]);
    b.sh("sleep 1000 & echo $! > /out/child; echo up > /out/up");
    rt.create_and_start(&id, &b);
    b.wait_out("up");
    let child: i32 = b.wait_out("child").trim().parse().unwrap();
    rt.wait_status(&id, "stopped");
    assert!(proc_alive(child));
    rt.delete(&id, false).ok();
    wait_for("the leftover child to die", || {
        (!proc_alive(child)).then_some(())
    });
    assert!(lay.dirs(&id).is_empty(), "left: {:?}", lay.dirs(&id));
    rt.assert_gone(&id);
}

/// Per-device block I/O throttles and the CFS burst, read back from the host.
#[test]
fn blkio_throttles_and_cpu_burst() {
    require_root!();
    let lay = Layout::detect();
    // Any block device will do (the throttles only have to be accepted and read back); the
    // test VM has none, so there it cannot run.
    let dev = fs::read_dir("/sys/block")
        .into_iter()
        .flatten()
        .flatten()
        .find_map(|e| fs::read_to_string(e.path().join("dev")).ok());
    let Some(dev) = dev else {
        eprintln!("SKIP blkio_throttles_and_cpu_burst: no block device on this host");
        return;
    };
    let (maj, min) = dev.trim().split_once(':').unwrap();
    let (maj, min): (i64, i64) = (maj.parse().unwrap(), min.parse().unwrap());
    let rt = Runtime::new("cgblk");
    let id = rt.id("");
    let mut b = bundle_with(
        "cgblk",
        &id,
        json!({
            "blockIO": {
                "throttleReadBpsDevice": [{"major": maj, "minor": min, "rate": 1048576}],
                "throttleWriteIOPSDevice": [{"major": maj, "minor": min, "rate": 100}]
            },
            "cpu": {"quota": 20000, "period": 100000, "burst": 1000}
        }),
    );
    b.sh("echo up > /out/up; sleep 1000");
    rt.create_and_start(&id, &b);
    b.wait_out("up");
    if lay.is_v1("blkio") {
        let d = lay.v1("blkio").unwrap().join(&id);
        assert_eq!(
            read(&d.join("blkio.throttle.read_bps_device")),
            format!("{maj}:{min} 1048576")
        );
        assert_eq!(
            read(&d.join("blkio.throttle.write_iops_device")),
            format!("{maj}:{min} 100")
        );
    } else {
        let io = read(&lay.v2.as_ref().unwrap().join(&id).join("io.max"));
        assert!(io.contains(&format!("{maj}:{min} rbps=1048576")), "{io}");
        assert!(io.contains("wiops=100"), "{io}");
    }
    let burst = lay.host(&id, "cpu", "cpu.cfs_burst_us", "cpu.max.burst");
    // runc 1.1.5 ignores cpu.burst.
    if burst.exists() && !is_runc() {
        assert_eq!(read(&burst), "1000");
    }
    rt.delete(&id, true).ok();
    assert!(lay.dirs(&id).is_empty(), "left: {:?}", lay.dirs(&id));
    rt.assert_gone(&id);
}

/// `events` (streaming): stats lines every interval, an `oom` event when the OOM killer
/// strikes in the container, and the command ends once the container has stopped.
#[test]
fn events_stream_reports_oom() {
    require_root!();
    let lay = Layout::detect();
    let rt = Runtime::new("cgoom");
    let id = rt.id("");
    let mut mem = json!({"limit": 16777216});
    if lay
        .v1("memory")
        .is_some_and(|m| m.join("memory.memsw.limit_in_bytes").exists())
        || !lay.is_v1("memory")
    {
        mem["swap"] = json!(16777216);
    }
    let mut b = bundle_with("cgoom", &id, json!({ "memory": mem }));
    // Wait for the go signal, then grow the shell past the limit.
    b.sh(
        "echo up > /out/up; while [ ! -e /out/go ]; do sleep 0.05; done; \
          x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo survived > /out/survived",
    );
    rt.create_and_start(&id, &b);
    b.wait_out("up");
    let out_path = rt.scratch().join("events.out");
    let out_file = fs::File::create(&out_path).unwrap();
    let mut ev = Command::new(husk_bin())
        .args([
            "--root",
            &rt.root_str(),
            "events",
            "--interval",
            "50ms",
            &id,
        ])
        .stdout(out_file)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The first stats line shows the stream is up before the OOM happens.
    wait_for("a stats event", || {
        fs::read_to_string(&out_path)
            .ok()
            .filter(|s| s.contains(r#""type":"stats""#))
    });
    fs::write(b.out().join("go"), "").unwrap();
    let text = wait_for("an oom event", || {
        fs::read_to_string(&out_path)
            .ok()
            .filter(|s| s.contains(r#""type":"oom""#))
    });
    let oom: Value = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|v| v["type"] == "oom")
        .unwrap();
    assert_eq!(oom, json!({"type": "oom", "id": id}));
    // The OOM killer may have taken the init already.
    let _ = rt.kill(&id, Some("KILL"));
    rt.wait_status(&id, "stopped");
    if is_runc() {
        // runc's events keeps running after the container stopped.
        let _ = ev.kill();
        let _ = ev.wait();
    } else {
        let st = wait_for("events to exit", || ev.try_wait().unwrap());
        assert!(st.success(), "{st:?}");
    }
    rt.delete(&id, false).ok();
    rt.assert_gone(&id);
}

/// A frozen parent cgroup: create fails with a clear error instead of hanging, and leaves
/// nothing (the parent, made and frozen by this test, is left as it was).
#[test]
fn frozen_parent_is_an_error() {
    require_root!();
    if is_runc() {
        eprintln!("SKIP: runc hangs or joins here");
        return;
    }
    let lay = Layout::detect();
    let rt = Runtime::new("cgfrz");
    let id = rt.id("");
    let parent = format!("{id}-parent");
    // Freeze an (empty) parent made by this test on the hierarchy that holds the freezer.
    let (pdir, file, on, off) = match lay.v1("freezer") {
        Some(m) => (m.join(&parent), "freezer.state", "FROZEN", "THAWED"),
        None => (
            lay.v2.as_ref().unwrap().join(&parent),
            "cgroup.freeze",
            "1",
            "0",
        ),
    };
    fs::create_dir(&pdir).unwrap();
    fs::write(pdir.join(file), on).unwrap();
    let mut b = Bundle::new("cgfrz");
    b.config["linux"]["cgroupsPath"] = json!(format!("/{parent}/{id}"));
    let out = rt.create(&id, &b);
    let _ = fs::write(pdir.join(file), off);
    // Remove the parent on every hierarchy (create may have made it on the others).
    let mut parents: Vec<PathBuf> = lay.v1.iter().map(|(_, m)| m.join(&parent)).collect();
    parents.extend(lay.v2.iter().map(|m| m.join(&parent)));
    for p in parents {
        let _ = fs::remove_dir(&p);
    }
    out.failed().stderr_has("frozen");
    rt.assert_gone(&id);
}

/// `exec --cgroup`: the process lands in an existing sub-cgroup of the container's, on every
/// hierarchy (`--cgroup sub`) or in one v1 controller (`--cgroup pids:sub`); `ps` lists it,
/// `delete` removes the sub-cgroups with the container's; a path outside the container's
/// cgroup, a missing sub-cgroup or an unknown controller is refused and leaves nothing running.
#[test]
fn exec_into_a_sub_cgroup() {
    require_root!();
    let lay = Layout::detect();
    let rt = Runtime::new("cgexsub");
    let id = rt.id("");
    let mut b = bundle_with("cgexsub", &id, json!({}));
    b.set_args(&["sleep", "1000"]);
    let init = rt.create_and_start(&id, &b);
    let dirs = lay.dirs(&id);
    assert!(!dirs.is_empty());
    for d in &dirs {
        fs::create_dir(d.join("sub")).unwrap();
        // A new v1 cpuset cgroup has no cpus or mems: no task may join it until they are set
        // (ENOSPC); neither runc nor husk fills in a sub-cgroup the user made.
        // (On v2 the sub-cgroup has no cpuset files: the container's subtree_control is empty.)
        if d.join("sub/cpuset.cpus").exists() && read(&d.join("sub/cpuset.cpus")).is_empty() {
            for f in ["cpuset.cpus", "cpuset.mems"] {
                fs::write(d.join("sub").join(f), read(&d.join(f))).unwrap();
            }
        }
    }
    let procs = |d: &PathBuf| -> Vec<i32> {
        read(&d.join("cgroup.procs"))
            .lines()
            .filter_map(|l| l.parse().ok())
            .collect()
    };
    let exec_detached = |cg: &str| -> i32 {
        let pid_file = rt.scratch().join("exec.pid");
        let _ = fs::remove_file(&pid_file);
        let pf = pid_file.to_str().unwrap();
        rt.cmd(&[
            "exec",
            "-d",
            "--pid-file",
            pf,
            "--cgroup",
            cg,
            &id,
            "sleep",
            "1000",
        ])
        .ok();
        read(&pid_file).parse().unwrap()
    };

    // Every hierarchy.
    let all = exec_detached("sub");
    for d in &dirs {
        assert!(procs(&d.join("sub")).contains(&all), "{}", d.display());
        assert!(!procs(d).contains(&all), "{}", d.display());
        assert!(procs(d).contains(&init), "{}", d.display());
    }
    // Seen from inside, through the cgroup namespace: the sub-cgroup of the container's.
    let out = rt.cmd(&["exec", "--cgroup", "sub", &id, "cat", "/proc/self/cgroup"]);
    out.ok();
    assert!(out.stdout.lines().all(|l| l.ends_with(":/sub")), "{out}");

    // One v1 controller: the others keep the container's own cgroup.
    if let Some(pids_mount) = lay.v1("pids") {
        let one = exec_detached("pids:sub");
        let pids_dir = pids_mount.join(&id);
        for d in &dirs {
            let sub = procs(&d.join("sub")).contains(&one);
            assert_eq!(sub, *d == pids_dir, "{}", d.display());
            assert_eq!(procs(d).contains(&one), *d != pids_dir, "{}", d.display());
        }
    }

    // `ps` lists the processes of the sub-cgroups too.
    let listed: Vec<i32> =
        serde_json::from_value(rt.cmd(&["ps", "--format", "json", &id]).ok().json()).unwrap();
    assert!(
        listed.contains(&init) && listed.contains(&all),
        "{listed:?}"
    );

    // Refused: nothing more runs in the container afterwards.
    let before = listed.len();
    let mut cases = vec![
        ("../escape", "is not a sub cgroup path"),
        ("no-such-sub", "no-such-sub"),
        ("nosuchctrl:sub", "nosuchctrl"),
    ];
    if !is_runc() {
        // runc 1.1.5 takes an empty prefix for "every hierarchy"; runc 1.2 refuses it, as husk.
        cases.push((":sub", "empty <controller> prefix"));
    }
    for (cg, want) in cases {
        let out = rt.cmd(&["exec", "--cgroup", cg, &id, "true"]);
        assert_eq!(out.status, 255, "{cg}: {out}");
        out.stderr_has(want);
    }
    let after: Vec<i32> =
        serde_json::from_value(rt.cmd(&["ps", "--format", "json", &id]).ok().json()).unwrap();
    assert_eq!(after.len(), before, "{after:?}");

    rt.delete(&id, true).ok();
    assert!(lay.dirs(&id).is_empty(), "left: {:?}", lay.dirs(&id));
    rt.assert_gone(&id);
}
