//! create / start / state / kill / delete / run, checked from outside and inside.

use integration_tests::*;
use serde_json::json;
use std::fs;

const NAMESPACES: [(&str, &str); 6] = [
    ("pid", "pid"),
    ("mount", "mnt"),
    ("network", "net"),
    ("ipc", "ipc"),
    ("uts", "uts"),
    ("cgroup", "cgroup"),
];

/// A process that exits 0 on SIGTERM (pid 1 in a pid namespace ignores it otherwise).
const WAIT_FOR_TERM: &str = "trap 'exit 0' TERM; echo up > /out/up; sleep 1000 & wait";

#[test]
fn create_start_kill_delete() {
    require_root!();
    let mut b = Bundle::new("lifecycle");
    b.sh("echo started > /out/started; sleep 1000");
    let rt = Runtime::new("lifecycle");
    let id = rt.id("");
    let pid_file = rt.scratch().join("pid");
    let pid_file_s = pid_file.display().to_string();

    rt.create_with(&id, &b, &["--pid-file", &pid_file_s]).ok();
    let st = rt.state_json(&id);
    assert_eq!(st["status"], "created", "{st}");
    let pid = st["pid"].as_i64().unwrap();
    assert!(pid > 0, "{st}");
    let written = fs::read_to_string(&pid_file).expect("pid file written");
    // Exactly the digits: go-runc parses it with strconv.Atoi, no trimming.
    assert_eq!(written, pid.to_string(), "pid file vs state");
    assert!(proc_alive(pid as i32));
    // The user's process has not run yet.
    assert_eq!(b.read_out("started"), "");
    assert!(rt.root().join(&id).is_dir());

    // Every namespace asked for is new.
    for (_, ns) in NAMESPACES {
        assert_ne!(
            ns_link("self", ns),
            ns_link(&pid.to_string(), ns),
            "{ns} namespace should be new"
        );
    }

    rt.start(&id).ok();
    assert_eq!(b.wait_out("started"), "started\n");
    let st = rt.state_json(&id);
    assert_eq!(st["status"], "running", "{st}");
    assert_eq!(
        st["pid"].as_i64().unwrap(),
        pid,
        "pid stays the same after start"
    );

    rt.kill(&id, Some("KILL")).ok();
    rt.wait_status(&id, "stopped");
    assert!(!proc_alive(pid as i32));

    rt.delete(&id, false).ok();
    assert!(!rt.root().join(&id).exists(), "state dir removed");
    rt.state(&id).failed().stderr_has("does not exist");
    rt.assert_gone(&id);
}

#[test]
fn namespaces_not_listed_are_shared_with_host() {
    require_root!();
    let mut b = Bundle::new("ns-shared");
    b.set_namespaces(&["pid", "mount"]);
    b.config.as_object_mut().unwrap().remove("hostname");
    b.set_args(&["sleep", "1000"]);
    let rt = Runtime::new("ns-shared");
    let id = rt.id("");
    rt.create(&id, &b).ok();
    let pid = rt.pid(&id).to_string();
    for (ty, ns) in NAMESPACES {
        let asked = ty == "pid" || ty == "mount";
        let (host, ctr) = (ns_link("self", ns), ns_link(&pid, ns));
        if asked {
            assert_ne!(host, ctr, "{ns} should be new");
        } else {
            assert_eq!(host, ctr, "{ns} should be the host's");
        }
    }
    rt.delete(&id, true).ok();
    rt.assert_gone(&id);
}

#[test]
fn kill_signal_forms() {
    require_root!();
    let mut b = Bundle::new("kill-forms");
    b.sh(WAIT_FOR_TERM);
    let rt = Runtime::new("kill-forms");
    for (i, sig) in [
        None,
        Some("KILL"),
        Some("SIGKILL"),
        Some("9"),
        Some("TERM"),
        Some("15"),
    ]
    .into_iter()
    .enumerate()
    {
        let _ = fs::remove_file(b.out().join("up"));
        let id = rt.id(&format!("s{i}"));
        let pid = rt.create_and_start(&id, &b);
        b.wait_out("up");
        assert_eq!(rt.status(&id), "running");
        rt.kill(&id, sig).ok();
        rt.wait_status(&id, "stopped");
        assert!(!proc_alive(pid), "signal {sig:?}");
        let st = rt.state_json(&id);
        assert_eq!(st["pid"], 0, "stopped state reports pid 0: {st}");
        // Killing a stopped container fails, and says so.
        rt.kill(&id, sig)
            .failed()
            .stderr_has("container not running");
        rt.delete(&id, false).ok();
        rt.assert_gone(&id);
    }
}

