//! User namespaces (`linux.uidMappings`/`gidMappings`, written by the host side) and time
//! namespaces (`linux.timeOffsets`), checked from inside and outside the container.

use integration_tests::*;
use serde_json::json;
use std::os::unix::fs::MetadataExt;
use std::process::Command;

/// A bundle with a new user namespace mapping container 0.. to host `base`.., its rootfs
/// chowned to the mapped root so the container's root can use it.
fn userns_bundle(
    name: &str,
    uid_maps: serde_json::Value,
    gid_maps: serde_json::Value,
    root_host: u32,
) -> Bundle {
    let mut b = Bundle::new(name);
    let ns = b.config["linux"]["namespaces"].as_array_mut().unwrap();
    ns.push(json!({"type": "user"}));
    b.config["linux"]["uidMappings"] = uid_maps;
    b.config["linux"]["gidMappings"] = gid_maps;
    let st = Command::new("chown")
        .args(["-R", &format!("{root_host}:{root_host}")])
        .arg(b.rootfs())
        .status()
        .unwrap();
    assert!(st.success());
    b
}

fn field(status: &str, key: &str) -> Vec<String> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

#[test]
fn mappings_are_written_and_files_belong_to_mapped_ids() {
    require_root!();
    let rt = Runtime::new("cf-userns");
    let mut b = userns_bundle(
        "userns",
        json!([{"containerID": 0, "hostID": 100000, "size": 1000},
               {"containerID": 1000, "hostID": 201000, "size": 10}]),
        json!([{"containerID": 0, "hostID": 100000, "size": 65536}]),
        100000,
    );
    // The init's writes under /proc (procfs.rs) work inside the user namespace too.
    b.config["process"]["oomScoreAdj"] = json!(123);
    b.config["linux"]["sysctl"] = json!({"kernel.shmmni": "1234"});
    b.sh(
        "cat /proc/self/uid_map /proc/self/gid_map > /out/maps; id -u > /out/id; \
          cat /proc/self/oom_score_adj /proc/sys/kernel/shmmni > /out/procw; \
          ls /sys/fs/cgroup/pids/cgroup.procs > /out/cg; \
          touch /out/by-root; ls -ln /bin/busybox | awk '{print $3\":\"$4}' > /out/owner; \
          mount | grep -E ' on /(proc|sys|dev/pts|dev/mqueue) ' | awk '{print $3}' > /out/mounts; \
          echo ok > /out/done; exec sleep 1000",
    );
    let id = rt.id("u");
    let pid = rt.create_and_start(&id, &b);
    b.wait_out("done");
    let maps: Vec<Vec<String>> = b
        .read_out("maps")
        .lines()
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect();
    assert_eq!(
        maps,
        vec![
            vec!["0", "100000", "1000"],
            vec!["1000", "201000", "10"],
            vec!["0", "100000", "65536"]
        ]
    );
    assert_eq!(b.read_out("id"), "0\n");
    assert_eq!(b.read_out("procw"), "123\n1234\n");
    // The cgroup hierarchies are mounted inside the user namespace as well.
    assert_eq!(b.read_out("cg"), "/sys/fs/cgroup/pids/cgroup.procs\n");
    // Inside, the rootfs belongs to root; outside, the file root made belongs to 100000.
    assert_eq!(b.read_out("owner"), "0:0\n");
    let meta = std::fs::metadata(b.out().join("by-root")).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (100000, 100000));
    assert_eq!(
        b.read_out("mounts"),
        "/proc\n/dev/pts\n/dev/mqueue\n/sys\n",
        "mounts inside the user namespace"
    );
    // Outside: the host sees the mapped ids and a user namespace of its own.
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert_eq!(field(&status, "Uid"), ["100000"; 4]);
    assert_ne!(ns_link(&pid.to_string(), "user"), ns_link("self", "user"));
    let uid_map = std::fs::read_to_string(format!("/proc/{pid}/uid_map")).unwrap();
    assert!(uid_map.contains("201000"), "{uid_map}");
    rt.kill(&id, Some("KILL")).ok();
    rt.wait_status(&id, "stopped");
    rt.delete(&id, false).ok();
}

#[test]
fn container_user_through_second_range() {
    require_root!();
    let rt = Runtime::new("cf-userns2");
    let mut b = userns_bundle(
        "userns2",
        json!([{"containerID": 0, "hostID": 100000, "size": 1000},
               {"containerID": 1000, "hostID": 201000, "size": 10}]),
        json!([{"containerID": 0, "hostID": 100000, "size": 1000},
               {"containerID": 1000, "hostID": 201000, "size": 10}]),
        100000,
    );
    b.config["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    b.sh("id -u; id -g; touch /out/by-1000; grep -E '^Cap(Eff|Bnd|Amb):' /proc/self/status");
    let out = rt.run_once(&b);
    out.ok();
    assert!(out.stdout.starts_with("1000\n1000\n"), "{out:?}");
    let meta = std::fs::metadata(b.out().join("by-1000")).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (201000, 201000));
    // A non-root user keeps no effective or ambient capability; the bounding set is the config's.
    assert!(out.stdout.contains("CapEff:\t0000000000000000"), "{out:?}");
    assert!(out.stdout.contains("CapAmb:\t0000000000000000"), "{out:?}");
}

