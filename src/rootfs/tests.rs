//! End-to-end tests of prepare + enter + finish in a forked child with its own mount namespace,
//! against a busybox rootfs built in a temp dir. They need root; they skip otherwise.

use std::fs;
use std::os::fd::AsFd;
use std::os::unix::fs::{symlink, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::sched::{unshare, CloneFlags};
use nix::sys::wait::{waitpid, WaitStatus};
use oci_spec::runtime::Spec;

use super::{enter, finish, prepare, RootfsPlan};
use crate::sys::{self, Forked};

const PROC_SUPER_MAGIC: i64 = 0x9fa0;
const TMPFS_MAGIC: i64 = 0x0102_1994;
const DEVPTS_SUPER_MAGIC: i64 = 0x1cd1;
const SYSFS_MAGIC: i64 = 0x6265_6572;
const ST_RDONLY: u64 = 1;

fn skip() -> bool {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipping: needs root");
        return true;
    }
    if !Path::new("/bin/busybox").exists() {
        eprintln!("skipping: needs /bin/busybox");
        return true;
    }
    false
}

/// A bundle dir with a minimal busybox rootfs; removed on drop.
struct Bundle {
    dir: PathBuf,
}

impl Bundle {
    fn new(name: &str) -> Bundle {
        let dir = std::env::temp_dir().join(format!("husk-rootfs-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let rootfs = dir.join("rootfs");
        for d in ["bin", "proc", "sys", "dev", "tmp", "etc", "root"] {
            fs::create_dir_all(rootfs.join(d)).unwrap();
        }
        fs::set_permissions(rootfs.join("tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
        fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
        for applet in ["sh", "ls", "cat"] {
            symlink("busybox", rootfs.join("bin").join(applet)).unwrap();
        }
        fs::write(rootfs.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
        Bundle { dir }
    }

    fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Fork; the child unshares its mount namespace, runs `f` and exits with its code.
fn in_child(f: impl FnOnce() -> i32) -> i32 {
    match sys::fork().expect("fork") {
        Forked::Child => {
            let code = match unshare(CloneFlags::CLONE_NEWNS) {
                Ok(()) => f(),
                Err(e) => {
                    say(&format!("unshare: {e}"));
                    100
                }
            };
            sys::exit_now(code)
        }
        Forked::Parent { pid, .. } => match waitpid(pid, None).expect("waitpid") {
            WaitStatus::Exited(_, code) => code,
            other => panic!("child ended with {other:?}"),
        },
    }
}

fn fs_of(p: &str) -> (i64, u64) {
    use std::os::unix::fs::OpenOptionsExt;
    let Ok(f) = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH)
        .open(p)
    else {
        return (0, 0);
    };
    crate::sys::mount::fstatfs(f.as_fd())
        .map(|i| (i.fs_type, i.flags))
        .unwrap_or((0, 0))
}

/// The child's stderr (eprintln! would go to the test harness's capture buffer, lost in a fork).
fn say(msg: &str) {
    let _ = std::io::Write::write_all(&mut std::io::stderr(), format!("{msg}\n").as_bytes());
}

fn check(cond: bool, code: i32, what: &str) -> Result<(), i32> {
    if cond {
        Ok(())
    } else {
        say(&format!("rootfs test check failed: {what}"));
        Err(code)
    }
}

fn full_config(bundle: &Bundle) -> Spec {
    let json = serde_json::json!({
        "ociVersion": "1.0.2",
        "root": {"path": "rootfs", "readonly": true},
        "process": {"cwd": "/", "args": ["sh"], "user": {"uid": 0, "gid": 0}},
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            // A symlink to the host's /etc inside the rootfs: must land in rootfs/etc.
            {"destination": "/escape", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]},
            // Through a relative symlink climbing out: also stays inside.
            {"destination": "/climb/sub", "type": "tmpfs", "source": "tmpfs"},
            // A bind onto a file that does not exist in the image (Podman's /etc/hosts).
            {"destination": "/etc/hosts-missing", "type": "bind", "source": "hostsfile",
             "options": ["rbind", "ro", "nosuid"]},
            // Through a dangling symlink to an absolute host path: created inside.
            {"destination": "/dangling", "type": "none", "source": "hostsfile", "options": ["bind"]},
            {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
             "options": ["size=1m", "mode=1770", "nodev"]},
            {"destination": "/ro-tmp", "type": "tmpfs", "source": "tmpfs", "options": ["ro"]},
            {"destination": "/copied", "type": "tmpfs", "source": "tmpfs", "options": ["tmpcopyup"]}
        ],
        "linux": {
            "namespaces": [{"type": "mount"}],
            "maskedPaths": ["/proc/timer_list", "/sys/firmware", "/proc/does-not-exist", "/proc/timer_list"],
            "readonlyPaths": ["/proc/sys", "/proc/sysrq-trigger", "/proc/nope"],
            "devices": [{"path": "/dev/fuse-like", "type": "c", "major": 10, "minor": 229, "fileMode": 0o600,
                         "uid": 12, "gid": 34}]
        }
    });
    let rootfs = bundle.rootfs();
    symlink("/etc", rootfs.join("escape")).unwrap();
    symlink("../../../../../../../../etc", rootfs.join("climb")).unwrap();
    symlink("/etc/husk-dangling-target", rootfs.join("dangling")).unwrap();
    fs::write(bundle.dir.join("hostsfile"), "127.0.0.1 husk\n").unwrap();
    fs::create_dir_all(rootfs.join("copied/sub")).unwrap();
    fs::write(rootfs.join("copied/sub/file"), "copy me").unwrap();
    symlink("sub/file", rootfs.join("copied/link")).unwrap();
    serde_json::from_value(json).unwrap()
}

fn plan<'a>(spec: &'a Spec, bundle: &Bundle) -> RootfsPlan<'a> {
    RootfsPlan {
        spec,
        rootfs: bundle.rootfs(),
        bundle: bundle.dir.clone(),
        no_pivot: false,
        in_user_ns: false,
        in_cgroup_ns: false,
        idmapped: Vec::new(),
    }
}

fn full_checks(plan: &RootfsPlan) -> Result<(), i32> {
    if let Err(e) = prepare(plan) {
        say(&format!("prepare: {e}"));
        return Err(2);
    }
    // Still in the host's root: nothing may have landed on the host's /etc.
    check(
        fs_of("/etc").0 != TMPFS_MAGIC,
        3,
        "host /etc untouched after prepare",
    )?;
    check(
        !Path::new("/etc/husk-dangling-target").exists(),
        4,
        "no file created in host /etc",
    )?;
    check(
        !Path::new("/etc/sub").exists(),
        5,
        "no dir created in host /etc",
    )?;
    if let Err(e) = enter(plan) {
        say(&format!("enter: {e}"));
        return Err(6);
    }
    if let Err(e) = finish(plan) {
        say(&format!("finish: {e}"));
        return Err(7);
    }
    check(fs_of("/proc").0 == PROC_SUPER_MAGIC, 10, "/proc is procfs")?;
    check(fs_of("/dev").0 == TMPFS_MAGIC, 11, "/dev is tmpfs")?;
    check(
        fs_of("/dev/pts").0 == DEVPTS_SUPER_MAGIC,
        12,
        "/dev/pts is devpts",
    )?;
    check(
        fs_of("/sys").0 == SYSFS_MAGIC && fs_of("/sys").1 & ST_RDONLY != 0,
        13,
        "/sys is read-only sysfs",
    )?;
    let null = fs::metadata("/dev/null").map_err(|_| 14)?;
    check(
        null.file_type().is_char_device()
            && null.rdev() == nix::sys::stat::makedev(1, 3)
            && null.mode() & 0o7777 == 0o666,
        14,
        "/dev/null is char 1:3 mode 0666",
    )?;
    for d in ["zero", "full", "random", "urandom", "tty"] {
        check(
            fs::metadata(format!("/dev/{d}")).is_ok_and(|m| m.file_type().is_char_device()),
            15,
            d,
        )?;
    }
    let fuse = fs::metadata("/dev/fuse-like").map_err(|_| 16)?;
    check(
        fuse.rdev() == nix::sys::stat::makedev(10, 229)
            && fuse.mode() & 0o7777 == 0o600
            && fuse.uid() == 12
            && fuse.gid() == 34,
        16,
        "linux.devices entry",
    )?;
    check(
        fs::read_link("/dev/ptmx").is_ok_and(|t| t == Path::new("pts/ptmx")),
        17,
        "/dev/ptmx -> pts/ptmx",
    )?;
    check(
        fs::read_link("/dev/fd").is_ok_and(|t| t == Path::new("/proc/self/fd")),
        18,
        "/dev/fd",
    )?;
    check(
        fs::read_link("/dev/stderr").is_ok_and(|t| t == Path::new("/proc/self/fd/2")),
        18,
        "/dev/stderr",
    )?;
    // The escape attempts landed inside the rootfs.
    check(
        fs_of("/etc").0 == TMPFS_MAGIC,
        20,
        "/escape -> /etc mounted on the rootfs's /etc",
    )?;
    check(
        fs_of("/etc/sub").0 == TMPFS_MAGIC,
        21,
        "/climb/sub landed in /etc/sub",
    )?;
    check(
        fs::read_to_string("/etc/husk-dangling-target").is_ok_and(|s| s == "127.0.0.1 husk\n"),
        22,
        "bind through a dangling symlink landed inside",
    )?;
    // Bind onto a missing file: created as a file, read-only.
    check(
        fs::read_to_string("/etc/hosts-missing").is_ok_and(|s| s == "127.0.0.1 husk\n"),
        23,
        "bind onto a missing file target",
    )?;
    check(
        fs_of("/etc/hosts-missing").1 & ST_RDONLY != 0,
        24,
        "ro bind is read-only",
    )?;
    // tmpfs size= and mode=.
    let tmp = fs::metadata("/tmp").map_err(|_| 25)?;
    check(tmp.mode() & 0o7777 == 0o1770, 25, "/tmp mode=1770")?;
    let mi = fs::read_to_string("/proc/self/mountinfo").map_err(|_| 26)?;
    if std::env::var_os("HUSK_DUMP").is_some() {
        say(&mi);
    }
    let tmp_line = mi
        .lines()
        .find(|l| l.split(' ').nth(4) == Some("/tmp"))
        .unwrap_or("");
    check(
        tmp_line.contains("size=1024k") && tmp_line.contains("nodev"),
        26,
        "/tmp size=1m,nodev in mountinfo",
    )?;
    check(
        fs::write("/tmp/x", "w").is_ok(),
        27,
        "/tmp writable under a read-only root",
    )?;
    check(
        fs_of("/ro-tmp").1 & ST_RDONLY != 0,
        28,
        "ro tmpfs remounted read-only in finish",
    )?;
    check(fs_of("/").1 & ST_RDONLY != 0, 29, "root.readonly")?;
    check(
        fs::write("/newfile", "w").is_err(),
        29,
        "root.readonly refuses writes",
    )?;
    // tmpcopyup
    check(fs_of("/copied").0 == TMPFS_MAGIC, 30, "/copied is a tmpfs")?;
    check(
        fs::read_to_string("/copied/sub/file").is_ok_and(|s| s == "copy me"),
        30,
        "tmpcopyup file",
    )?;
    check(
        fs::read_link("/copied/link").is_ok_and(|t| t == Path::new("sub/file")),
        30,
        "tmpcopyup symlink",
    )?;
    // maskedPaths: a file masked with /dev/null, a directory with an empty ro tmpfs.
    check(
        fs::read_to_string("/proc/timer_list").is_ok_and(|s| s.is_empty()),
        31,
        "masked /proc/timer_list",
    )?;
    if Path::new("/sys/firmware").exists() {
        let (t, f) = fs_of("/sys/firmware");
        check(
            t == TMPFS_MAGIC && f & ST_RDONLY != 0,
            32,
            "masked /sys/firmware",
        )?;
        check(
            fs::read_dir("/sys/firmware")
                .map(|d| d.count())
                .unwrap_or(1)
                == 0,
            32,
            "masked dir is empty",
        )?;
    }
    // readonlyPaths
    check(
        fs_of("/proc/sys").1 & ST_RDONLY != 0,
        33,
        "/proc/sys read-only",
    )?;
    if Path::new("/proc/sysrq-trigger").exists() {
        check(
            fs_of("/proc/sysrq-trigger").1 & ST_RDONLY != 0,
            33,
            "/proc/sysrq-trigger read-only",
        )?;
    }
    // The old root is gone: nothing of the host is visible in mountinfo.
    check(
        !mi.lines().any(|l| {
            l.split(' ')
                .nth(4)
                .is_some_and(|mp| mp.contains("husk-rootfs"))
        }),
        34,
        "old root detached",
    )?;
    check(
        std::env::current_dir().is_ok_and(|d| d == Path::new("/")),
        35,
        "cwd is /",
    )?;
    Ok(())
}

#[test]
fn rootfs_full_sequence() {
    if skip() {
        return;
    }
    let bundle = Bundle::new("full");
    let spec = full_config(&bundle);
    let plan = plan(&spec, &bundle);
    let code = in_child(|| match full_checks(&plan) {
        Ok(()) => 0,
        Err(c) => c,
    });
    assert_eq!(code, 0, "child failed check {code} (see stderr)");
    // And from the host: the host's /etc never saw any of it.
    assert!(!Path::new("/etc/husk-dangling-target").exists());
    assert!(!Path::new("/etc/sub").exists());
    assert!(!Path::new("/etc/hosts-missing").exists());
}

/// Run prepare in a child and return its error text ("" on success) through a pipe.
fn prepare_error(spec: &Spec, bundle: &Bundle) -> String {
    let (r, w) = nix::unistd::pipe().expect("pipe");
    let plan = plan(spec, bundle);
    let code = in_child(|| {
        let msg = match prepare(&plan) {
            Ok(()) => String::new(),
            Err(e) => e.to_string(),
        };
        let _ = nix::unistd::write(&w, msg.as_bytes());
        0
    });
    drop(w);
    assert_eq!(code, 0);
    let mut out = String::new();
    let _ = std::io::Read::read_to_string(&mut fs::File::from(r), &mut out);
    out
}

#[test]
fn rootfs_proc_through_symlink_is_refused() {
    if skip() {
        return;
    }
    let bundle = Bundle::new("procsym");
    let rootfs = bundle.rootfs();
    fs::remove_dir(rootfs.join("proc")).unwrap();
    fs::create_dir(rootfs.join("fakeproc")).unwrap();
    symlink("/fakeproc", rootfs.join("proc")).unwrap();
    let spec: Spec = serde_json::from_value(serde_json::json!({
        "ociVersion": "1.0.2", "root": {"path": "rootfs"},
        "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"}]
    }))
    .unwrap();
    let err = prepare_error(&spec, &bundle);
    assert!(
        err.contains("must be mounted on ordinary directory"),
        "got {err:?}"
    );
    assert!(err.starts_with("mounts[0] (proc on /proc)"), "got {err:?}");
}

