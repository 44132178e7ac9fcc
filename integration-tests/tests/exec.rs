//! `exec`: a new process in a running container, in its namespaces, root and cgroup, with the
//! identity the flags or the `--process` file say; exit statuses; bad input.

use integration_tests::*;
use serde_json::json;
use std::fs;

/// A running container whose init sleeps; returns (runtime, bundle, id, init pid).
fn running(name: &str) -> (Runtime, Bundle, String, i32) {
    let rt = Runtime::new(name);
    let mut b = Bundle::new(name);
    b.config["hostname"] = json!("ex-host");
    b.set_args(&["sleep", "1000"]);
    let id = rt.id("");
    let pid = rt.create_and_start(&id, &b);
    (rt, b, id, pid)
}

fn exec(rt: &Runtime, id: &str, extra: &[&str], cmd: &[&str]) -> Output {
    let mut args = vec!["exec"];
    args.extend_from_slice(extra);
    args.push(id);
    args.extend_from_slice(cmd);
    rt.cmd(&args)
}

/// `Key:\tvalue` of /proc/self/status text.
fn field<'a>(status: &'a str, key: &str) -> &'a str {
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no {key} in {status}"))
}

#[test]
fn exec_joins_namespaces_root_and_pid_namespace() {
    require_root!();
    let (rt, b, id, pid) = running("ex-join");
    b.write_rootfs_file("marker", "in-the-rootfs");
    let out = exec(
        &rt,
        &id,
        &[],
        &[
            "sh",
            "-c",
            "hostname; cat /marker; echo; cat /proc/1/cmdline | tr '\\0' ' '; echo; \
             for n in mnt uts ipc net pid cgroup; do readlink /proc/self/ns/$n; done",
        ],
    );
    out.ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0], "ex-host", "{out}");
    assert_eq!(lines[1], "in-the-rootfs", "{out}");
    // pid 1 in the process's pid namespace is the container's init.
    assert_eq!(lines[2].trim(), "sleep 1000", "{out}");
    for (i, n) in ["mnt", "uts", "ipc", "net", "pid", "cgroup"]
        .iter()
        .enumerate()
    {
        assert_eq!(lines[3 + i], ns_link(&pid.to_string(), n), "{n}: {out}");
    }
}

#[test]
fn exec_joins_the_cgroup() {
    require_root!();
    let (rt, _b, id, _pid) = running("ex-cg");
    let out = exec(
        &rt,
        &id,
        &[],
        &[
            "sh",
            "-c",
            "cat /proc/self/cgroup; echo ==; cat /proc/1/cgroup",
        ],
    );
    out.ok();
    let (mine, init) = out.stdout.split_once("==\n").expect("separator");
    assert_eq!(mine, init, "{out}");
}

#[test]
fn exec_exit_statuses() {
    require_root!();
    let (rt, _b, id, _pid) = running("ex-status");
    assert_eq!(exec(&rt, &id, &[], &["true"]).status, 0);
    assert_eq!(exec(&rt, &id, &[], &["sh", "-c", "exit 3"]).status, 3);
    assert_eq!(exec(&rt, &id, &[], &["sh", "-c", "kill -9 $$"]).status, 137);
    let out = exec(&rt, &id, &[], &["no-such-binary"]);
    assert_eq!(out.status, 255, "{out}");
    out.stderr_has("exec failed")
        .stderr_has("executable file not found in $PATH");
    // The container is unharmed.
    assert_eq!(rt.status(&id), "running");
}

