//! `linux.seccomp`: each action, each argument operator, flags and SCMP_ACT_NOTIFY with an
//! agent written here, all checked from inside a real container.

use integration_tests::*;
use serde_json::{json, Value};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixListener;

fn with_profile(name: &str, profile: Value, script: &str) -> Bundle {
    let mut b = Bundle::new(name);
    b.config["linux"]["seccomp"] = profile;
    b.sh(script);
    b
}

fn rule(names: &[&str], action: &str) -> Value {
    json!({"names": names, "action": action})
}

#[test]
fn errno_action_with_errno_ret_and_default() {
    require_root!();
    let rt = Runtime::new("cf-sc-errno");
    for nnp in [true, false] {
        // ENOSYS (38) as asked; a rule without errnoRet gets EPERM, as in runc.
        let mut mk = rule(&["mkdir", "mkdirat"], "SCMP_ACT_ERRNO");
        mk["errnoRet"] = json!(38);
        let profile = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "syscalls": [mk, rule(&["rmdir"], "SCMP_ACT_ERRNO")]
        });
        let mut b = with_profile(
            "sc-errno",
            profile,
            "mkdir /a; rmdir /tmp; grep -E '^Seccomp:' /proc/self/status; echo done",
        );
        b.config["process"]["noNewPrivileges"] = json!(nnp);
        let out = rt.run_once(&b);
        out.ok();
        assert!(
            out.stderr
                .contains("mkdir: can't create directory '/a': Function not implemented"),
            "nnp={nnp}: {out:?}"
        );
        assert!(
            out.stderr
                .contains("rmdir: '/tmp': Operation not permitted"),
            "nnp={nnp}: {out:?}"
        );
        assert!(out.stdout.contains("Seccomp:\t2\n"), "{out:?}");
        assert!(out.stdout.ends_with("done\n"), "{out:?}");
        assert!(!b.rootfs().join("a").exists());
    }
}

#[test]
fn default_errno_ret() {
    require_root!();
    let rt = Runtime::new("cf-sc-deferr");
    // Every x86_64 syscall is allowed by name except mkdir/mkdirat, which fall to the
    // default: ERRNO with defaultErrnoRet EXDEV (18).
    let allow_all_but_mkdir: Vec<String> = (0..450)
        .filter_map(syscall_name)
        .filter(|n| n != "mkdir" && n != "mkdirat")
        .collect();
    let profile = json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 18,
        "syscalls": [{"names": allow_all_but_mkdir, "action": "SCMP_ACT_ALLOW"}]
    });
    let b = with_profile("sc-deferr", profile, "mkdir /a; echo done");
    let out = rt.run_once(&b);
    out.ok();
    assert!(
        out.stderr
            .contains("can't create directory '/a': Invalid cross-device link"),
        "{out:?}"
    );
}

/// Names of x86_64 syscalls, from the kernel headers' unistd_64.h.
fn syscall_name(nr: u32) -> Option<String> {
    use std::sync::OnceLock;
    static TABLE: OnceLock<Vec<(u32, String)>> = OnceLock::new();
    let t = TABLE.get_or_init(|| {
        let text = [
            "/usr/include/x86_64-linux-gnu/asm/unistd_64.h",
            "/usr/include/asm/unistd_64.h",
        ]
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())
        .unwrap_or_default();
        text.lines()
            .filter_map(|l| {
                let mut w = l.split_whitespace();
                (w.next()? == "#define").then_some(())?;
                let name = w.next()?.strip_prefix("__NR_")?.to_string();
                Some((w.next()?.parse().ok()?, name))
            })
            .collect()
    });
    t.iter().find(|(n, _)| *n == nr).map(|(_, s)| s.clone())
}