#[test]
fn rootfs_unknown_type_and_proc_overmount() {
    if skip() {
        return;
    }
    let bundle = Bundle::new("errors");
    let spec: Spec = serde_json::from_value(serde_json::json!({
        "ociVersion": "1.0.2", "root": {"path": "rootfs"},
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/x", "type": "nosuchfs", "source": "none"}
        ]
    }))
    .unwrap();
    let err = prepare_error(&spec, &bundle);
    assert_eq!(
        err,
        "mount \"nosuchfs\" on /x: mounts[1].type: no such device"
    );

    let spec: Spec = serde_json::from_value(serde_json::json!({
        "ociVersion": "1.0.2", "root": {"path": "rootfs"},
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/proc/sys/kernel", "type": "tmpfs", "source": "tmpfs"}
        ]
    }))
    .unwrap();
    let err = prepare_error(&spec, &bundle);
    assert!(
        err.starts_with("mounts[1] (tmpfs on /proc/sys/kernel)"),
        "got {err:?}"
    );
    assert!(
        err.contains("cannot be mounted because it is inside /proc"),
        "got {err:?}"
    );

    let spec: Spec = serde_json::from_value(serde_json::json!({
        "ociVersion": "1.0.2", "root": {"path": "rootfs"},
        "mounts": [{"destination": "/proc", "type": "tmpfs", "source": "tmpfs"}]
    }))
    .unwrap();
    let err = prepare_error(&spec, &bundle);
    assert!(
        err.contains("cannot be mounted because it is not of type proc"),
        "got {err:?}"
    );

    let spec: Spec = serde_json::from_value(serde_json::json!({
        "ociVersion": "1.0.2", "root": {"path": "rootfs"},
        "mounts": [{"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["size=bogus"]}]
    }))
    .unwrap();
    let err = prepare_error(&spec, &bundle);
    assert_eq!(err, "mounts[0] (tmpfs on /tmp): mount: invalid argument");
}

fn variant_config(bundle: &Bundle) -> Spec {
    fs::create_dir_all(bundle.dir.join("vol/inner")).unwrap();
    fs::write(bundle.dir.join("vol/inner/f"), "x").unwrap();
    serde_json::from_value(serde_json::json!({
        "ociVersion": "1.0.2",
        "root": {"path": "rootfs"},
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
            // Recursive read-only + private propagation on a bind with a sub-mount.
            {"destination": "/vol", "type": "bind", "source": "vol", "options": ["rbind", "rro", "rprivate"]}
        ],
        "linux": {"rootfsPropagation": "rslave"}
    }))
    .unwrap()
}