#[test]
fn exec_flags_seen_from_inside() {
    require_root!();
    let (rt, _b, id, _pid) = running("ex-flags");
    let out = exec(
        &rt,
        &id,
        &[
            "--user",
            "1000:1000",
            "--additional-gids",
            "5",
            "--additional-gids",
            "7",
            "--cwd",
            "/tmp",
            "--env",
            "FOO=bar",
            "--env",
            "PATH=/bin:/usr/bin",
            "--no-new-privs",
        ],
        &[
            "sh",
            "-c",
            "id -u; id -g; id -G; pwd; echo $FOO; echo $PATH; cat /proc/self/status",
        ],
    );
    out.ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0], "1000", "{out}");
    assert_eq!(lines[1], "1000", "{out}");
    let groups: Vec<&str> = lines[2].split_whitespace().collect();
    assert!(groups.contains(&"5") && groups.contains(&"7"), "{out}");
    assert_eq!(lines[3], "/tmp", "{out}");
    assert_eq!(lines[4], "bar", "{out}");
    assert_eq!(lines[5], "/bin:/usr/bin", "{out}");
    assert_eq!(field(&out.stdout, "NoNewPrivs"), "1", "{out}");

    // --cap adds to the bounding, effective, permitted and ambient sets (runc).
    let out = exec(
        &rt,
        &id,
        &["--cap", "CAP_SYS_ADMIN"],
        &["cat", "/proc/self/status"],
    );
    out.ok();
    for set in ["CapEff", "CapBnd", "CapPrm"] {
        let v = u64::from_str_radix(field(&out.stdout, set), 16).unwrap();
        assert!(v & (1 << 21) != 0, "CAP_SYS_ADMIN not in {set}: {out}");
    }

    // Without the flags: the config's process (root, /, no extra capability, no NoNewPrivs
    // unless the config says so).
    let out = exec(
        &rt,
        &id,
        &[],
        &["sh", "-c", "id -u; pwd; cat /proc/self/status"],
    );
    out.ok();
    assert!(out.stdout.starts_with("0\n/\n"), "{out}");
    let eff = u64::from_str_radix(field(&out.stdout, "CapEff"), 16).unwrap();
    assert!(eff & (1 << 21) == 0, "{out}");
}

#[test]
fn exec_process_file() {
    require_root!();
    let (rt, _b, id, _pid) = running("ex-procfile");
    let p = rt.scratch().join("process.json");
    fs::write(
        &p,
        json!({
            "terminal": false,
            "user": {"uid": 1234, "gid": 99, "additionalGids": [11]},
            "args": ["sh", "-c", "id -u; id -g; id -G; pwd; echo $ONE; exit 4"],
            "env": ["PATH=/bin:/usr/bin", "ONE=1"],
            "cwd": "/etc",
            "capabilities": {"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"],
                              "permitted": ["CAP_KILL"]},
            "noNewPrivileges": true
        })
        .to_string(),
    )
    .unwrap();
    let out = exec(&rt, &id, &["--process", p.to_str().unwrap()], &[]);
    assert_eq!(out.status, 4, "{out}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0], "1234", "{out}");
    assert_eq!(lines[1], "99", "{out}");
    assert!(lines[2].split_whitespace().any(|g| g == "11"), "{out}");
    assert_eq!(lines[3], "/etc", "{out}");
    assert_eq!(lines[4], "1", "{out}");
}

#[test]
fn exec_detached_writes_host_pid() {
    require_root!();
    let (rt, b, id, pid) = running("ex-detach");
    let pid_file = rt.scratch().join("exec.pid");
    let out = exec(
        &rt,
        &id,
        &["--detach", "--pid-file", pid_file.to_str().unwrap()],
        &["sh", "-c", "echo $$ > /out/inner; exec sleep 1000"],
    );
    out.ok();
    let host_pid: i32 = fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(proc_alive(host_pid), "exec'd process {host_pid} not alive");
    assert_eq!(
        ns_link(&host_pid.to_string(), "pid"),
        ns_link(&pid.to_string(), "pid")
    );
    let inner: i32 = b.wait_out("inner").trim().parse().unwrap();
    assert_ne!(inner, host_pid, "the process should have a container pid");
    // delete --force takes it down with the container.
    rt.delete(&id, true).ok();
    wait_for("the exec'd process to die", || {
        (!proc_alive(host_pid)).then_some(())
    });
}