/// kill(2)'s signal argument (index 1) against each operator. The target pid does not exist,
/// so an allowed call fails with ESRCH and a refused one with the rule's EACCES.
#[test]
fn argument_operators() {
    require_root!();
    let rt = Runtime::new("cf-sc-ops");
    let cases: [(&str, u64, Option<u64>, &[u32]); 7] = [
        ("SCMP_CMP_NE", 9, None, &[1, 15]),
        ("SCMP_CMP_LT", 9, None, &[1]),
        ("SCMP_CMP_LE", 9, None, &[1, 9]),
        ("SCMP_CMP_EQ", 9, None, &[9]),
        ("SCMP_CMP_GE", 9, None, &[9, 15]),
        ("SCMP_CMP_GT", 9, None, &[15]),
        // (sig & 0b1000) == 0b1000: 9 and 15 have bit 3 set, 1 does not.
        ("SCMP_CMP_MASKED_EQ", 8, Some(8), &[9, 15]),
    ];
    for (op, value, value_two, blocked) in cases {
        let mut arg = json!({"index": 1, "value": value, "op": op});
        if let Some(v2) = value_two {
            arg["valueTwo"] = json!(v2);
        }
        let profile = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13,
                          "args": [arg]}]
        });
        let b = with_profile(
            "sc-ops",
            profile,
            "for s in 1 9 15; do kill -$s 999999 2>/dev/null; echo \"$s $?\"; kill -$s 999999 2>&1 | grep -o 'Permission denied\\|No such process'; done",
        );
        let out = rt.run_once(&b);
        out.ok();
        let lines: Vec<&str> = out.stdout.lines().collect();
        for (k, s) in [1u32, 9, 15].iter().enumerate() {
            let want = if blocked.contains(s) {
                "Permission denied"
            } else {
                "No such process"
            };
            assert_eq!(
                lines.get(2 * k + 1).copied(),
                Some(want),
                "{op} sig {s}: {out:?}"
            );
        }
    }
}

#[test]
fn kill_trap_and_log_actions() {
    require_root!();
    let rt = Runtime::new("cf-sc-kill");
    for action in [
        "SCMP_ACT_KILL",
        "SCMP_ACT_KILL_THREAD",
        "SCMP_ACT_KILL_PROCESS",
        "SCMP_ACT_TRAP",
    ] {
        let mut profile = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
            "syscalls": [rule(&["sync"], action)]
        });
        if is_runc() {
            // runc 1.1.5: "seccomp flags are not yet supported by runc".
            profile.as_object_mut().unwrap().remove("flags");
        }
        // The sync child dies of SIGSYS (31): the shell reports 128+31. (The subshell gives
        // it a process of its own even if busybox runs the applet in-process.)
        let b = with_profile("sc-kill", profile, "(sync); echo \"rc=$?\"");
        let out = rt.run_once(&b);
        out.ok();
        assert_eq!(out.stdout, "rc=159\n", "{action}: {out:?}");
    }
    let profile = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [rule(&["sync"], "SCMP_ACT_LOG")]
    });
    let b = with_profile("sc-log", profile, "(sync); echo \"rc=$?\"");
    let out = rt.run_once(&b);
    out.ok();
    assert_eq!(out.stdout, "rc=0\n", "{out:?}");
}

/// TRACE without a tracer: the kernel fails the syscall with ENOSYS.
#[test]
fn trace_action_without_tracer() {
    require_root!();
    let rt = Runtime::new("cf-sc-trace");
    let profile = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [rule(&["mkdir", "mkdirat"], "SCMP_ACT_TRACE")]
    });
    let b = with_profile("sc-trace", profile, "mkdir /a; echo done");
    let out = rt.run_once(&b);
    out.ok();
    assert!(out.stderr.contains("Function not implemented"), "{out:?}");
}

#[repr(C)]
#[derive(Default)]
struct SeccompData {
    nr: i32,
    arch: u32,
    ip: u64,
    args: [u64; 6],
}
#[repr(C)]
#[derive(Default)]
struct Notif {
    id: u64,
    pid: u32,
    flags: u32,
    data: SeccompData,
}
#[repr(C)]
#[derive(Default)]
struct NotifResp {
    id: u64,
    val: i64,
    error: i32,
    flags: u32,
}
const NOTIF_RECV: u64 = 0xc050_2100;
const NOTIF_SEND: u64 = 0xc018_2101;