fn variant_checks(plan: &RootfsPlan, cgroupns: bool) -> Result<(), i32> {
    if cgroupns {
        unshare(CloneFlags::CLONE_NEWCGROUP).map_err(|_| 1)?;
    }
    // A tmpfs inside the bind source, so that the rbind carries a sub-mount.
    let inner = plan.bundle.join("vol/inner");
    nix::mount::mount(
        Some("tmpfs"),
        &inner,
        Some("tmpfs"),
        nix::mount::MsFlags::empty(),
        None::<&str>,
    )
    .map_err(|_| 1)?;
    if let Err(e) = prepare(plan)
        .and_then(|()| enter(plan))
        .and_then(|()| finish(plan))
    {
        say(&format!("setup: {e}"));
        return Err(2);
    }
    let mi = fs::read_to_string("/proc/self/mountinfo").map_err(|_| 3)?;
    if std::env::var_os("HUSK_DUMP").is_some() {
        say(&mi);
    }
    let cg = fs_of("/sys/fs/cgroup");
    let host_v2 = cg.0 == 0x6367_7270;
    if !host_v2 {
        check(
            cg.0 == TMPFS_MAGIC,
            10,
            "/sys/fs/cgroup is a tmpfs on a v1 host",
        )?;
        let own = fs::read_to_string("/proc/self/cgroup").map_err(|_| 11)?;
        for line in own.lines() {
            let ctrls = line.split(':').nth(1).unwrap_or("");
            let Some(first) = ctrls.split(',').next().filter(|c| !c.is_empty()) else {
                continue;
            };
            let name = first.strip_prefix("name=").unwrap_or(first);
            let p = format!("/sys/fs/cgroup/{name}");
            let (t, f) = fs_of(&p);
            check(
                t == 0x0027_e0eb && f & ST_RDONLY != 0,
                12,
                &format!("{p} is a read-only cgroup v1 mount"),
            )?;
        }
    }
    check(fs_of("/vol").1 & ST_RDONLY != 0, 20, "/vol read-only")?;
    check(
        fs_of("/vol/inner").0 == TMPFS_MAGIC,
        21,
        "/vol/inner sub-mount carried by rbind",
    )?;
    check(
        fs_of("/vol/inner").1 & ST_RDONLY != 0,
        22,
        "rro made the sub-mount read-only",
    )?;
    let vol = mi
        .lines()
        .find(|l| l.split(' ').nth(4) == Some("/vol"))
        .unwrap_or("");
    check(
        !vol.contains("shared:") && !vol.contains("master:"),
        23,
        "/vol is private",
    )?;
    // Devices were bind-mounted from the host (in_user_ns): still char 1:3.
    let null = fs::metadata("/dev/null").map_err(|_| 24)?;
    check(
        null.rdev() == nix::sys::stat::makedev(1, 3),
        24,
        "/dev/null bound from the host",
    )?;
    check(
        mi.lines().any(|l| l.split(' ').nth(4) == Some("/dev/null")),
        25,
        "/dev/null is a bind mount",
    )?;
    Ok(())
}

