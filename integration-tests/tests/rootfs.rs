//! The container's filesystem view: mounts, readonly root, masked and readonly paths, /dev,
//! devices, sysctls, joined namespaces, --no-pivot. Checked from inside (and outside where the
//! host can see it).

use integration_tests::*;
use serde_json::json;
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};

#[track_caller]
fn run_ok(rt: &Runtime, b: &Bundle) -> String {
    let out = rt.run_once(b);
    out.ok();
    out.stdout
}

/// One /proc/self/mountinfo line, split.
#[derive(Debug)]
struct MountInfo {
    mount_point: String,
    options: Vec<String>,
    fs_type: String,
    super_options: Vec<String>,
}

fn parse_mountinfo(text: &str) -> BTreeMap<String, MountInfo> {
    let mut map = BTreeMap::new();
    for line in text.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let l: Vec<&str> = left.split(' ').collect();
        let r: Vec<&str> = right.split(' ').collect();
        if l.len() < 6 || r.len() < 3 {
            continue;
        }
        let mi = MountInfo {
            mount_point: l[4].to_string(),
            options: l[5].split(',').map(String::from).collect(),
            fs_type: r[0].to_string(),
            super_options: r[2].split(',').map(String::from).collect(),
        };
        // Later (upper) mounts win.
        map.insert(mi.mount_point.clone(), mi);
    }
    map
}

/// Split stdout at a `--mountinfo--` line into (before, mountinfo).
fn split_mountinfo(out: &str) -> (String, BTreeMap<String, MountInfo>) {
    let (before, after) = out.split_once("--mountinfo--\n").expect("marker in output");
    (before.to_string(), parse_mountinfo(after))
}

#[test]
fn mounts_tmpfs_bind_and_flags() {
    require_root!();
    let mut b = Bundle::new("mounts");
    fs::create_dir_all(b.path().join("robind")).unwrap();
    fs::write(b.path().join("robind/data"), "ro-data\n").unwrap();
    fs::write(b.path().join("hosts"), "127.0.0.1 it\n").unwrap();
    assert!(!b.rootfs().join("etc/hosts-it").exists());
    // runc 1.1.5: a tmpfs over a directory that exists in the rootfs gets that directory's
    // mode, whatever `mode=` says. That is a runc bug (fixed in later runc): husk honours mode=.
    fs::create_dir_all(b.rootfs().join("mnt/existing")).unwrap();
    fs::set_permissions(
        b.rootfs().join("mnt/existing"),
        std::os::unix::fs::PermissionsExt::from_mode(0o711),
    )
    .unwrap();
    b.add_mount(json!({
        "destination": "/mnt/existing", "type": "tmpfs", "source": "tmpfs",
        "options": ["mode=1777"]
    }));
    b.add_mount(json!({
        "destination": "/mnt/tmp", "type": "tmpfs", "source": "tmpfs",
        "options": ["nosuid", "nodev", "noexec", "size=1m", "mode=1770"]
    }));
    b.add_mount(json!({
        "destination": "/mnt/ro", "type": "bind",
        "source": b.path().join("robind").display().to_string(),
        "options": ["bind", "ro"]
    }));
    b.add_mount(json!({
        "destination": "/etc/hosts-it", "type": "bind",
        "source": b.path().join("hosts").display().to_string(),
        "options": ["rbind", "ro"]
    }));
    b.sh(concat!(
        "stat -c %a /mnt/tmp /mnt/existing; echo hello > /mnt/tmp/f && cat /mnt/tmp/f; ",
        "cat /mnt/ro/data; touch /mnt/ro/new 2>/dev/null && echo ro-writable || echo ro-refused; ",
        "cat /etc/hosts-it; ",
        "echo --mountinfo--; cat /proc/self/mountinfo"
    ));
    let rt = Runtime::new("mounts");
    let out = run_ok(&rt, &b);
    let (text, mi) = split_mountinfo(&out);
    let existing_mode = if is_runc() { "711" } else { "1777" };
    assert_eq!(
        text,
        format!("1770\n{existing_mode}\nhello\nro-data\nro-refused\n127.0.0.1 it\n")
    );

    let tmp = &mi["/mnt/tmp"];
    assert_eq!(tmp.fs_type, "tmpfs");
    for o in ["nosuid", "nodev", "noexec"] {
        assert!(tmp.options.iter().any(|x| x == o), "{o} missing: {tmp:?}");
    }
    assert!(
        tmp.super_options.iter().any(|x| x == "size=1024k"),
        "{tmp:?}"
    );
    assert!(
        tmp.super_options.iter().any(|x| x == "mode=1770"),
        "{tmp:?}"
    );
    let ro = &mi["/mnt/ro"];
    assert!(ro.options.iter().any(|x| x == "ro"), "{ro:?}");
    let hosts = &mi["/etc/hosts-it"];
    assert!(hosts.options.iter().any(|x| x == "ro"), "{hosts:?}");
    // The missing bind target was created in the rootfs, as a file.
    let target = fs::metadata(b.rootfs().join("etc/hosts-it")).expect("target created");
    assert!(target.is_file());
}

