//! What the container's process sees of `process` and friends: checked from inside.

use integration_tests::*;
use serde_json::json;
use std::collections::BTreeMap;

/// Run the bundle in the foreground, expect exit 0, return its stdout.
#[track_caller]
fn run_ok(rt: &Runtime, b: &Bundle) -> String {
    let out = rt.run_once(b);
    out.ok();
    out.stdout
}

/// `Key:\tvalue` lines of /proc/<pid>/status.
fn status_fields(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

#[test]
fn hostname_and_domainname() {
    require_root!();
    let mut b = Bundle::new("hostname");
    b.config["hostname"] = json!("husk-it-host");
    b.config["domainname"] = json!("example.test");
    b.sh("hostname; cat /proc/sys/kernel/domainname");
    let rt = Runtime::new("hostname");
    let out = run_ok(&rt, &b);
    if is_runc() {
        // runc 1.1.5 predates `domainname` (runtime-spec 1.1) and ignores it.
        assert_eq!(out, "husk-it-host\n(none)\n");
    } else {
        assert_eq!(out, "husk-it-host\nexample.test\n");
    }
}

#[test]
fn env_and_cwd() {
    require_root!();
    let mut b = Bundle::new("env-cwd");
    b.config["process"]["env"] = json!(["PATH=/bin:/sbin", "FOO=bar baz", "EMPTY=",]);
    b.config["process"]["cwd"] = json!("/tmp");
    b.sh("echo \"FOO=$FOO\"; echo \"EMPTY=[${EMPTY-unset}]\"; echo \"PATH=$PATH\"; echo \"HOME=$HOME\"; pwd");
    let rt = Runtime::new("env-cwd");
    let out = run_ok(&rt, &b);
    // runc adds HOME (from /etc/passwd) when the config does not set it.
    assert_eq!(
        out,
        "FOO=bar baz\nEMPTY=[]\nPATH=/bin:/sbin\nHOME=/root\n/tmp\n"
    );

    // A cwd that does not exist in the rootfs is created.
    b.config["process"]["cwd"] = json!("/does/not/exist");
    b.sh("pwd");
    assert_eq!(run_ok(&rt, &b), "/does/not/exist\n");
    assert!(b.rootfs().join("does/not/exist").is_dir());
}

#[test]
fn user_and_groups() {
    require_root!();
    let mut b = Bundle::new("user");
    b.config["process"]["user"] = json!({"uid": 1000, "gid": 1000, "additionalGids": [10, 65534]});
    b.config["process"]["env"] = json!(["PATH=/bin"]);
    b.sh("id -u; id -g; id -G; grep -E '^(Uid|Gid|Groups):' /proc/$$/status; echo \"HOME=$HOME\"");
    let rt = Runtime::new("user");
    let out = run_ok(&rt, &b);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "1000");
    assert_eq!(lines[1], "1000");
    let mut groups: Vec<&str> = lines[2].split_whitespace().collect();
    groups.sort();
    assert_eq!(groups, ["10", "1000", "65534"], "{out}");
    let f = status_fields(&out);
    assert_eq!(f["Uid"].split_whitespace().collect::<Vec<_>>(), ["1000"; 4]);
    assert_eq!(f["Gid"].split_whitespace().collect::<Vec<_>>(), ["1000"; 4]);
    assert_eq!(
        f["Groups"].split_whitespace().collect::<Vec<_>>(),
        ["10", "65534"],
        "supplementary groups are exactly additionalGids"
    );
    assert_eq!(lines.last().unwrap(), &"HOME=/home/user");
}

#[test]
fn umask() {
    require_root!();
    let mut b = Bundle::new("umask");
    b.config["process"]["user"]["umask"] = json!(0o027);
    b.sh("umask; touch /tmp/f; stat -c %a /tmp/f");
    let rt = Runtime::new("umask");
    assert_eq!(run_ok(&rt, &b), "0027\n640\n");
}