#[test]
fn rootfs_cgroup_nopivot_userns_devices() {
    if skip() {
        return;
    }
    for (no_pivot, cgroupns) in [(false, false), (true, true)] {
        let bundle = Bundle::new(if no_pivot { "variant-np" } else { "variant" });
        let spec = variant_config(&bundle);
        let mut plan = plan(&spec, &bundle);
        plan.no_pivot = no_pivot;
        plan.in_user_ns = true;
        plan.in_cgroup_ns = cgroupns;
        let code = in_child(|| match variant_checks(&plan, cgroupns) {
            Ok(()) => 0,
            Err(c) => c,
        });
        assert_eq!(
            code, 0,
            "no_pivot={no_pivot} cgroupns={cgroupns}: child failed check {code} (see stderr)"
        );
    }
}

/// In the child: a tmpfs with nosuid,nodev,noexec under the bundle, then a new user namespace
/// (mapping only root) and mount namespace, so that those flags become locked.
fn enter_userns_with_locked_tmpfs(bundle: &Path) -> Result<(), i32> {
    use nix::mount::{mount, MsFlags};
    let locked = bundle.join("locked");
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mount(Some("tmpfs"), &locked, Some("tmpfs"), flags, None::<&str>).map_err(|_| 90)?;
    fs::write(locked.join("file"), "secret").map_err(|_| 91)?;
    unshare(CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNS).map_err(|_| 92)?;
    fs::write("/proc/self/setgroups", "deny").map_err(|_| 93)?;
    fs::write("/proc/self/uid_map", "0 0 1").map_err(|_| 94)?;
    fs::write("/proc/self/gid_map", "0 0 1").map_err(|_| 95)?;
    Ok(())
}