#[test]
fn bad_mappings_name_the_field() {
    require_root!();
    let rt = Runtime::new("cf-userns-bad");
    let cases = [
        (
            json!([{"containerID": 0, "hostID": 100000, "size": 100},
                   {"containerID": 50, "hostID": 300000, "size": 100}]),
            "linux.uidMappings[1]",
        ),
        (
            json!([{"containerID": 0, "hostID": 4294967200u32, "size": 1000}]),
            "linux.uidMappings[0]",
        ),
        (
            json!([{"containerID": 0, "hostID": 100000, "size": 0}]),
            "linux.uidMappings[0]",
        ),
    ];
    for (uid_maps, field) in cases {
        let b = userns_bundle(
            "userns-bad",
            uid_maps,
            json!([{"containerID": 0, "hostID": 100000, "size": 65536}]),
            100000,
        );
        let id = rt.id("bad");
        let out = rt.create(&id, &b);
        out.failed();
        if !is_runc() {
            out.stderr_has(field);
        }
        rt.assert_gone(&id);
    }
}

/// A second container joins the first one's user namespace by path and gets new mount, UTS,
/// IPC and network namespaces owned by it.
#[test]
fn join_user_namespace_by_path_with_new_namespaces() {
    require_root!();
    let rt = Runtime::new("cf-userns-join");
    let mut a = userns_bundle(
        "userns-a",
        json!([{"containerID": 0, "hostID": 100000, "size": 65536}]),
        json!([{"containerID": 0, "hostID": 100000, "size": 65536}]),
        100000,
    );
    a.sh("exec sleep 1000");
    let ida = rt.id("a");
    let pida = rt.create_and_start(&ida, &a);

    let mut b = Bundle::new("userns-b");
    Command::new("chown")
        .args(["-R", "100000:100000"])
        .arg(b.rootfs())
        .status()
        .unwrap();
    let ns = b.config["linux"]["namespaces"].as_array_mut().unwrap();
    ns.retain(|n| n["type"] != "pid");
    ns.push(json!({"type": "user", "path": format!("/proc/{pida}/ns/user")}));
    ns.push(json!({"type": "pid", "path": format!("/proc/{pida}/ns/pid")}));
    // runc 1.1.5 insists on the (same) mappings even for a joined namespace; husk ignores them.
    b.config["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    b.config["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    b.config["hostname"] = json!("joined");
    b.sh("hostname; id -u; touch /out/f; exec sleep 1000");
    let idb = rt.id("b");
    let pidb = rt.create_and_start(&idb, &b);
    let pb = pidb.to_string();
    let pa = pida.to_string();
    wait_for("b's output", || std::fs::metadata(b.out().join("f")).ok());
    assert_eq!(ns_link(&pb, "user"), ns_link(&pa, "user"));
    for n in ["mnt", "uts", "ipc", "net"] {
        assert_ne!(ns_link(&pb, n), ns_link(&pa, n), "{n}");
        assert_ne!(ns_link(&pb, n), ns_link("self", n), "{n}");
    }
    let meta = std::fs::metadata(b.out().join("f")).unwrap();
    assert_eq!(meta.uid(), 100000);
    for id in [&idb, &ida] {
        rt.kill(id, Some("KILL")).ok();
        rt.wait_status(id, "stopped");
        rt.delete(id, false).ok();
    }
}

#[test]
fn time_namespace_offsets() {
    require_root!();
    if is_runc() {
        return; // runc 1.1.5 predates time namespaces (runtime-spec 1.2)
    }
    let rt = Runtime::new("cf-timens");
    let mut b = Bundle::new("timens");
    b.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "time"}));
    b.config["linux"]["timeOffsets"] =
        json!({"boottime": {"secs": 100000000, "nanosecs": 0}, "monotonic": {"secs": 200000000}});
    b.sh("cut -d' ' -f1 /proc/uptime; cat /proc/self/timens_offsets; readlink /proc/self/ns/time");
    let out = rt.run_once(&b);
    out.ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    let uptime: f64 = lines[0].parse().unwrap();
    assert!(uptime >= 100000000.0, "{out:?}");
    let offsets: Vec<Vec<&str>> = lines[1..3]
        .iter()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert!(
        offsets.contains(&vec!["monotonic", "200000000", "0"]),
        "{out:?}"
    );
    assert!(
        offsets.contains(&vec!["boottime", "100000000", "0"]),
        "{out:?}"
    );
    assert_ne!(
        lines.last().copied(),
        Some(ns_link("self", "time").as_str())
    );
    // Outside, the runtime's own clock was not moved.
    let host_up: f64 = std::fs::read_to_string("/proc/uptime")
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(host_up < 100000000.0);
}