#[test]
fn rlimits() {
    require_root!();
    let mut b = Bundle::new("rlimits");
    // Below this machine's hard limits (no CAP_SYS_RESOURCE to raise them).
    b.config["process"]["rlimits"] = json!([
        {"type": "RLIMIT_NOFILE", "soft": 512, "hard": 1000},
        {"type": "RLIMIT_NPROC", "soft": 300, "hard": 400},
        {"type": "RLIMIT_CORE", "soft": 0, "hard": 4096},
    ]);
    b.sh("ulimit -n; ulimit -Hn; grep -E '^Max (open files|processes|core file size)' /proc/$$/limits");
    let rt = Runtime::new("rlimits");
    let out = run_ok(&rt, &b);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "512");
    assert_eq!(lines[1], "1000");
    let limits: BTreeMap<String, (String, String)> = lines[2..]
        .iter()
        .map(|l| {
            let parts: Vec<&str> = l.split_whitespace().collect();
            let n = parts.len();
            (
                parts[..n - 3].join(" "),
                (parts[n - 3].to_string(), parts[n - 2].to_string()),
            )
        })
        .collect();
    assert_eq!(
        limits["Max open files"],
        ("512".into(), "1000".into()),
        "{out}"
    );
    assert_eq!(
        limits["Max processes"],
        ("300".into(), "400".into()),
        "{out}"
    );
    assert_eq!(
        limits["Max core file size"],
        ("0".into(), "4096".into()),
        "{out}"
    );
}

const CAP_CHOWN: u64 = 1 << 0;
const CAP_KILL: u64 = 1 << 5;
const CAP_NET_BIND_SERVICE: u64 = 1 << 10;

fn caps_of(out: &str) -> BTreeMap<String, u64> {
    status_fields(out)
        .into_iter()
        .filter(|(k, _)| k.starts_with("Cap"))
        .map(|(k, v)| (k, u64::from_str_radix(&v, 16).unwrap()))
        .collect()
}

