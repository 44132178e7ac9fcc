//! Rootless: the runtime run by an unprivileged user, not uid 0 in someone else's user
//! namespace (that is rootless Podman, hack/e2e-podman.sh). Each test creates a throw-away
//! user with its own /etc/subuid and /etc/subgid range ([`RlUser`], removed again on drop even
//! when the test fails), gives it a copy of the runtime binary, a busybox bundle it owns and an
//! `XDG_RUNTIME_DIR`, writes the config with `spec --rootless` as that user, and runs the
//! runtime as that user (`setpriv --reuid --regid --init-groups`, no --root: the default root
//! under $XDG_RUNTIME_DIR). newuidmap/newgidmap come from Debian's `uidmap` (hack/deps.sh).
//!
//! The same tests pass against runc 1.1.5 (`HUSK=/usr/sbin/runc`); where husk differs on
//! purpose, or runc's error text names nothing, the test says so and branches on `is_runc()`.

use integration_tests::*;
use serde_json::{json, Value};
use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

static N: AtomicUsize = AtomicUsize::new(0);

/// Size of each user's subordinate id range.
const SUB_SIZE: u32 = 65536;

/// Serialise edits of /etc/subuid and /etc/subgid between tests (and test processes).
fn with_subid_lock<T>(f: impl FnOnce() -> T) -> T {
    let lock = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open("/tmp/husk-rl-subid.lock")
        .expect("open lock file");
    unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) };
    let out = f();
    unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_UN) };
    out
}

fn remove_subid_lines(name: &str) {
    for file in ["/etc/subuid", "/etc/subgid"] {
        let text = fs::read_to_string(file).unwrap_or_default();
        let kept: String = text
            .lines()
            .filter(|l| !l.starts_with(&format!("{name}:")))
            .map(|l| format!("{l}\n"))
            .collect();
        if kept != text {
            let _ = fs::write(file, kept);
        }
    }
}