/// The agent: answer every notified syscall with EXDEV; return the state message and the
/// syscall numbers seen.
fn agent(listener: UnixListener) -> (Value, Vec<i32>) {
    agent_telling(listener, None)
}

/// `agent`, saying on `accepted` when it has taken its connection.
fn agent_telling(
    listener: UnixListener,
    accepted: Option<std::sync::mpsc::Sender<()>>,
) -> (Value, Vec<i32>) {
    // Never hang the suite if the runtime does not connect: give up after a minute.
    listener.set_nonblocking(true).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let sock = loop {
        match listener.accept() {
            Ok((sock, _)) => break sock,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                assert!(
                    std::time::Instant::now() < deadline,
                    "nobody connected to the agent"
                );
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(e) => panic!("accept: {e}"),
        }
    };
    sock.set_nonblocking(false).unwrap();
    if let Some(tx) = accepted {
        let _ = tx.send(());
    }
    let (payload, fd) = recv_fd(&sock);
    let state: Value = serde_json::from_slice(&payload).unwrap();
    let mut seen = Vec::new();
    loop {
        let mut n = Notif::default();
        if unsafe { libc::ioctl(fd.as_raw_fd(), NOTIF_RECV as _, &mut n) } < 0 {
            break; // ENOENT when the container is gone
        }
        seen.push(n.data.nr);
        let mut r = NotifResp {
            id: n.id,
            error: -libc::EXDEV,
            ..Default::default()
        };
        unsafe { libc::ioctl(fd.as_raw_fd(), NOTIF_SEND as _, &mut r) };
    }
    (state, seen)
}

#[test]
fn notify_reaches_the_listener_and_its_answer_is_honoured() {
    require_root!();
    let rt = Runtime::new("cf-sc-notify");
    for nnp in [true, false] {
        let sock_path = rt.scratch().join(format!("agent-{nnp}.sock"));
        let _ = std::fs::remove_file(&sock_path);
        let listener = UnixListener::bind(&sock_path).unwrap();
        let th = std::thread::spawn(move || agent(listener));
        let mut profile = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "listenerPath": sock_path,
            "listenerMetadata": "husk-test-meta",
            "flags": ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
            "syscalls": [rule(&["mkdir", "mkdirat"], "SCMP_ACT_NOTIFY")]
        });
        if is_runc() {
            // runc 1.1.5: "seccomp flags are not yet supported by runc".
            profile.as_object_mut().unwrap().remove("flags");
        }
        let mut b = with_profile("sc-notify", profile, "mkdir /a; echo done");
        b.config["process"]["noNewPrivileges"] = json!(nnp);
        let id = rt.id(&format!("n{nnp}"));
        let out = rt.run(&id, &b, &[]);
        out.ok();
        assert!(
            out.stderr
                .contains("can't create directory '/a': Invalid cross-device link"),
            "{out:?}"
        );
        assert!(!b.rootfs().join("a").exists());
        let (state, seen) = th.join().unwrap();
        assert!(!seen.is_empty());
        assert_eq!(state["fds"], json!(["seccompFd"]), "{state}");
        assert_eq!(state["metadata"], json!("husk-test-meta"), "{state}");
        assert_eq!(state["state"]["id"], json!(id), "{state}");
        assert_eq!(state["state"]["status"], json!("creating"), "{state}");
        assert_eq!(state["pid"], state["state"]["pid"], "{state}");
        assert!(state["pid"].as_i64().unwrap() > 0, "{state}");
    }
}