#[test]
fn state_json_shape() {
    require_root!();
    let mut b = Bundle::new("state-shape");
    b.set_args(&["sleep", "1000"]);
    b.config["annotations"] = json!({"org.example.key": "value", "other": "x"});
    let rt = Runtime::new("state-shape");
    let id = rt.id("");
    rt.create(&id, &b).ok();
    let out = rt.state(&id);
    out.ok();
    let st = out.json();
    let obj = st.as_object().expect("state is an object");
    assert!(obj["ociVersion"].is_string(), "{st}");
    assert_eq!(st["id"], id.as_str());
    assert!(st["pid"].as_i64().unwrap() > 0);
    assert_eq!(st["status"], "created");
    assert_eq!(st["bundle"], b.path_str().as_str());
    assert_eq!(st["rootfs"], b.rootfs().display().to_string().as_str());
    let created = st["created"].as_str().expect("created is a string");
    assert!(is_rfc3339(created), "created not RFC 3339: {created}");
    assert!(obj["owner"].is_string(), "owner present: {st}");
    assert_eq!(
        st["annotations"],
        json!({"org.example.key": "value", "other": "x"})
    );
    rt.delete(&id, true).ok();

    // No annotations in the config: none in the state.
    b.config.as_object_mut().unwrap().remove("annotations");
    let id2 = rt.id("noann");
    rt.create(&id2, &b).ok();
    let st = rt.state_json(&id2);
    let ann = st.get("annotations");
    assert!(
        ann.is_none() || ann == Some(&json!({})) || ann == Some(&json!(null)),
        "{st}"
    );
    rt.delete(&id2, true).ok();
    rt.assert_gone(&id);
    rt.assert_gone(&id2);
}

#[test]
fn run_foreground_exit_status_and_stdio() {
    require_root!();
    let mut b = Bundle::new("run-fg");
    b.sh("echo to-stdout; echo to-stderr >&2; exit 3");
    let rt = Runtime::new("run-fg");
    let id = rt.id("");
    let out = rt.run(&id, &b, &[]);
    assert_eq!(out.status, 3, "{out}");
    assert_eq!(out.stdout, "to-stdout\n");
    assert!(out.stderr.contains("to-stderr"), "{out}");
    // Without --keep the container is gone.
    rt.state(&id).failed().stderr_has("does not exist");
    rt.assert_gone(&id);

    b.sh("exit 0");
    let id = rt.id("zero");
    assert_eq!(rt.run(&id, &b, &[]).status, 0);
    rt.assert_gone(&id);

    // Killed by a signal: 128 + signal (no pid namespace, so the shell is not an init that
    // ignores SIGTERM).
    b.set_namespaces(&["mount", "uts", "ipc", "network"]);
    b.sh("kill -TERM $$; sleep 5");
    let id = rt.id("signal");
    assert_eq!(rt.run(&id, &b, &[]).status, 128 + 15);
    rt.assert_gone(&id);
}

#[test]
fn run_detached() {
    require_root!();
    let mut b = Bundle::new("run-d");
    b.sh("echo $$ > /out/pid; sleep 1000");
    let rt = Runtime::new("run-d");
    let id = rt.id("");
    let out = rt.run(&id, &b, &["-d"]);
    out.ok();
    assert_eq!(
        b.wait_out("pid"),
        "1\n",
        "the process is pid 1 in its namespace"
    );
    let st = rt.state_json(&id);
    assert_eq!(st["status"], "running");
    assert!(proc_alive(st["pid"].as_i64().unwrap() as i32));
    rt.delete(&id, true).ok();
    rt.assert_gone(&id);

    let id = rt.id("long");
    rt.run(&id, &b, &["--detach"]).ok();
    assert_eq!(rt.status(&id), "running");
    rt.kill(&id, Some("9")).ok();
    rt.wait_status(&id, "stopped");
    rt.delete(&id, false).ok();
    rt.assert_gone(&id);
}

