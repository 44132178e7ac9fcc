//! Error paths: exit codes and the wording callers (containerd, Podman) match on.

use integration_tests::*;
use std::fs;

#[test]
fn unknown_id() {
    require_root!();
    let rt = Runtime::new("unknown-id");
    let id = rt.id("");
    for args in [
        vec!["kill", id.as_str()],
        vec!["kill", id.as_str(), "9"],
        vec!["delete", id.as_str()],
        vec!["state", id.as_str()],
        vec!["start", id.as_str()],
    ] {
        let out = rt.cmd(&args);
        assert_eq!(out.status, 1, "{out}");
        out.stderr_has("does not exist");
    }
    // containerd's cleanup: delete --force of a container that does not exist succeeds.
    let out = rt.delete(&id, true);
    assert_eq!(out.status, 0, "{out}");
    let out = rt.cmd(&["delete", "-f", &id]);
    assert_eq!(out.status, 0, "{out}");
    rt.assert_gone(&id);
}

#[test]
fn create_with_existing_id_fails() {
    require_root!();
    let mut b = Bundle::new("dup-id");
    b.set_args(&["sleep", "1000"]);
    let rt = Runtime::new("dup-id");
    let id = rt.id("");
    rt.create(&id, &b).ok();
    let pid = rt.pid(&id);
    let out = rt.create(&id, &b);
    assert_eq!(out.status, 1, "{out}");
    out.stderr_has("already exists");
    // The first container is untouched.
    let st = rt.state_json(&id);
    assert_eq!(st["status"], "created");
    assert_eq!(st["pid"], pid);
    assert!(proc_alive(pid));
    rt.delete(&id, true).ok();
    rt.assert_gone(&id);
}

#[test]
fn delete_running_needs_force() {
    require_root!();
    let mut b = Bundle::new("del-running");
    b.sh("echo up > /out/up; sleep 1000");
    let rt = Runtime::new("del-running");
    let id = rt.id("");
    let pid = rt.create_and_start(&id, &b);
    b.wait_out("up");
    let out = rt.delete(&id, false);
    assert_eq!(out.status, 1, "{out}");
    out.stderr_has("not stopped");
    assert_eq!(rt.status(&id), "running");
    assert!(proc_alive(pid));

    rt.delete(&id, true).ok();
    assert!(!proc_alive(pid), "delete --force kills the process");
    rt.state(&id).failed().stderr_has("does not exist");
    rt.assert_gone(&id);
}

/// runc 1.1.5: plain `delete` of a created (never started) container succeeds: it kills the
/// waiting init and removes everything; the user's process never runs.
#[test]
fn delete_created_container() {
    require_root!();
    let mut b = Bundle::new("del-created");
    b.sh("echo ran > /out/ran; sleep 1000");
    let rt = Runtime::new("del-created");
    let id = rt.id("");
    rt.create(&id, &b).ok();
    let pid = rt.pid(&id);
    assert_eq!(rt.status(&id), "created");
    let out = rt.delete(&id, false);
    assert_eq!(out.status, 0, "{out}");
    assert!(
        !proc_alive(pid),
        "init of a deleted created container is gone"
    );
    rt.state(&id).failed().stderr_has("does not exist");
    assert_eq!(b.read_out("ran"), "", "the process never ran");
    rt.assert_gone(&id);
}

/// containerd kills a task whose start failed: `kill` works on a created container.
#[test]
fn kill_created_container() {
    require_root!();
    let mut b = Bundle::new("kill-created");
    b.sh("echo ran > /out/ran; sleep 1000");
    let rt = Runtime::new("kill-created");
    let id = rt.id("");
    rt.create(&id, &b).ok();
    let pid = rt.pid(&id);
    rt.kill(&id, Some("KILL")).ok();
    rt.wait_status(&id, "stopped");
    assert!(!proc_alive(pid));
    assert_eq!(b.read_out("ran"), "", "the process never ran");
    let out = rt.start(&id);
    assert_eq!(out.status, 1, "{out}");
    out.stderr_has("cannot start a container that has stopped");
    rt.delete(&id, false).ok();
    rt.assert_gone(&id);
}

#[test]
fn start_twice_and_start_stopped_fail() {
    require_root!();
    let mut b = Bundle::new("start-twice");
    b.sh("echo up > /out/up; sleep 1000");
    let rt = Runtime::new("start-twice");
    let id = rt.id("");
    rt.create_and_start(&id, &b);
    b.wait_out("up");
    let out = rt.start(&id);
    assert_eq!(out.status, 1, "{out}");
    out.stderr_has("cannot start an already running container");
    rt.kill(&id, Some("KILL")).ok();
    rt.wait_status(&id, "stopped");
    let out = rt.start(&id);
    assert_eq!(out.status, 1, "{out}");
    out.stderr_has("cannot start a container that has stopped");
    rt.delete(&id, false).ok();
    rt.assert_gone(&id);
}

#[test]
fn log_json_on_failure() {
    require_root!();
    let rt = Runtime::new("log-json");
    let id = rt.id("");
    let log = rt.scratch().join("log.json");
    let log_s = log.display().to_string();
    let root = rt.root_str();
    let out = rt.raw(&[
        "--root",
        &root,
        "--log",
        &log_s,
        "--log-format",
        "json",
        "kill",
        &id,
        "9",
    ]);
    assert_eq!(out.status, 1, "{out}");
    let text = fs::read_to_string(&log).expect("log file written");
    let errors: Vec<serde_json::Value> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l:?}")))
        .filter(|v: &serde_json::Value| v["level"] == "error")
        .collect();
    let last = errors
        .last()
        .unwrap_or_else(|| panic!("no error line in {text:?}"));
    assert!(
        last["msg"].as_str().unwrap().contains("does not exist"),
        "{last}"
    );
    assert!(is_rfc3339(last["time"].as_str().expect("time")), "{last}");

    // A failed create logs its reason too.
    let b = Bundle::new("log-json");
    fs::remove_dir_all(b.rootfs()).unwrap();
    let log2 = rt.scratch().join("log2.json");
    let log2_s = log2.display().to_string();
    b.save();
    let bundle = b.path_str();
    let id2 = rt.id("create");
    let out = rt.raw(&[
        &format!("--root={root}"),
        &format!("--log={log2_s}"),
        "--log-format=json",
        "create",
        "--bundle",
        &bundle,
        &id2,
    ]);
    assert_eq!(out.status, 1, "{out}");
    let text = fs::read_to_string(&log2).expect("log file written");
    let last: serde_json::Value = serde_json::from_str(
        text.lines()
            .rfind(|l| l.contains("\"error\""))
            .unwrap_or_else(|| panic!("no error line: {text:?}")),
    )
    .unwrap();
    assert_eq!(last["level"], "error");
    assert!(last["msg"].as_str().unwrap().contains("rootfs"), "{last}");
    rt.assert_gone(&id2);
}