#[test]
fn bad_profiles_name_the_field() {
    require_root!();
    let rt = Runtime::new("cf-sc-bad");
    let cases = [
        (
            json!({"defaultAction": "SCMP_ACT_BOGUS"}),
            "linux.seccomp.defaultAction",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_VAX"]}),
            "linux.seccomp.architectures",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["kill"],
                "action": "SCMP_ACT_ERRNO", "args": [{"index": 1, "value": 1, "op": "SCMP_CMP_XX"}]}]}),
            "linux.seccomp.syscalls[0].args[0].op",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["kill"],
                "action": "SCMP_ACT_NOTIFY"}]}),
            "linux.seccomp.listenerPath",
        ),
    ];
    for (profile, field) in cases {
        let b = with_profile("sc-bad", profile, "true");
        let id = rt.id("bad");
        let out = rt.create(&id, &b);
        out.failed();
        if !is_runc() {
            out.stderr_has(field);
        }
        rt.assert_gone(&id);
    }
}

/// An exec'd process gets the container's filter too (runc does the same): a `podman exec`
/// must not be a way around the profile.
#[test]
fn exec_gets_the_containers_filter() {
    require_root!();
    let rt = Runtime::new("cf-sc-exec");
    let profile = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]
    });
    for nnp in [true, false] {
        let mut b = with_profile("sc-exec", profile.clone(), "sleep 1000");
        b.config["process"]["noNewPrivileges"] = json!(nnp);
        let id = rt.id(&format!("nnp{nnp}"));
        rt.create_and_start(&id, &b);
        let out = rt.cmd(&[
            "exec",
            &id,
            "sh",
            "-c",
            "mkdir /from-exec; grep -E '^Seccomp:' /proc/self/status",
        ]);
        assert!(
            out.stderr
                .contains("can't create directory '/from-exec': Function not implemented"),
            "nnp={nnp}: {out:?}"
        );
        assert!(out.stdout.contains("Seccomp:\t2"), "nnp={nnp}: {out:?}");
        assert!(!b.rootfs().join("from-exec").exists());
        rt.delete(&id, true).ok();
    }
}

/// SCMP_ACT_NOTIFY for an exec'd process: its own listener fd reaches the agent (a second
/// connection, after the init's), with the container's state (running, the init's pid) and the
/// exec'd process's pid; the agent's answer is what the process sees.
#[test]
fn exec_notify_reaches_the_listener() {
    require_root!();
    let rt = Runtime::new("cf-sc-exnotify");
    let sock_path = rt.scratch().join("agent.sock");
    let _ = std::fs::remove_file(&sock_path);
    let listener = UnixListener::bind(&sock_path).unwrap();
    let for_init = listener.try_clone().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let init_agent = std::thread::spawn(move || agent_telling(for_init, Some(tx)));
    let profile = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": sock_path,
        "syscalls": [rule(&["mkdir", "mkdirat"], "SCMP_ACT_NOTIFY")]
    });
    let b = with_profile("sc-exnotify", profile, "sleep 1000");
    let id = rt.id("");
    let init = rt.create_and_start(&id, &b);
    // The init's connection is taken before the exec's can arrive, so neither agent gets the
    // other's.
    rx.recv_timeout(std::time::Duration::from_secs(60)).unwrap();
    let exec_agent = std::thread::spawn(move || agent(listener));
    let out = rt.cmd(&["exec", &id, "sh", "-c", "mkdir /b; echo $$"]);
    out.ok();
    assert!(
        out.stderr
            .contains("can't create directory '/b': Invalid cross-device link"),
        "{out:?}"
    );
    assert!(!b.rootfs().join("b").exists());
    let (state, seen) = exec_agent.join().unwrap();
    assert!(!seen.is_empty(), "{state}");
    assert_eq!(state["state"]["id"], json!(id), "{state}");
    assert_eq!(state["state"]["status"], json!("running"), "{state}");
    assert_eq!(state["state"]["pid"], json!(init), "{state}");
    let exec_pid = state["pid"].as_i64().unwrap();
    assert!(exec_pid > 0 && exec_pid != i64::from(init), "{state}");

    rt.delete(&id, true).ok();
    let (state, _) = init_agent.join().unwrap();
    assert_eq!(state["state"]["status"], json!("creating"), "{state}");
    rt.assert_gone(&id);
}