#[test]
fn run_keep_leaves_stopped_container() {
    require_root!();
    let mut b = Bundle::new("run-keep");
    b.sh("echo kept > /out/ran; exit 5");
    let rt = Runtime::new("run-keep");
    let id = rt.id("");
    let out = rt.run(&id, &b, &["--keep"]);
    assert_eq!(out.status, 5, "{out}");
    assert_eq!(b.read_out("ran"), "kept\n");
    let st = rt.state_json(&id);
    assert_eq!(st["status"], "stopped", "{st}");
    let list = rt.cmd(&["list", "--format", "json"]);
    list.ok();
    let entries = list.json();
    let entry = entries
        .as_array()
        .expect("list is an array")
        .iter()
        .find(|e| e["id"] == id.as_str())
        .unwrap_or_else(|| panic!("{id} not listed: {list}"));
    assert_eq!(entry["status"], "stopped");
    rt.delete(&id, false).ok();
    rt.state(&id).failed().stderr_has("does not exist");
    rt.assert_gone(&id);
}

#[test]
fn global_and_create_flag_forms() {
    require_root!();
    let mut b = Bundle::new("flag-forms");
    b.set_args(&["sleep", "1000"]);
    b.save();
    let rt = Runtime::new("flag-forms");
    let root = rt.root_str();
    let bundle = b.path_str();
    let scratch = rt.scratch();
    let log1 = scratch.join("log1.json").display().to_string();
    let log2 = scratch.join("log2.json").display().to_string();
    let pid1 = scratch.join("pid1").display().to_string();
    let pid2 = scratch.join("pid2").display().to_string();

    // --flag value
    let id1 = rt.id("sep");
    rt.raw(&[
        "--root",
        &root,
        "--log",
        &log1,
        "--log-format",
        "json",
        "create",
        "--bundle",
        &bundle,
        "--pid-file",
        &pid1,
        &id1,
    ])
    .ok();
    // --flag=value
    let id2 = rt.id("eq");
    rt.raw(&[
        &format!("--root={root}"),
        &format!("--log={log2}"),
        "--log-format=json",
        "create",
        &format!("--bundle={bundle}"),
        &format!("--pid-file={pid2}"),
        &id2,
    ])
    .ok();
    // -b
    let id3 = rt.id("short");
    rt.raw(&["--root", &root, "create", "-b", &bundle, &id3])
        .ok();

    for (id, pid_file) in [(&id1, Some(&pid1)), (&id2, Some(&pid2)), (&id3, None)] {
        let st = rt.state_json(id);
        assert_eq!(st["status"], "created");
        assert_eq!(st["bundle"], bundle.as_str());
        if let Some(p) = pid_file {
            let text = fs::read_to_string(p).expect("pid file");
            assert_eq!(text.trim(), st["pid"].to_string());
        }
    }

    // The log flags took effect: a failure lands in the files as JSON.
    rt.raw(&[
        "--root",
        &root,
        "--log",
        &log1,
        "--log-format",
        "json",
        "start",
        "nope-x",
    ])
    .failed();
    rt.raw(&[
        &format!("--root={root}"),
        &format!("--log={log2}"),
        "--log-format=json",
        "kill",
        "nope-y",
    ])
    .failed();
    for log in [&log1, &log2] {
        let text = fs::read_to_string(log).expect("log file written");
        let last = text.lines().last().expect("log has a line");
        let v: serde_json::Value =
            serde_json::from_str(last).unwrap_or_else(|e| panic!("{log}: {last:?}: {e}"));
        assert_eq!(v["level"], "error");
        assert!(v["msg"].as_str().unwrap().contains("does not exist"), "{v}");
    }
    for id in [&id1, &id2, &id3] {
        rt.delete(id, true).ok();
        rt.assert_gone(id);
    }
}

#[test]
fn root_path_relative_and_absolute() {
    require_root!();
    let mut b = Bundle::new("root-path");
    b.write_rootfs_file("marker", "from-rootfs\n");
    b.sh("cat /marker > /out/seen");
    let rt = Runtime::new("root-path");
    let abs = b.rootfs().display().to_string();
    for (i, path) in ["rootfs".to_string(), abs.clone()].into_iter().enumerate() {
        let _ = fs::remove_file(b.out().join("seen"));
        b.config["root"]["path"] = json!(path);
        let id = rt.id(&format!("p{i}"));
        rt.create(&id, &b).ok();
        let st = rt.state_json(&id);
        assert_eq!(
            st["rootfs"],
            abs.as_str(),
            "state.rootfs is absolute for {path}"
        );
        rt.start(&id).ok();
        assert_eq!(b.wait_out("seen"), "from-rootfs\n");
        rt.wait_status(&id, "stopped");
        rt.delete(&id, false).ok();
        rt.assert_gone(&id);
    }
}
