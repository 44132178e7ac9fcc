//! OCI hooks: order, timing, the state on stdin, environment, cwd, namespaces, failures.

use integration_tests::*;
use serde_json::{json, Value};
use std::fs;

const HOOKS: [&str; 6] = [
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
];

/// A hook that records what it saw under `<bundle>/out` (or `/out` when it runs after
/// pivot_root, where the host path is not visible): the state on stdin, its cwd, its mount
/// namespace, its environment, its argv, and its name appended to `order`.
fn recording_hook(b: &Bundle, name: &str, with_env: bool) -> Value {
    let host_out = b.out().display().to_string();
    let script = format!(
        concat!(
            "D={host}; [ -d \"$D\" ] || D=/out; ",
            "cat > \"$D/{n}.json\"; ",
            "echo \"$D\" > \"$D/{n}.dir\"; ",
            "pwd > \"$D/{n}.pwd\"; ",
            "readlink /proc/self/ns/mnt > \"$D/{n}.mnt\"; ",
            "env > \"$D/{n}.env\"; ",
            "echo \"$0 $1\" > \"$D/{n}.args\"; ",
            "echo {n} >> \"$D/order\""
        ),
        host = host_out,
        n = name
    );
    let mut hook = json!({
        "path": "/bin/sh",
        "args": ["sh", "-c", script, format!("{name}-argv0"), "arg1"],
    });
    if with_env {
        hook["env"] = json!(["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOOK_ENV=yes"]);
    }
    hook
}

fn order(b: &Bundle) -> Vec<String> {
    b.read_out("order").lines().map(String::from).collect()
}