#[test]
fn capabilities_root() {
    require_root!();
    let mut b = Bundle::new("caps-root");
    let set = json!(["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    b.config["process"]["capabilities"] =
        json!({"bounding": set, "effective": set, "permitted": set});
    b.sh("grep ^Cap /proc/$$/status");
    let rt = Runtime::new("caps-root");
    let caps = caps_of(&run_ok(&rt, &b));
    let all = CAP_CHOWN | CAP_KILL | CAP_NET_BIND_SERVICE;
    assert_eq!(caps["CapBnd"], all, "{caps:x?}");
    assert_eq!(caps["CapPrm"], all, "{caps:x?}");
    assert_eq!(caps["CapEff"], all, "{caps:x?}");
    assert_eq!(
        caps["CapInh"], 0,
        "inheritable is empty unless asked: {caps:x?}"
    );
    assert_eq!(caps["CapAmb"], 0, "{caps:x?}");
}

/// runc ignores an ambient set it cannot raise (ambient without inheritable): the process
/// starts with no ambient capabilities.
#[test]
fn capabilities_ambient_needs_inheritable() {
    require_root!();
    let mut b = Bundle::new("caps-amb");
    b.config["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    let set = json!(["CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    b.config["process"]["capabilities"] =
        json!({"bounding": set, "effective": set, "permitted": set, "ambient": set});
    b.sh("grep ^Cap /proc/$$/status");
    let rt = Runtime::new("caps-amb");
    let caps = caps_of(&run_ok(&rt, &b));
    assert_eq!(caps["CapBnd"], CAP_KILL | CAP_NET_BIND_SERVICE, "{caps:x?}");
    assert_eq!(caps["CapInh"], 0, "{caps:x?}");
    assert_eq!(caps["CapAmb"], 0, "{caps:x?}");
    // A non-root user without ambient capabilities loses them all at execve.
    assert_eq!(caps["CapEff"], 0, "{caps:x?}");
    assert_eq!(caps["CapPrm"], 0, "{caps:x?}");
}

#[test]
fn capabilities_non_root_with_ambient() {
    require_root!();
    let mut b = Bundle::new("caps-user");
    b.config["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    b.config["process"]["capabilities"] = json!({
        "bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
        "effective": ["CAP_CHOWN", "CAP_KILL"],
        "permitted": ["CAP_CHOWN", "CAP_KILL"],
        "inheritable": ["CAP_KILL"],
        "ambient": ["CAP_KILL"],
    });
    b.sh("grep ^Cap /proc/$$/status; id -u");
    let rt = Runtime::new("caps-user");
    let out = run_ok(&rt, &b);
    assert!(out.ends_with("1000\n"), "{out}");
    let caps = caps_of(&out);
    assert_eq!(
        caps["CapBnd"],
        CAP_CHOWN | CAP_KILL | CAP_NET_BIND_SERVICE,
        "{caps:x?}"
    );
    assert_eq!(caps["CapInh"], CAP_KILL, "{caps:x?}");
    assert_eq!(caps["CapAmb"], CAP_KILL, "{caps:x?}");
    // After execve a non-root process keeps exactly its ambient set.
    assert_eq!(caps["CapPrm"], CAP_KILL, "{caps:x?}");
    assert_eq!(caps["CapEff"], CAP_KILL, "{caps:x?}");
}

#[test]
fn no_new_privileges() {
    require_root!();
    let mut b = Bundle::new("nnp");
    b.sh("grep ^NoNewPrivs: /proc/$$/status");
    let rt = Runtime::new("nnp");
    b.config["process"]["noNewPrivileges"] = json!(true);
    assert_eq!(run_ok(&rt, &b), "NoNewPrivs:\t1\n");
    b.config["process"]["noNewPrivileges"] = json!(false);
    assert_eq!(run_ok(&rt, &b), "NoNewPrivs:\t0\n");
}

#[test]
fn oom_score_adj() {
    require_root!();
    let mut b = Bundle::new("oom");
    b.config["process"]["oomScoreAdj"] = json!(345);
    b.sh("cat /proc/$$/oom_score_adj");
    let rt = Runtime::new("oom");
    assert_eq!(run_ok(&rt, &b), "345\n");
}

fn fd_numbers(pid: i32) -> Vec<i32> {
    let mut fds: Vec<i32> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("read fd dir")
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    fds.sort();
    fds
}

#[test]
fn file_descriptors() {
    require_root!();
    let mut b = Bundle::new("fds");
    b.set_args(&["sleep", "1000"]);
    b.save();
    let rt = Runtime::new("fds");
    let extra = file_with(&rt.scratch(), "fd3.txt", "through-fd-3\n");
    let extra_path = rt.scratch().join("fd3.txt");
    let root = rt.root_str();
    let bundle = b.path_str();

    // Outside: fd 3 open in the runtime's caller does not reach the container...
    let id = rt.id("none");
    rt.raw_with_fd3(
        &["--root", &root, "run", "-d", "--bundle", &bundle, &id],
        &extra,
    )
    .ok();
    assert_eq!(
        fd_numbers(rt.pid(&id)),
        [0, 1, 2],
        "only stdio reaches the process"
    );
    rt.delete(&id, true).ok();
    rt.assert_gone(&id);

    // ... unless preserved.
    let id = rt.id("keep");
    rt.raw_with_fd3(
        &[
            "--root",
            &root,
            "run",
            "-d",
            "--preserve-fds",
            "1",
            "--bundle",
            &bundle,
            &id,
        ],
        &extra,
    )
    .ok();
    let pid = rt.pid(&id);
    assert_eq!(fd_numbers(pid), [0, 1, 2, 3]);
    assert_eq!(
        std::fs::read_link(format!("/proc/{pid}/fd/3")).unwrap(),
        extra_path
    );
    rt.delete(&id, true).ok();
    rt.assert_gone(&id);

    // Inside: the process reads the preserved fd; without --preserve-fds it has none.
    b.sh("cat <&3 || echo no-fd-3");
    b.save();
    for (preserve, expect) in [(false, "no-fd-3\n"), (true, "through-fd-3\n")] {
        let extra = file_with(&rt.scratch(), "fd3.txt", "through-fd-3\n");
        let id = rt.id(if preserve { "in-keep" } else { "in-none" });
        let mut args = vec!["--root", &root, "run"];
        if preserve {
            args.extend(["--preserve-fds", "1"]);
        }
        args.extend(["--bundle", &bundle, &id]);
        let out = rt.raw_with_fd3(&args, &extra);
        out.ok();
        assert_eq!(out.stdout, expect, "{out}");
        rt.assert_gone(&id);
    }
}