fn userns_checks(plan: &RootfsPlan) -> Result<(), i32> {
    enter_userns_with_locked_tmpfs(&plan.bundle)?;
    if let Err(e) = prepare(plan)
        .and_then(|()| enter(plan))
        .and_then(|()| finish(plan))
    {
        say(&format!("setup: {e}"));
        return Err(2);
    }
    const ST_NOSUID: u64 = 2;
    const ST_NODEV: u64 = 4;
    const ST_NOEXEC: u64 = 8;
    let locked = ST_NOSUID | ST_NODEV | ST_NOEXEC;
    let (_, f) = fs_of("/locked-ro");
    check(
        f & ST_RDONLY != 0 && f & locked == locked,
        10,
        "ro bind kept the locked flags",
    )?;
    let (_, f) = fs_of("/locked-rw");
    check(
        f & ST_RDONLY == 0 && f & locked == locked,
        11,
        "rw bind kept the source flags",
    )?;
    let null = fs::metadata("/dev/null").map_err(|_| 12)?;
    check(
        null.rdev() == nix::sys::stat::makedev(1, 3),
        12,
        "/dev/null bound from the host",
    )?;
    check(
        fs::read_to_string("/locked-ro/file").is_ok_and(|s| s.is_empty()),
        13,
        "masked file",
    )?;
    check(
        fs_of("/").1 & ST_RDONLY != 0,
        14,
        "read-only root in a user namespace",
    )?;
    Ok(())
}