#[test]
fn exec_preserve_fds() {
    require_root!();
    let (rt, _b, id, _pid) = running("ex-fds");
    let f = file_with(&rt.scratch(), "fd3.txt", "through-fd-3");
    let root = rt.root_str();
    let out = rt.raw_with_fd3(
        &[
            "--root",
            &root,
            "exec",
            "--preserve-fds",
            "1",
            &id,
            "sh",
            "-c",
            "cat <&3",
        ],
        &f,
    );
    out.ok();
    assert!(out.stdout.starts_with("through-fd-3"), "{out}");
    // Without --preserve-fds the fd does not cross.
    let out = rt.raw_with_fd3(
        &["--root", &root, "exec", &id, "ls", "-l", "/proc/self/fd/"],
        &f,
    );
    out.ok();
    assert!(!out.stdout.contains("fd3.txt"), "{out}");
}

#[test]
fn exec_bad_input() {
    require_root!();
    let (rt, _b, id, _pid) = running("ex-bad");
    let unknown = exec(&rt, "it-ex-no-such-container", &[], &["true"]);
    assert_eq!(unknown.status, 255, "{unknown}");
    unknown.stderr_has("does not exist");

    let notjson = rt.scratch().join("notjson");
    fs::write(&notjson, "this is not json").unwrap();
    exec(&rt, &id, &["--process", notjson.to_str().unwrap()], &[]).failed();
    let noargs = rt.scratch().join("noargs.json");
    fs::write(&noargs, r#"{"cwd": "/", "user": {"uid": 0, "gid": 0}}"#).unwrap();
    exec(&rt, &id, &["--process", noargs.to_str().unwrap()], &[])
        .failed()
        .stderr_has("args");
    exec(&rt, &id, &[], &[]).failed().stderr_has("args");

    exec(&rt, &id, &["--tty", "--detach"], &["true"])
        .failed()
        .stderr_has("cannot allocate tty if runc will detach without setting console socket");
    exec(
        &rt,
        &id,
        &[
            "--tty",
            "--detach",
            "--console-socket",
            "/nonexistent/husk.sock",
        ],
        &["true"],
    )
    .failed()
    .stderr_has("/nonexistent/husk.sock");
    // runc parses --user as numbers; a name is refused.
    exec(&rt, &id, &["--user", "nobody-here"], &["true"])
        .failed()
        .stderr_has("uid");

    // Only the init is left in the container's pid namespace.
    let out = exec(&rt, &id, &[], &["ls", "/proc"]);
    out.ok();
    let pids: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.chars().all(|c| c.is_ascii_digit()))
        .collect();
    assert_eq!(pids.len(), 2, "init and ls only: {out}");

    // A stopped container.
    rt.kill(&id, Some("KILL")).ok();
    rt.wait_status(&id, "stopped");
    exec(&rt, &id, &[], &["true"])
        .failed()
        .stderr_has("cannot exec in a stopped container");
}

/// CVE-2019-5736: while an exec runs, a process of the container tries to open the runtime's
/// binary (through /proc/<pid>/exe of every process it can see) for writing. It must never
/// succeed, and the binary must be unchanged. A copy of the binary is used so that a failure
/// cannot damage the build.
#[test]
fn exec_cannot_overwrite_runtime_binary() {
    require_root!();
    let rt = Runtime::new("ex-cve");
    let copy = rt.scratch().join("husk-copy");
    fs::copy(husk_bin(), &copy).unwrap();
    let before = fs::read(&copy).unwrap();
    let mut b = Bundle::new("ex-cve");
    // The attacker, as in the CVE: hold a read-only fd on every /proc/N/exe it may open, and
    // once the process is gone, reopen it for writing through /proc/self/fd; record successes.
    b.sh("while true; do for e in /proc/[0-9]*/exe; do \
           ( exec 3<\"$e\" || exit; for i in 1 2 3 4 5 6 7 8 9 10; do sleep 0.1; \
             echo x >> /proc/self/fd/3 && { readlink /proc/self/fd/3 >> /out/opened; exit; }; \
             done ) 2>/dev/null & \
         done; done");
    // CAP_SYS_PTRACE, as a privileged container has: without it ptrace's access check alone
    // (the runtime's capabilities exceed the attacker's) keeps it from /proc/<pid>/exe.
    for set in ["bounding", "effective", "permitted"] {
        b.config["process"]["capabilities"][set]
            .as_array_mut()
            .expect("capability set in the default config")
            .push(json!("CAP_SYS_PTRACE"));
    }
    let id = rt.id("");
    rt.create_and_start(&id, &b);
    let root = rt.root_str();
    let copy_s = copy.to_str().unwrap().to_string();
    for _ in 0..30 {
        let out = run_command(
            &copy,
            &[
                "--root".into(),
                root.clone(),
                "exec".into(),
                id.clone(),
                "true".into(),
            ],
            &rt.scratch(),
            None,
        );
        assert_eq!(out.status, 0, "{out}");
    }
    rt.delete(&id, true).ok();
    let after = fs::read(&copy).unwrap();
    assert!(before == after, "{copy_s} was modified");
    let opened = b.read_out("opened");
    assert!(!opened.contains("husk"), "opened for writing: {opened}");
}