fn hook_state(b: &Bundle, name: &str) -> Value {
    let text = b.read_out(&format!("{name}.json"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name} state {text:?}: {e}"))
}

fn line(b: &Bundle, file: &str) -> String {
    b.read_out(file).trim_end().to_string()
}

#[test]
fn hooks_order_state_and_environment() {
    require_root!();
    let mut b = Bundle::new("hooks");
    for h in HOOKS {
        // createRuntime gets no `env`: it shows what a hook inherits.
        let hook = recording_hook(&b, h, h != "createRuntime");
        b.config["hooks"][h] = json!([hook]);
    }
    b.sh("echo process >> /out/order; sleep 1000");
    let rt = Runtime::new("hooks");
    let id = rt.id("");

    rt.create(&id, &b).ok();
    let pid = rt.pid(&id);
    let ctr_mnt = ns_link(&pid.to_string(), "mnt");
    let host_mnt = ns_link("self", "mnt");
    let mut expect: Vec<String> = ["prestart", "createRuntime", "createContainer"]
        .map(String::from)
        .to_vec();
    if is_runc() {
        // runc 1.1.5 runs poststart hooks at the end of `create`, before the process starts.
        expect.push("poststart".into());
    }
    assert_eq!(order(&b), expect, "hooks run by the time create returns");

    rt.start(&id).ok();
    if is_runc() {
        expect.extend(["startContainer".into(), "process".into()]);
        let got = wait_for("the process to run", || {
            let o = order(&b);
            (o.len() >= expect.len()).then_some(o)
        });
        assert_eq!(got, expect);
    } else {
        // Spec: poststart runs after the process has started, before `start` returns.
        let got = order(&b);
        assert!(got.contains(&"poststart".to_string()), "{got:?}");
        let got = wait_for("the process to run", || {
            let o = order(&b);
            o.contains(&"process".to_string()).then_some(o)
        });
        assert_eq!(
            got[..4],
            [
                "prestart",
                "createRuntime",
                "createContainer",
                "startContainer"
            ]
        );
        expect = got;
    }
    assert!(
        !order(&b).contains(&"poststop".to_string()),
        "poststop only at delete"
    );
    rt.kill(&id, Some("KILL")).ok();
    rt.wait_status(&id, "stopped");
    assert!(!order(&b).contains(&"poststop".to_string()));
    rt.delete(&id, false).ok();
    expect.push("poststop".into());
    assert_eq!(order(&b), expect, "poststop runs at delete");

    // The state on stdin.
    for h in HOOKS {
        let st = hook_state(&b, h);
        assert_eq!(st["id"], id.as_str(), "{h}: {st}");
        assert_eq!(st["bundle"], b.path_str().as_str(), "{h}: {st}");
        assert!(st["ociVersion"].is_string(), "{h}: {st}");
    }
    for h in ["prestart", "createRuntime", "createContainer"] {
        assert_eq!(hook_state(&b, h)["status"], "creating", "{h}");
    }
    assert_eq!(hook_state(&b, "startContainer")["status"], "created");
    let poststart_status = if is_runc() { "created" } else { "running" };
    assert_eq!(hook_state(&b, "poststart")["status"], poststart_status);
    assert_eq!(hook_state(&b, "poststop")["status"], "stopped");
    for h in ["prestart", "createRuntime", "poststart"] {
        assert_eq!(
            hook_state(&b, h)["pid"],
            pid,
            "{h}: the container's host pid"
        );
    }
    for h in ["createContainer", "startContainer"] {
        // runc reports the pid as seen inside the container's pid namespace (1).
        let p = hook_state(&b, h)["pid"].as_i64().unwrap_or(-1);
        assert!(p == 1 || p == pid as i64, "{h}: pid {p}");
    }

    // Where they ran.
    let bundle = b.path_str();
    for h in ["prestart", "createRuntime", "poststart"] {
        assert_eq!(
            line(&b, &format!("{h}.pwd")),
            bundle,
            "{h} cwd is the bundle"
        );
    }
    // runc's delete does not chdir to the bundle: poststop inherits the caller's cwd (the
    // harness runs the runtime in `/`; containerd's shim runs it in the bundle).
    let poststop_pwd = line(&b, "poststop.pwd");
    if is_runc() {
        assert_eq!(poststop_pwd, "/");
    } else {
        assert!(
            poststop_pwd == "/" || poststop_pwd == bundle,
            "{poststop_pwd}"
        );
    }
    for h in ["prestart", "createRuntime", "poststart", "poststop"] {
        assert_eq!(
            line(&b, &format!("{h}.mnt")),
            host_mnt,
            "{h} runs on the host"
        );
        assert_eq!(line(&b, &format!("{h}.dir")), b.out().display().to_string());
    }
    for h in ["createContainer", "startContainer"] {
        assert_eq!(
            line(&b, &format!("{h}.mnt")),
            ctr_mnt,
            "{h} in the container's mnt ns"
        );
    }
    // createContainer: before pivot_root (host paths visible), cwd the rootfs.
    assert_eq!(
        line(&b, "createContainer.dir"),
        b.out().display().to_string()
    );
    assert_eq!(
        line(&b, "createContainer.pwd"),
        b.rootfs().display().to_string()
    );
    // startContainer: after pivot_root.
    assert_eq!(line(&b, "startContainer.dir"), "/out");
    assert_eq!(line(&b, "startContainer.pwd"), "/");

    // argv and environment.
    for h in HOOKS {
        assert_eq!(line(&b, &format!("{h}.args")), format!("{h}-argv0 arg1"));
    }
    let env = b.read_out("prestart.env");
    assert!(env.lines().any(|l| l == "HOOK_ENV=yes"), "{env}");
    assert!(
        !env.contains(ENV_MARKER),
        "a hook with `env` gets exactly that: {env}"
    );
    let env = b.read_out("createRuntime.env");
    assert!(
        env.lines().any(|l| l == format!("{ENV_MARKER}=1")),
        "a hook without `env` inherits the runtime's environment: {env}"
    );
    rt.assert_gone(&id);
}

#[test]
fn failing_prestart_fails_create_and_leaves_nothing() {
    require_root!();
    let mut b = Bundle::new("hook-fail");
    b.config["hooks"]["prestart"] = json!([{
        "path": "/bin/sh", "args": ["sh", "-c", "echo boom-from-hook >&2; exit 7"]
    }]);
    b.sh("echo ran > /out/ran; sleep 1000");
    let rt = Runtime::new("hook-fail");
    let id = rt.id("");
    let out = rt.create(&id, &b);
    assert_eq!(out.status, 1, "{out}");
    out.stderr_has("hook").stderr_has("boom-from-hook");
    rt.assert_gone(&id);
    assert!(processes_mentioning(&b.path_str()).is_empty());
    assert!(mounts_containing(&b.path_str()).is_empty());
    rt.state(&id).failed().stderr_has("does not exist");
    assert_eq!(b.read_out("ran"), "");
}

#[test]
fn hook_timeout() {
    require_root!();
    let mut b = Bundle::new("hook-timeout");
    let pid_file = b.out().join("hook.pid").display().to_string();
    b.config["hooks"]["prestart"] = json!([{
        "path": "/bin/sh",
        "args": ["sh", "-c", format!("echo $$ > {pid_file}; exec sleep 30")],
        "timeout": 1
    }]);
    b.sh("echo ran > /out/ran; sleep 1000");
    let rt = Runtime::new("hook-timeout");
    let id = rt.id("");
    let out = rt.create(&id, &b);
    assert_eq!(out.status, 1, "{out}");
    out.stderr_has("timeout");
    let hook_pid: i32 = b.read_out("hook.pid").trim().parse().expect("hook ran");
    wait_for("the timed-out hook to be killed", || {
        (!proc_alive(hook_pid)).then_some(())
    });
    rt.assert_gone(&id);
    assert_eq!(b.read_out("ran"), "");
}

#[test]
fn failing_poststart() {
    require_root!();
    let mut b = Bundle::new("poststart-fail");
    b.config["hooks"]["poststart"] = json!([{
        "path": "/bin/sh", "args": ["sh", "-c", "exit 4"]
    }]);
    b.sh("echo ran > /out/ran; sleep 1000");
    let rt = Runtime::new("poststart-fail");
    let id = rt.id("");
    if is_runc() {
        // runc 1.1.5 runs poststart inside create: create fails and cleans up.
        let out = rt.create(&id, &b);
        assert_eq!(out.status, 1, "{out}");
        rt.assert_gone(&id);
        assert_eq!(b.read_out("ran"), "");
    } else {
        // Spec: a failed poststart hook is a warning; the container keeps running.
        rt.create(&id, &b).ok();
        rt.start(&id);
        assert_eq!(b.wait_out("ran"), "ran\n");
        assert_eq!(rt.status(&id), "running");
        rt.delete(&id, true).ok();
        rt.assert_gone(&id);
    }
}

#[test]
fn failing_poststop_and_startcontainer() {
    require_root!();
    let mut b = Bundle::new("poststop-fail");
    b.config["hooks"]["poststop"] = json!([{
        "path": "/bin/sh", "args": ["sh", "-c", "exit 4"]
    }]);
    b.sh("echo ran > /out/ran");
    let rt = Runtime::new("poststop-fail");
    let id = rt.id("stop");
    rt.create(&id, &b).ok();
    rt.start(&id).ok();
    assert_eq!(b.wait_out("ran"), "ran\n");
    rt.wait_status(&id, "stopped");
    // A failing poststop hook does not fail delete.
    let out = rt.delete(&id, false);
    assert_eq!(out.status, 0, "{out}");
    rt.state(&id).failed().stderr_has("does not exist");
    rt.assert_gone(&id);

    // A failing startContainer hook stops the container before the process runs.
    fs::remove_file(b.out().join("ran")).unwrap();
    b.config["hooks"] = json!({"startContainer": [{
        "path": "/bin/sh", "args": ["sh", "-c", "exit 4"]
    }]});
    let id = rt.id("startc");
    rt.create(&id, &b).ok();
    let _ = rt.start(&id);
    rt.wait_status(&id, "stopped");
    assert_eq!(b.read_out("ran"), "", "the process never ran");
    rt.delete(&id, false).ok();
    rt.assert_gone(&id);
}