/// Pids of live processes whose real uid is `uid`.
fn processes_of_uid(uid: u32) -> Vec<i32> {
    let mut out = Vec::new();
    for e in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let real = status
            .lines()
            .find(|l| l.starts_with("Uid:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|u| u.parse::<u32>().ok());
        if real == Some(uid) && proc_alive(pid) {
            out.push(pid);
        }
    }
    out
}

/// A throw-away unprivileged user with a subuid/subgid range, a copy of the runtime, a bundle
/// it owns and an XDG_RUNTIME_DIR. Drop deletes its containers (as the user), kills what is
/// left of the user's processes (the user exists only for this test), and removes the user,
/// its subid lines and the directory.
struct RlUser {
    name: String,
    uid: u32,
    gid: u32,
    sub_start: u32,
    dir: PathBuf,
    ids: std::cell::RefCell<Vec<String>>,
}

impl RlUser {
    fn new(test: &str) -> RlUser {
        let n = N.fetch_add(1, Ordering::SeqCst);
        let pid = std::process::id();
        let name = format!("huskrl{pid}x{n}");
        let dir = PathBuf::from(format!("/tmp/husk-rl-{test}-{pid}-{n}"));
        let _ = fs::remove_dir_all(&dir);
        // Ranges far above the ids used elsewhere (e2e's 2000000, userns tests' 100000).
        let sub_start = 10_000_000 + ((pid % 1000) * 16 + n as u32 % 16) * SUB_SIZE;
        // useradd and userdel rewrite /etc/subuid and /etc/subgid too: all of it under one
        // lock, and no automatic range (ours is added below).
        let st = with_subid_lock(|| {
            Command::new("useradd")
                .args([
                    "-M",
                    "-s",
                    "/bin/sh",
                    "-K",
                    "SUB_UID_COUNT=0",
                    "-K",
                    "SUB_GID_COUNT=0",
                ])
                .arg(&name)
                .status()
                .expect("run useradd")
        });
        assert!(st.success(), "useradd {name} failed");
        // From here on Drop cleans up.
        let mut u = RlUser {
            name: name.clone(),
            uid: 0,
            gid: 0,
            sub_start,
            dir: dir.clone(),
            ids: Default::default(),
        };
        let id = |flag: &str| -> u32 {
            let out = Command::new("id").args([flag, &name]).output().unwrap();
            String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
        };
        u.uid = id("-u");
        u.gid = id("-g");
        with_subid_lock(|| {
            remove_subid_lines(&name);
            for file in ["/etc/subuid", "/etc/subgid"] {
                let mut f = fs::OpenOptions::new()
                    .append(true)
                    .create(true)
                    .open(file)
                    .unwrap();
                writeln!(f, "{name}:{sub_start}:{SUB_SIZE}").unwrap();
            }
        });
        for d in ["bin", "run", "io", "bundle", "bundle/out", "home"] {
            fs::create_dir_all(dir.join(d)).unwrap();
        }
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        fs::set_permissions(dir.join("run"), fs::Permissions::from_mode(0o700)).unwrap();
        fs::copy(husk_bin(), u.bin()).expect("copy the runtime binary");
        let st = Command::new("cp")
            .arg("-a")
            .arg(template_rootfs())
            .arg(u.bundle().join("rootfs"))
            .status()
            .unwrap();
        assert!(st.success());
        for d in ["bin", "run", "bundle", "home"] {
            let st = Command::new("chown")
                .args(["-R", &format!("{}:{}", u.uid, u.gid)])
                .arg(dir.join(d))
                .status()
                .unwrap();
            assert!(st.success());
        }
        u
    }

    fn bin(&self) -> PathBuf {
        self.dir.join("bin").join(husk_bin().file_name().unwrap())
    }
    fn bundle(&self) -> PathBuf {
        self.dir.join("bundle")
    }
    fn out(&self) -> PathBuf {
        self.bundle().join("out")
    }
    fn xdg(&self) -> PathBuf {
        self.dir.join("run")
    }
    /// The default root under $XDG_RUNTIME_DIR: `husk`, or `runc` for runc.
    fn state_root(&self) -> PathBuf {
        self.xdg().join(if is_runc() { "runc" } else { "husk" })
    }
    fn id(&self, name: &str) -> String {
        let id = format!("rl-{name}-{}", std::process::id());
        self.ids.borrow_mut().push(id.clone());
        id
    }

    /// Run the runtime as this user: `<bin> args...` with a clean environment.
    fn run(&self, args: &[&str]) -> Output {
        let all = self.setpriv_args(args);
        run_command(
            Path::new("/usr/bin/setpriv"),
            &all,
            &self.dir.join("io"),
            None,
        )
    }

    fn setpriv_args(&self, args: &[&str]) -> Vec<String> {
        let mut all: Vec<String> = [
            "--reuid",
            &self.uid.to_string(),
            "--regid",
            &self.gid.to_string(),
            "--init-groups",
            "env",
            "-i",
            "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
            &format!("HOME={}", self.dir.join("home").display()),
            &format!("USER={}", self.name),
            &format!("XDG_RUNTIME_DIR={}", self.xdg().display()),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        all.push(self.bin().display().to_string());
        all.extend(args.iter().map(|s| s.to_string()));
        all
    }

    /// [`RlUser::run`], started from a root shell that first moves itself into the delegated
    /// cgroup on every hierarchy (what a login session in a delegated cgroup looks like).
    fn run_in(&self, cg: &Delegation, args: &[&str]) -> Output {
        let mut all: Vec<String> = vec![
            "-c".into(),
            "for f in $HUSK_RL_PROCS; do echo $$ > \"$f\" || exit 99; done; exec \"$@\"".into(),
            "sh".into(),
            "/usr/bin/setpriv".into(),
        ];
        all.extend(self.setpriv_args(args));
        let procs: Vec<String> = cg
            .dirs
            .iter()
            .map(|d| d.join("cgroup.procs").display().to_string())
            .collect();
        std::env::set_var("HUSK_RL_PROCS", procs.join(" "));
        run_command(Path::new("/bin/sh"), &all, &self.dir.join("io"), None)
    }

    /// `spec --rootless` as this user, then `process.args`, no terminal, and `out/` at /out.
    fn rootless_config(&self, args: &[&str]) -> Value {
        let _ = fs::remove_file(self.bundle().join("config.json"));
        let b = self.bundle().display().to_string();
        self.run(&["spec", "--rootless", "--bundle", &b]).ok();
        let text = fs::read_to_string(self.bundle().join("config.json")).unwrap();
        let mut c: Value = serde_json::from_str(&text).unwrap();
        c["process"]["terminal"] = json!(false);
        c["process"]["args"] = json!(args);
        c["mounts"].as_array_mut().unwrap().push(json!({
            "destination": "/out", "type": "bind",
            "source": self.out().display().to_string(), "options": ["rbind", "rw"]
        }));
        c
    }

    fn save(&self, config: &Value) {
        let path = self.bundle().join("config.json");
        fs::write(&path, serde_json::to_vec_pretty(config).unwrap()).unwrap();
        let _ = std::os::unix::fs::chown(&path, Some(self.uid), Some(self.gid));
    }

    /// `run --bundle <bundle> [extra...] <id>` as this user, in the foreground.
    fn run_container(&self, id: &str, config: &Value, extra: &[&str]) -> Output {
        self.save(config);
        let b = self.bundle().display().to_string();
        let mut args: Vec<&str> = extra.to_vec();
        args.extend(["run", "--bundle", &b, id]);
        self.run(&args)
    }

    /// Nothing of `id` is left: no state dir, no process in a cgroup named after it, no cgroup
    /// dir, no process of the user (only this test's containers run as it).
    #[track_caller]
    fn assert_gone(&self, id: &str) {
        let mut problems = Vec::new();
        if self.state_root().join(id).exists() {
            problems.push(format!(
                "state dir {}",
                self.state_root().join(id).display()
            ));
        }
        for d in cgroup_dirs_named(id) {
            problems.push(format!("cgroup dir {}", d.display()));
        }
        for p in processes_of_uid(self.uid) {
            problems.push(format!("process {p} of {}", self.name));
        }
        assert!(problems.is_empty(), "{id} left behind: {problems:#?}");
    }
}

/// A cgroup `/<name>` made by the test on every hierarchy and delegated to the user, the way
/// systemd delegates a subtree: the directory, its `cgroup.procs`/`tasks` and, on cgroup2, its
/// `cgroup.subtree_control` belong to the user; cpuset gets the root's cpus and mems. Removed
/// on drop (with any child the runtime left, which the test reports separately).
struct Delegation {
    name: String,
    dirs: Vec<PathBuf>,
}

impl Delegation {
    fn new(u: &RlUser) -> Delegation {
        let name = format!("rl-cgdeleg-{}", std::process::id());
        let mut d = Delegation {
            name: name.clone(),
            dirs: Vec::new(),
        };
        let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap();
        for line in mountinfo.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            let Some(sep) = f.iter().position(|x| *x == "-") else {
                continue;
            };
            let fstype = f[sep + 1];
            if fstype != "cgroup" && fstype != "cgroup2" {
                continue;
            }
            let mnt = PathBuf::from(f[4]);
            let dir = mnt.join(&name);
            fs::create_dir(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
            d.dirs.push(dir.clone());
            for file in ["cpuset.cpus", "cpuset.mems"] {
                if let Ok(v) = fs::read_to_string(mnt.join(file)) {
                    fs::write(dir.join(file), v.trim()).unwrap();
                }
            }
            for p in [
                dir.clone(),
                dir.join("cgroup.procs"),
                dir.join("tasks"),
                dir.join("cgroup.subtree_control"),
            ] {
                if p.exists() {
                    std::os::unix::fs::chown(&p, Some(u.uid), Some(u.gid)).unwrap();
                }
            }
        }
        d
    }
}

impl Drop for Delegation {
    fn drop(&mut self) {
        for dir in &self.dirs {
            // The processes that were moved here have exited (RlUser's drop ran first).
            for e in fs::read_dir(dir).into_iter().flatten().flatten() {
                if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                    let _ = fs::remove_dir(e.path());
                }
            }
            let _ = fs::remove_dir(dir);
        }
    }
}

impl Drop for RlUser {
    fn drop(&mut self) {
        for id in self.ids.borrow().iter() {
            let _ = self.run(&["delete", "--force", id]);
        }
        for p in processes_of_uid(self.uid) {
            unsafe { libc::kill(p, libc::SIGKILL) };
        }
        wait_for("the user's processes to exit", || {
            processes_of_uid(self.uid).is_empty().then_some(())
        });
        with_subid_lock(|| {
            let _ = Command::new("userdel").arg(&self.name).status();
            remove_subid_lines(&self.name);
        });
        for m in mounts_under(&self.dir).iter().rev() {
            let _ = Command::new("umount").args(["-l", m]).status();
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Skip unless root with setpriv and newuidmap present (hack/deps.sh installs uidmap).
macro_rules! require_rootless_tools {
    () => {
        require_root!();
        for tool in [
            "/usr/bin/setpriv",
            "/usr/bin/newuidmap",
            "/usr/bin/newgidmap",
        ] {
            assert!(
                Path::new(tool).exists(),
                "{tool} missing: run hack/deps.sh (packages util-linux, uidmap)"
            );
        }
    };
}

fn mapping_line(map: &str) -> Vec<Vec<u64>> {
    map.lines()
        .map(|l| l.split_whitespace().map(|f| f.parse().unwrap()).collect())
        .collect()
}

/// (1) The caller's own uid and gid mapped to 0, written by the runtime itself: root inside,
/// the user outside.
#[test]
fn single_id_mapping_is_the_user_outside() {
    require_rootless_tools!();
    let u = RlUser::new("single");
    let id = u.id("single");
    let c = u.rootless_config(&[
        "sh",
        "-c",
        "id -u > /out/uid; id -g > /out/gid; cat /proc/self/uid_map > /out/uid_map; \
         cat /proc/self/gid_map > /out/gid_map; cat /proc/self/setgroups > /out/setgroups; \
         echo made > /out/file; mkdir /out/dir; \
         echo x > /dev/null && test -c /dev/null && echo devnull >> /out/checks; \
         test -d /sys/kernel && echo sys >> /out/checks; \
         grep -q ' /sys ' /proc/self/mountinfo && echo sysmount >> /out/checks",
    ]);
    // Exactly the caller's ids, as `spec --rootless` writes them.
    assert_eq!(
        c["linux"]["uidMappings"],
        json!([{"containerID": 0, "hostID": u.uid, "size": 1}])
    );
    assert_eq!(
        c["linux"]["gidMappings"],
        json!([{"containerID": 0, "hostID": u.gid, "size": 1}])
    );
    u.run_container(&id, &c, &[]).ok();
    let read = |f: &str| fs::read_to_string(u.out().join(f)).unwrap_or_default();
    assert_eq!(read("uid"), "0\n");
    assert_eq!(read("gid"), "0\n");
    assert_eq!(
        mapping_line(&read("uid_map")),
        vec![vec![0, u.uid as u64, 1]]
    );
    assert_eq!(
        mapping_line(&read("gid_map")),
        vec![vec![0, u.gid as u64, 1]]
    );
    // An unprivileged writer of gid_map must deny setgroups first (CVE-2014-8989).
    assert_eq!(read("setgroups").trim(), "deny");
    // /dev nodes bound from the host (mknod is not allowed), /sys bound (no sysfs mount
    // without a network namespace of our own).
    assert_eq!(read("checks"), "devnull\nsys\nsysmount\n");
    for f in ["file", "dir"] {
        let m = fs::metadata(u.out().join(f)).unwrap();
        assert_eq!((m.uid(), m.gid()), (u.uid, u.gid), "owner of out/{f}");
    }
    u.assert_gone(&id);
}

/// (2) Several ranges through newuidmap/newgidmap and the user's subordinate range: 0 is
/// the user, 1..65536 the subuid range; a file chowned to 1000 inside belongs to
/// sub_start + 999 outside.
#[test]
fn subuid_ranges_through_newuidmap() {
    require_rootless_tools!();
    let u = RlUser::new("subid");
    let id = u.id("subid");
    let mut c = u.rootless_config(&[
        "sh",
        "-c",
        "cat /proc/self/uid_map > /out/uid_map; cat /proc/self/gid_map > /out/gid_map; \
         cat /proc/self/setgroups > /out/setgroups; grep '^Groups:' /proc/self/status > /out/groups; \
         touch /out/f1000 && chown 1000:1000 /out/f1000 && echo chowned > /out/ok; \
         chown 70000 /out/ok 2>/dev/null || echo unmapped-refused >> /out/ok",
    ]);
    c["linux"]["uidMappings"] = json!([
        {"containerID": 0, "hostID": u.uid, "size": 1},
        {"containerID": 1, "hostID": u.sub_start, "size": SUB_SIZE}
    ]);
    c["linux"]["gidMappings"] = json!([
        {"containerID": 0, "hostID": u.gid, "size": 1},
        {"containerID": 1, "hostID": u.sub_start, "size": SUB_SIZE}
    ]);
    // chown needs CAP_CHOWN, which runc's rootless template does not grant.
    for set in ["bounding", "effective", "permitted"] {
        c["process"]["capabilities"][set]
            .as_array_mut()
            .unwrap()
            .push(json!("CAP_CHOWN"));
    }
    u.run_container(&id, &c, &[]).ok();
    let read = |f: &str| fs::read_to_string(u.out().join(f)).unwrap_or_default();
    let want = |own: u32| {
        vec![
            vec![0, own as u64, 1],
            vec![1, u.sub_start as u64, SUB_SIZE as u64],
        ]
    };
    assert_eq!(mapping_line(&read("uid_map")), want(u.uid));
    assert_eq!(mapping_line(&read("gid_map")), want(u.gid));
    // newgidmap was allowed to map more than our own gid: setgroups stays allowed.
    assert_eq!(read("setgroups").trim(), "allow");
    assert_eq!(read("ok"), "chowned\nunmapped-refused\n");
    let m = fs::metadata(u.out().join("f1000")).unwrap();
    assert_eq!((m.uid(), m.gid()), (u.sub_start + 999, u.sub_start + 999));
    // Supplementary groups: husk sets them as the config says (/etc/group's for uid 0 in the
    // container — none here — plus additionalGids) wherever setgroups is allowed. runc 1.1.5
    // never calls setgroups when its euid is not 0, so the process keeps the caller's host
    // groups (here the user's own gid, which is 0 inside): a deliberate difference.
    let groups = read("groups");
    if is_runc() {
        assert_eq!(groups.split_whitespace().nth(1), Some("0"), "{groups}");
    } else {
        assert_eq!(groups.trim(), "Groups:", "{groups}");
    }
    u.assert_gone(&id);
}

/// (3) The lifecycle as the user, with the default root under $XDG_RUNTIME_DIR.
#[test]
fn lifecycle_under_xdg_runtime_dir() {
    require_rootless_tools!();
    let u = RlUser::new("life");
    let id = u.id("life");
    let c = u.rootless_config(&["sleep", "1000"]);
    u.save(&c);
    let b = u.bundle().display().to_string();
    u.run(&["create", "--bundle", &b, &id]).ok();
    let root = u.state_root();
    let state_dir = root.join(&id);
    assert!(state_dir.is_dir(), "{} missing", state_dir.display());
    // runc's XDG root: the user's, mode 0700 with the sticky bit.
    let m = fs::metadata(&root).unwrap();
    assert_eq!(m.uid(), u.uid);
    assert_eq!(m.mode() & 0o7777, 0o1700, "mode of {}", root.display());
    assert_eq!(fs::metadata(&state_dir).unwrap().uid(), u.uid);

    let state = |u: &RlUser| -> Value { u.run(&["state", &id]).ok().json() };
    assert_eq!(state(&u)["status"], "created");
    u.run(&["start", &id]).ok();
    let st = state(&u);
    assert_eq!(st["status"], "running");
    assert_eq!(st["id"], id.as_str());
    let pid = st["pid"].as_i64().unwrap() as i32;
    // Outside: the container's process runs as the user.
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uids = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    let want = format!("{}", u.uid);
    assert!(uids.split_whitespace().skip(1).all(|x| x == want), "{uids}");
    // `list` shows it, owned by the user (OWNER is the state dir's owner, as in runc).
    let list = u.run(&["list", "--format", "json"]).ok().json();
    let entry = list
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == id.as_str())
        .unwrap_or_else(|| panic!("{id} not listed: {list}"))
        .clone();
    assert_eq!(entry["owner"], u.name.as_str());
    assert_eq!(entry["status"], "running");
    let table = u.run(&["list"]).ok().stdout.clone();
    assert!(
        table
            .lines()
            .any(|l| l.starts_with(&id) && l.ends_with(&u.name)),
        "{table}"
    );

    // exec joins the container (its user namespace first: only there may an unprivileged
    // caller join the pid namespace).
    let out = u.run(&[
        "exec",
        &id,
        "sh",
        "-c",
        "id -u; cat /proc/self/uid_map; cat /proc/1/comm",
    ]);
    out.ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert_eq!(lines[0], "0");
    assert_eq!(mapping_line(lines[1]), vec![vec![0, u.uid as u64, 1]]);
    assert_eq!(lines[2], "sleep");

    // ps and kill --all without a cgroup: husk finds the processes by the container's pid
    // namespace. runc 1.1.5 cannot ("unable to get all container pids").
    let pid_file = u.xdg().join("exec.pid");
    let pf = pid_file.display().to_string();
    u.run(&["exec", "-d", "--pid-file", &pf, &id, "sleep", "999"])
        .ok();
    let epid: i32 = fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let ps = u.run(&["ps", "--format", "json", &id]);
    if is_runc() {
        ps.failed();
        let _ = unsafe { libc::kill(epid, libc::SIGKILL) };
    } else {
        let mut want = vec![pid, epid];
        want.sort();
        assert_eq!(ps.ok().json(), json!(want));
        // SIGTERM: the exec'd sleep dies, the init (pid 1 without a handler) ignores it.
        u.run(&["kill", "--all", &id, "TERM"]).ok();
        wait_for("the exec'd process to die", || {
            (!proc_alive(epid)).then_some(())
        });
        assert!(proc_alive(pid));
    }

    // No cgroup of its own (nothing delegated): pause cannot work, with runc's words.
    u.run(&["pause", &id])
        .failed()
        .stderr_has("cannot toggle freezer: cgroups not configured for container");

    u.run(&["kill", &id, "KILL"]).ok();
    wait_for("the container to stop", || {
        (state(&u)["status"] == "stopped").then_some(())
    });
    u.run(&["delete", &id]).ok();
    assert!(!state_dir.exists(), "{} left", state_dir.display());
    u.run(&["state", &id]).failed().stderr_has("does not exist");
    u.assert_gone(&id);
}

/// (4) `--rootless true|false|auto`: as in runc it only decides whether cgroup permission
/// problems are tolerated (auto: yes for a non-root caller). Nothing is delegated to the user
/// on this host, so `false` fails at the first cgroup mkdir and leaves nothing behind.
#[test]
fn rootless_flag_as_runc() {
    require_rootless_tools!();
    let u = RlUser::new("flag");
    let c = u.rootless_config(&["sh", "-c", "echo ran >> /out/ran"]);
    let mut runs = 0;
    for (i, flag) in ["", "--rootless=auto", "--rootless=true", "--rootless=1"]
        .iter()
        .enumerate()
    {
        let id = u.id(&format!("flag{i}"));
        let extra: Vec<&str> = if flag.is_empty() { vec![] } else { vec![flag] };
        u.run_container(&id, &c, &extra).ok();
        runs += 1;
        assert_eq!(
            fs::read_to_string(u.out().join("ran")).unwrap(),
            "ran\n".repeat(runs)
        );
        u.assert_gone(&id);
    }
    let id = u.id("flagfalse");
    u.run_container(&id, &c, &["--rootless=false"])
        .failed()
        .stderr_has("permission denied");
    assert_eq!(
        fs::read_to_string(u.out().join("ran")).unwrap(),
        "ran\n".repeat(runs)
    );
    u.assert_gone(&id);

    let id = u.id("flagbad");
    u.run_container(&id, &c, &["--rootless=maybe"])
        .failed()
        .stderr_has("invalid syntax");
    u.assert_gone(&id);
}

/// (5) cgroups: nothing is delegated to the user here. Device rules are ignored (runc: "not
/// expected to work"); a limit cannot be enforced, which runc 1.1.5 reports as "cannot set
/// memory limit: container could not join or create cgroup" — husk says the same, naming the
/// field. An explicit cgroupsPath is never tolerated (runc: only `Path == ""` is), so it fails
/// with the permission error.
#[test]
fn cgroups_without_delegation() {
    require_rootless_tools!();
    let u = RlUser::new("cg");
    let mut c = u.rootless_config(&["sh", "-c", "cat /proc/self/cgroup > /out/cgroup"]);
    c["linux"]["resources"] = json!({"devices": [{"allow": false, "access": "rwm"}]});
    let id = u.id("cgdev");
    u.run_container(&id, &c, &[]).ok();
    assert!(u.out().join("cgroup").metadata().unwrap().len() > 0);
    u.assert_gone(&id);

    c["linux"]["resources"] = json!({"memory": {"limit": 67108864}});
    let id = u.id("cgmem");
    let out = u.run_container(&id, &c, &[]);
    out.failed()
        .stderr_has("cannot set memory limit: container could not join or create cgroup");
    if !is_runc() {
        out.stderr_has("linux.resources.memory");
    }
    u.assert_gone(&id);

    c["linux"]["resources"] = json!({"pids": {"limit": 50}});
    let id = u.id("cgpids");
    u.run_container(&id, &c, &[])
        .failed()
        .stderr_has("cannot set pids limit");
    u.assert_gone(&id);

    c["linux"]["resources"] = json!({});
    c["linux"]["cgroupsPath"] = json!(format!("/rl-cgpath-{}", std::process::id()));
    let id = u.id("cgpath");
    u.run_container(&id, &c, &[])
        .failed()
        .stderr_has("permission denied");
    u.assert_gone(&id);
    assert!(cgroup_dirs_named(&format!("rl-cgpath-{}", std::process::id())).is_empty());
}

/// (5b) A cgroup delegated to the user (every hierarchy, as this hybrid host needs) and named
/// in linux.cgroupsPath is used: the limits apply, checked inside and outside, and delete
/// removes the container's cgroup.
#[test]
fn cgroups_used_when_delegated() {
    require_rootless_tools!();
    let u = RlUser::new("deleg");
    let cg = Delegation::new(&u);
    let id = u.id("dl");
    let mut c = u.rootless_config(&[
        "sh",
        "-c",
        "cat /proc/self/cgroup > /out/cgroup; \
         cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/memory.max \
             /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/pids.max > /out/limits 2>/dev/null; \
         sleep 1000",
    ]);
    // The cgroup mount inside (rootless template: a cgroup namespace is not asked for, so the
    // container sees the host's paths; read-only).
    c["linux"]["cgroupsPath"] = json!(format!("/{}/{id}", cg.name));
    c["linux"]["resources"] = json!({"memory": {"limit": 67108864}, "pids": {"limit": 33}});
    u.save(&c);
    let b = u.bundle().display().to_string();
    u.run_in(&cg, &["create", "--bundle", &b, &id]).ok();
    u.run(&["start", &id]).ok();
    let limits = wait_for("the container's report", || {
        fs::read_to_string(u.out().join("limits"))
            .ok()
            .filter(|s| s.lines().count() >= 2)
    });
    assert_eq!(limits, "67108864\n33\n");
    // Outside: the container's cgroup below the delegated one, with the limits.
    let pid = u.run(&["state", &id]).ok().json()["pid"].as_i64().unwrap();
    let cgroups = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let want = format!("/{}/{id}", cg.name);
    for ctrl in ["memory", "pids"] {
        assert!(
            cgroups
                .lines()
                .any(|l| l.split(':').nth(1) == Some(ctrl) && l.ends_with(&want)),
            "{ctrl} not in {want}: {cgroups}"
        );
    }
    let mem = cg
        .dirs
        .iter()
        .find(|d| d.starts_with("/sys/fs/cgroup/memory"));
    if let Some(mem) = mem {
        let v = fs::read_to_string(mem.join(&id).join("memory.limit_in_bytes")).unwrap();
        assert_eq!(v.trim(), "67108864");
    }
    u.run(&["delete", "--force", &id]).ok();
    u.assert_gone(&id);
    for d in &cg.dirs {
        assert!(!d.join(&id).exists(), "{} left", d.join(&id).display());
    }
}

/// (6) What needs root, refused clearly with nothing left behind.
#[test]
fn what_needs_root_is_a_clear_error() {
    require_rootless_tools!();
    let u = RlUser::new("err");
    let base = u.rootless_config(&["sh", "-c", "echo ran > /out/ran"]);

    // A range outside the user's subuid range: newuidmap refuses it. runc 1.1.5 fails too,
    // but its error names nothing ("failed to sync with parent: read(SYNC_USERMAP_ACK)").
    let mut c = base.clone();
    c["linux"]["uidMappings"] = json!([
        {"containerID": 0, "hostID": u.uid, "size": 1},
        {"containerID": 1, "hostID": u.sub_start + SUB_SIZE, "size": 10}
    ]);
    let id = u.id("errmap");
    let out = u.run_container(&id, &c, &[]);
    out.failed();
    if !is_runc() {
        out.stderr_has("linux.uidMappings")
            .stderr_has("not allowed");
    }
    u.assert_gone(&id);

    // Another user's gid (root's): not ours to map. runc: "fchown fd 7: operation not
    // permitted".
    let mut c = base.clone();
    c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 0, "size": 1}]);
    let id = u.id("errgid");
    let out = u.run_container(&id, &c, &[]);
    out.failed();
    if !is_runc() {
        out.stderr_has("linux.gidMappings");
    }
    u.assert_gone(&id);

    // No user namespace at all.
    let mut c = base.clone();
    c["linux"]["namespaces"] = json!([{"type": "pid"}, {"type": "ipc"}, {"type": "uts"},
        {"type": "mount"}]);
    c["linux"].as_object_mut().unwrap().remove("uidMappings");
    c["linux"].as_object_mut().unwrap().remove("gidMappings");
    let id = u.id("errnouserns");
    u.run_container(&id, &c, &[])
        .failed()
        .stderr_has("rootless container requires user namespaces");
    u.assert_gone(&id);

    // A gid= mount option for a gid the single mapping lacks (runc's template as root has
    // devpts gid=5).
    let mut c = base.clone();
    for m in c["mounts"].as_array_mut().unwrap() {
        if m["destination"] == "/dev/pts" {
            m["options"].as_array_mut().unwrap().push(json!("gid=5"));
        }
    }
    let id = u.id("errgidopt");
    u.run_container(&id, &c, &[])
        .failed()
        .stderr_has("gid=")
        .stderr_has("unmapped");
    u.assert_gone(&id);

    // Additional groups with setgroups denied.
    let mut c = base.clone();
    c["process"]["user"]["additionalGids"] = json!([0]);
    let id = u.id("erraddgids");
    u.run_container(&id, &c, &[])
        .failed()
        .stderr_has("cannot set any additional groups in a rootless container");
    u.assert_gone(&id);

    assert!(!u.out().join("ran").exists(), "a refused container ran");
}