#[test]
fn recursive_readonly_bind() {
    require_root!();
    let mut b = Bundle::new("rro");
    let src = b.path().join("rsrc");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("top"), "top\n").unwrap();
    mount_tmpfs(&src.join("sub"));
    fs::write(src.join("sub/inner"), "inner\n").unwrap();
    b.add_mount(json!({
        "destination": "/mnt/rro", "type": "bind",
        "source": src.display().to_string(),
        "options": ["rbind", "rro"]
    }));
    b.sh(concat!(
        "cat /mnt/rro/top /mnt/rro/sub/inner; ",
        "touch /mnt/rro/x 2>/dev/null && echo top-writable || echo top-ro; ",
        "touch /mnt/rro/sub/x 2>/dev/null && echo sub-writable || echo sub-ro; ",
        "echo --mountinfo--; cat /proc/self/mountinfo"
    ));
    let rt = Runtime::new("rro");
    let out = rt.run_once(&b);
    umount(&src.join("sub"));
    out.ok();
    let (text, mi) = split_mountinfo(&out.stdout);
    assert_eq!(text, "top\ninner\ntop-ro\nsub-ro\n");
    for m in ["/mnt/rro", "/mnt/rro/sub"] {
        assert!(mi[m].options.iter().any(|x| x == "ro"), "{m}: {:?}", mi[m]);
    }
    // The host's mount stays writable.
    fs::write(src.join("host-side"), "x").unwrap();
}

#[test]
fn readonly_root() {
    require_root!();
    let mut b = Bundle::new("ro-root");
    b.config["root"]["readonly"] = json!(true);
    b.sh(concat!(
        "touch /x 2>/dev/null && echo root-writable || echo root-ro; ",
        "echo ok > /out/w && cat /out/w; echo tmp > /dev/shm/t && cat /dev/shm/t; ",
        "echo --mountinfo--; cat /proc/self/mountinfo"
    ));
    let rt = Runtime::new("ro-root");
    let out = run_ok(&rt, &b);
    let (text, mi) = split_mountinfo(&out);
    assert_eq!(text, "root-ro\nok\ntmp\n");
    assert!(mi["/"].options.iter().any(|x| x == "ro"), "{:?}", mi["/"]);
    assert!(!b.rootfs().join("x").exists());
}