/// runc allows exec into a created (not yet started) container; the process runs in its
/// namespaces while the init still waits for `start`.
#[test]
fn exec_into_created_container() {
    require_root!();
    // Declared first, dropped last: the runtime deletes the container before the bundle goes.
    let mut b = Bundle::new("ex-created");
    let rt = Runtime::new("ex-created");
    b.config["hostname"] = json!("ex-created-host");
    b.set_args(&["sleep", "1000"]);
    let id = rt.id("");
    rt.create(&id, &b).ok();
    let out = exec(&rt, &id, &[], &["hostname"]);
    out.ok();
    assert_eq!(out.stdout.trim(), "ex-created-host", "{out}");
    assert_eq!(rt.status(&id), "created");
}

/// `exec --apparmor`, `--process-label` and a `--process` file asking for labels, on a host
/// without that LSM (this one and CI's): refused as runc refuses them (runc fails writing
/// AppArmor's attr/exec; for SELinux with the text below), exit 255, nothing left running.
/// With the LSM enabled the label is written to the exec attribute through a private procfs
/// (plumbing unit-tested in lsm.rs; no LSM host to test the write here).
#[test]
fn exec_labels_on_a_host_without_the_lsm() {
    require_root!();
    let apparmor = fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .map(|s| s.trim() == "Y")
        .unwrap_or(false);
    let selinux = std::path::Path::new("/sys/fs/selinux/enforce").exists();
    let (rt, _b, id, _pid) = running("ex-lsm");
    let with_file = |key: &str| -> String {
        let p = rt.scratch().join(format!("{key}.json"));
        let process = json!({"args": ["true"], "cwd": "/", "user": {"uid": 0, "gid": 0},
            key: "husk_test_t"});
        fs::write(&p, process.to_string()).unwrap();
        p.to_str().unwrap().to_string()
    };
    let mut cases: Vec<(Vec<String>, &str)> = Vec::new();
    if !apparmor {
        cases.push((vec!["--apparmor".into(), "husk-test".into()], "apparmor"));
        cases.push((
            vec!["--process".into(), with_file("apparmorProfile")],
            "apparmor",
        ));
    }
    if !selinux {
        let text = "selinux label is specified in config, but selinux is disabled or not supported";
        cases.push((vec!["--process-label".into(), "husk_test_t".into()], text));
        cases.push((vec!["--process".into(), with_file("selinuxLabel")], text));
    }
    for (flags, want) in &cases {
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        let cmd: &[&str] = if flags[0] == "--process" {
            &[]
        } else {
            &["true"]
        };
        let out = exec(&rt, &id, &flags, cmd);
        assert_eq!(out.status, 255, "{flags:?}: {out}");
        out.stderr_has(want);
    }
    // Only the init is left in the container.
    let out = exec(&rt, &id, &[], &["ls", "/proc"]);
    let pids = out
        .stdout
        .lines()
        .filter(|l| l.chars().all(|c| c.is_ascii_digit()))
        .count();
    assert_eq!(pids, 2, "init and ls only: {out}");
}