#[test]
fn rootfs_userns_locked_flags() {
    if skip() {
        return;
    }
    let bundle = Bundle::new("userns");
    fs::create_dir(bundle.dir.join("locked")).unwrap();
    let spec: Spec = serde_json::from_value(serde_json::json!({
        "ociVersion": "1.0.2", "root": {"path": "rootfs", "readonly": true},
        "mounts": [
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755"]},
            {"destination": "/locked-ro", "type": "bind", "source": "locked", "options": ["bind", "ro"]},
            {"destination": "/locked-rw", "type": "bind", "source": "locked", "options": ["rbind", "rw"]}
        ],
        "linux": {"maskedPaths": ["/locked-ro/file"]}
    }))
    .unwrap();
    let mut p = plan(&spec, &bundle);
    // Devices are mknod'ed first and bound from the host on EPERM.
    p.in_user_ns = false;
    let code = in_child(|| match userns_checks(&p) {
        Ok(()) => 0,
        Err(c) => c,
    });
    assert_eq!(code, 0, "child failed check {code} (see stderr)");

    // Explicitly clearing a locked flag is an error, as in runc.
    let spec: Spec = serde_json::from_value(serde_json::json!({
        "ociVersion": "1.0.2", "root": {"path": "rootfs"},
        "mounts": [{"destination": "/x", "type": "bind", "source": "locked", "options": ["bind", "ro", "suid"]}]
    }))
    .unwrap();
    let (r, w) = nix::unistd::pipe().expect("pipe");
    let p = plan(&spec, &bundle);
    let code = in_child(|| {
        if let Err(c) = enter_userns_with_locked_tmpfs(&p.bundle) {
            return c;
        }
        let msg = prepare(&p).err().map(|e| e.to_string()).unwrap_or_default();
        let _ = nix::unistd::write(&w, msg.as_bytes());
        0
    });
    drop(w);
    assert_eq!(code, 0);
    let mut err = String::new();
    let _ = std::io::Read::read_to_string(&mut fs::File::from(r), &mut err);
    assert!(
        err.starts_with("mounts[0] (bind on /x): cannot clear locked flags nosuid"),
        "got {err:?}"
    );
}