#[test]
fn masked_and_readonly_paths() {
    require_root!();
    let mut b = Bundle::new("masked");
    b.write_rootfs_file("etc/secret", "secret-data\n");
    b.write_rootfs_file("etc/secretdir/file", "hidden\n");
    b.write_rootfs_file("etc/rodir/file", "readable\n");
    let masked = b.config["linux"]["maskedPaths"].as_array_mut().unwrap();
    masked.extend([
        json!("/etc/secret"),
        json!("/etc/secretdir"),
        json!("/no/such/path"),
    ]);
    let ro = b.config["linux"]["readonlyPaths"].as_array_mut().unwrap();
    ro.extend([json!("/etc/rodir"), json!("/no/such/ro")]);
    b.sh(concat!(
        "echo \"secret=[$(cat /etc/secret)]\"; echo \"secretdir=[$(ls -A /etc/secretdir)]\"; ",
        // Masked by default (spec-fixtures/good/minimal.json); both exist on the host.
        "echo \"keys=$(wc -c < /proc/keys)\"; echo \"firmware=[$(ls -A /sys/firmware)]\"; ",
        "cat /etc/rodir/file; touch /etc/rodir/new 2>/dev/null && echo rw || echo ro-refused; ",
        "echo x > /etc/secret 2>/dev/null; echo x > /etc/secretdir/f 2>/dev/null; ",
        "echo 1 > /proc/sys/kernel/domainname 2>/dev/null && echo sys-rw || echo sys-ro; ",
        "touch /etc/ok && echo root-rw"
    ));
    assert!(fs::read_dir("/sys/firmware").unwrap().next().is_some());
    let rt = Runtime::new("masked");
    let out = run_ok(&rt, &b);
    assert_eq!(
        out,
        "secret=[]\nsecretdir=[]\nkeys=0\nfirmware=[]\nreadable\nro-refused\nsys-ro\nroot-rw\n"
    );
    // The files under the masks are untouched.
    assert_eq!(
        fs::read_to_string(b.rootfs().join("etc/secret")).unwrap(),
        "secret-data\n"
    );
    assert!(!b.rootfs().join("etc/secretdir/f").exists());
}

#[test]
fn sysctl() {
    require_root!();
    let host_fwd = fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
    let host_shmmax = fs::read_to_string("/proc/sys/kernel/shmmax").unwrap();
    let mut b = Bundle::new("sysctl");
    let fwd = if host_fwd.trim() == "1" { "0" } else { "1" };
    b.config["linux"]["sysctl"] = json!({
        "net.ipv4.ip_forward": fwd,
        "kernel.shmmax": "123456789",
    });
    b.sh("cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmax");
    let rt = Runtime::new("sysctl");
    assert_eq!(run_ok(&rt, &b), format!("{fwd}\n123456789\n"));
    // The host's values are its own (new net and ipc namespaces).
    assert_eq!(
        fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap(),
        host_fwd
    );
    assert_eq!(
        fs::read_to_string("/proc/sys/kernel/shmmax").unwrap(),
        host_shmmax
    );
}

#[test]
fn dev_contents() {
    require_root!();
    let mut b = Bundle::new("dev");
    b.sh(concat!(
        "for d in null zero full random urandom tty; do stat -c '%n %F %t,%T %a' /dev/$d; done; ",
        "for l in fd stdin stdout stderr ptmx; do echo \"/dev/$l -> $(readlink /dev/$l)\"; done; ",
        "for d in pts shm; do [ -d /dev/$d ] && echo \"/dev/$d dir\"; done; ",
        "[ -c /dev/pts/ptmx ] && echo pts-ptmx; ",
        "head -c 5 /dev/zero | wc -c; echo x > /dev/null && echo null-ok; ",
        "echo x > /dev/full 2>/dev/null || echo full-refused"
    ));
    let rt = Runtime::new("dev");
    let out = run_ok(&rt, &b);
    assert_eq!(
        out,
        concat!(
            "/dev/null character special file 1,3 666\n",
            "/dev/zero character special file 1,5 666\n",
            "/dev/full character special file 1,7 666\n",
            "/dev/random character special file 1,8 666\n",
            "/dev/urandom character special file 1,9 666\n",
            "/dev/tty character special file 5,0 666\n",
            "/dev/fd -> /proc/self/fd\n",
            "/dev/stdin -> /proc/self/fd/0\n",
            "/dev/stdout -> /proc/self/fd/1\n",
            "/dev/stderr -> /proc/self/fd/2\n",
            "/dev/ptmx -> pts/ptmx\n",
            "/dev/pts dir\n",
            "/dev/shm dir\n",
            "pts-ptmx\n",
            "5\n",
            "null-ok\n",
            "full-refused\n",
        )
    );
}

#[test]
fn linux_devices() {
    require_root!();
    let mut b = Bundle::new("devices");
    b.config["linux"]["devices"] = json!([{
        "path": "/dev/it-null", "type": "c", "major": 1, "minor": 3,
        "fileMode": 0o646, "uid": 1000, "gid": 1001
    }]);
    b.config["linux"]["resources"]["devices"] = json!([
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"}
    ]);
    b.set_args(&["sleep", "1000"]);
    let rt = Runtime::new("devices");
    let id = rt.id("");
    rt.create(&id, &b).ok();
    // Outside: the node in the container's /dev.
    let pid = rt.pid(&id);
    let md = fs::metadata(format!("/proc/{pid}/root/dev/it-null")).expect("device node");
    assert!(md.file_type().is_char_device());
    assert_eq!(md.rdev(), libc::makedev(1, 3));
    assert_eq!(md.mode() & 0o7777, 0o646);
    assert_eq!((md.uid(), md.gid()), (1000, 1001));
    rt.delete(&id, true).ok();
    rt.assert_gone(&id);
    // Inside.
    b.sh("stat -c '%F %t,%T %a %u %g' /dev/it-null; echo x > /dev/it-null && echo writable");
    assert_eq!(
        run_ok(&rt, &b),
        "character special file 1,3 646 1000 1001\nwritable\n"
    );
}

#[test]
fn join_namespaces_by_path() {
    require_root!();
    let mut a = Bundle::new("ns-a");
    a.config["hostname"] = json!("ns-owner");
    a.set_args(&["sleep", "1000"]);
    let mut b = Bundle::new("ns-b");
    let rt = Runtime::new("ns-path");
    let ida = rt.id("a");
    rt.create(&ida, &a).ok();
    let pa = rt.pid(&ida);

    b.config.as_object_mut().unwrap().remove("hostname");
    b.config["linux"]["namespaces"] = json!([
        {"type": "pid"},
        {"type": "mount"},
        {"type": "ipc"},
        {"type": "network", "path": format!("/proc/{pa}/ns/net")},
        {"type": "uts", "path": format!("/proc/{pa}/ns/uts")},
    ]);
    b.sh("hostname > /out/seen; readlink /proc/self/ns/net >> /out/seen; readlink /proc/self/ns/uts >> /out/seen; sleep 1000");
    let idb = rt.id("b");
    rt.create(&idb, &b).ok();
    let pb = rt.pid(&idb).to_string();
    let pa = pa.to_string();
    // Outside: joined net and uts; own pid, mnt, ipc.
    for ns in ["net", "uts"] {
        assert_eq!(ns_link(&pb, ns), ns_link(&pa, ns), "{ns} joined");
    }
    for ns in ["pid", "mnt", "ipc"] {
        assert_ne!(ns_link(&pb, ns), ns_link(&pa, ns), "{ns} private");
        assert_ne!(ns_link(&pb, ns), ns_link("self", ns), "{ns} private");
    }
    // Inside.
    rt.start(&idb).ok();
    let seen = wait_for("three lines", || {
        let s = b.read_out("seen");
        (s.lines().count() == 3).then_some(s)
    });
    assert_eq!(
        seen,
        format!(
            "ns-owner\n{}\n{}\n",
            ns_link(&pa, "net"),
            ns_link(&pa, "uts")
        )
    );
    rt.delete(&idb, true).ok();
    rt.delete(&ida, true).ok();
    rt.assert_gone(&idb);
    rt.assert_gone(&ida);
}

#[test]
fn no_pivot() {
    require_root!();
    let mut b = Bundle::new("no-pivot");
    b.write_rootfs_file("marker", "in-rootfs\n");
    b.sh("cat /marker; ls /out >/dev/null && echo out-ok; hostname");
    let rt = Runtime::new("no-pivot");
    let id = rt.id("run");
    let out = rt.run(&id, &b, &["--no-pivot"]);
    out.ok();
    assert_eq!(out.stdout, "in-rootfs\nout-ok\nhusk\n");
    rt.assert_gone(&id);

    // containerd's form: create --no-pivot, then start.
    b.sh("cat /marker > /out/seen");
    let id = rt.id("create");
    rt.create_with(&id, &b, &["--no-pivot"]).ok();
    rt.start(&id).ok();
    assert_eq!(b.wait_out("seen"), "in-rootfs\n");
    rt.wait_status(&id, "stopped");
    rt.delete(&id, false).ok();
    rt.assert_gone(&id);
}
