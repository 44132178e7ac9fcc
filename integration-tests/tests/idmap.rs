//! Idmapped bind mounts (`mounts[].uidMappings`/`gidMappings`, options `idmap`/`ridmap`,
//! runtime-spec 1.2) and `linux.mountLabel`, checked from inside the container and on the host.
//!
//! runc 1.1.5 predates idmapped mounts (runc 1.2 has them) and silently ignores their fields,
//! so those tests are skipped against runc; the mountLabel test runs both runtimes itself.

use integration_tests::*;
use serde_json::json;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Container ids 0..65535 are host ids 100000..165535.
const BASE: u32 = 100_000;

/// A bundle with a user namespace (container 0 -> host 100000, 65536 ids), its rootfs owned
/// by the mapped root.
fn userns_bundle(name: &str) -> Bundle {
    let mut b = Bundle::new(name);
    let map = json!([{"containerID": 0, "hostID": BASE, "size": 65536}]);
    b.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "user"}));
    b.config["linux"]["uidMappings"] = map.clone();
    b.config["linux"]["gidMappings"] = map;
    chown_r(&b.rootfs(), BASE, BASE);
    b
}

fn chown_r(p: &Path, uid: u32, gid: u32) {
    let st = Command::new("chown")
        .args(["-R", &format!("{uid}:{gid}")])
        .arg(p)
        .status()
        .unwrap();
    assert!(st.success());
}

/// A file (or directory, if `name` ends in '/') under `dir`, owned by uid:gid.
fn owned(dir: &Path, name: &str, uid: u32, gid: u32) -> PathBuf {
    let p = dir.join(name.trim_end_matches('/'));
    if name.ends_with('/') {
        fs::create_dir_all(&p).unwrap();
    } else {
        fs::write(&p, name).unwrap();
    }
    std::os::unix::fs::chown(&p, Some(uid), Some(gid)).unwrap();
    p
}

/// tmpfs supports idmapped mounts since Linux 6.3.
fn kernel_at_least(major: u32, minor: u32) -> bool {
    let r = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut it = r
        .trim()
        .split(['.', '-'])
        .map(|p| p.parse::<u32>().unwrap_or(0));
    (it.next().unwrap_or(0), it.next().unwrap_or(0)) >= (major, minor)
}

fn skip_on_runc() -> bool {
    if is_runc() {
        eprintln!("SKIP: runc 1.1.5 has no idmapped mounts (runc 1.2 does)");
        return true;
    }
    false
}

/// Unmounts a test's own host mount, before the bundle's leftover check.
struct HostMount(PathBuf);

impl Drop for HostMount {
    fn drop(&mut self) {
        umount(&self.0);
    }
}

fn ids(p: &Path) -> (u32, u32) {
    let m = fs::metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    (m.uid(), m.gid())
}

#[test]
fn per_mount_mappings_map_owners_both_ways() {
    require_root!();
    if skip_on_runc() {
        return;
    }
    let rt = Runtime::new("im-own");
    let mut b = userns_bundle("im-own");
    let data = owned(b.path(), "data/", 1000, 1000);
    owned(&data, "a", 1000, 1000);
    owned(&data, "b", 2000, 2001);
    owned(&data, "c", 3000, 3000);
    // On disk 1000 <-> host 100000 (container 0), 2000 <-> 100005 (container 5),
    // gid 2001 <-> 100007 (container 7); nothing else is mapped.
    b.add_mount(json!({
        "destination": "/data", "type": "bind", "source": data, "options": ["bind", "idmap"],
        "uidMappings": [{"containerID": 1000, "hostID": BASE, "size": 1},
                        {"containerID": 2000, "hostID": BASE + 5, "size": 1}],
        "gidMappings": [{"containerID": 1000, "hostID": BASE, "size": 1},
                        {"containerID": 2001, "hostID": BASE + 7, "size": 1}]
    }));
    // A single file can be idmapped too.
    b.add_mount(json!({
        "destination": "/one", "type": "bind", "source": data.join("b"), "options": ["bind", "idmap"],
        "uidMappings": [{"containerID": 2000, "hostID": BASE + 9, "size": 1}],
        "gidMappings": [{"containerID": 2001, "hostID": BASE + 9, "size": 1}]
    }));
    b.sh(
        "stat -c '%n %u:%g' /data /data/a /data/b /data/c /one > /out/owners; \
         touch /data/new && echo made > /out/touch; \
         grep ' /data ' /proc/self/mountinfo > /out/mountinfo",
    );
    rt.run_once(&b).ok();
    assert_eq!(
        b.read_out("owners"),
        "/data 0:0\n/data/a 0:0\n/data/b 5:7\n/data/c 65534:65534\n/one 9:9\n",
        "owners seen through the idmapped mount"
    );
    assert_eq!(b.read_out("touch"), "made\n");
    // The container's root (host 100000) writes as on-disk 1000 through the mount.
    assert_eq!(ids(&data.join("new")), (1000, 1000));
    // Nothing was chowned on the host.
    assert_eq!(ids(&data.join("a")), (1000, 1000));
    assert_eq!(ids(&data.join("b")), (2000, 2001));
    let mi = b.read_out("mountinfo");
    assert!(mi.contains("idmapped"), "mountinfo: {mi}");
}

#[test]
fn idmap_without_mappings_uses_the_container_user_namespace() {
    require_root!();
    if skip_on_runc() {
        return;
    }
    let rt = Runtime::new("im-ctr");
    let mut b = userns_bundle("im-ctr");
    // Owned by the host's root, as a volume is before Kubernetes user namespaces.
    let data = owned(b.path(), "vol/", 0, 0);
    owned(&data, "f", 0, 0);
    owned(&data, "g", 1000, 1000);
    b.add_mount(json!({
        "destination": "/vol", "type": "bind", "source": data, "options": ["rbind", "idmap"]
    }));
    // Per-mount flags apply to an idmapped mount as to any bind.
    b.add_mount(json!({
        "destination": "/vol-ro", "type": "bind", "source": data,
        "options": ["rbind", "ridmap", "ro", "nosuid"]
    }));
    // The same directory without idmap: the host's ids are not mapped in the container.
    b.add_mount(json!({
        "destination": "/plain", "type": "bind", "source": data, "options": ["rbind"]
    }));
    b.sh(
        "stat -c '%n %u:%g' /vol/f /vol/g /plain/f /plain/g > /out/owners; \
         touch /vol/new && echo made > /out/touch; \
         stat -c '%u' /vol-ro/f > /out/ro; touch /vol-ro/x 2>>/out/ro || echo refused >> /out/ro; \
         grep ' /vol-ro ' /proc/self/mountinfo > /out/mountinfo",
    );
    rt.run_once(&b).ok();
    let ro = b.read_out("ro");
    assert!(ro.starts_with("0\n") && ro.ends_with("refused\n"), "{ro}");
    let mi = b.read_out("mountinfo");
    assert!(mi.contains(" ro,nosuid") && mi.contains("idmapped"), "{mi}");
    assert_eq!(
        b.read_out("owners"),
        "/vol/f 0:0\n/vol/g 1000:1000\n/plain/f 65534:65534\n/plain/g 65534:65534\n"
    );
    assert_eq!(b.read_out("touch"), "made\n");
    assert_eq!(ids(&data.join("new")), (0, 0));
}

/// A user namespace joined by path: `idmap` without mappings uses that namespace itself.
#[test]
fn idmap_without_mappings_in_a_joined_user_namespace() {
    require_root!();
    if skip_on_runc() {
        return;
    }
    let rt = Runtime::new("im-join");
    let other = 200_000;
    let mut a = Bundle::new("im-join-a");
    let map = json!([{"containerID": 0, "hostID": other, "size": 65536}]);
    a.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "user"}));
    a.config["linux"]["uidMappings"] = map.clone();
    a.config["linux"]["gidMappings"] = map;
    chown_r(&a.rootfs(), other, other);
    a.sh("exec sleep 1000");
    let ida = rt.id("a");
    let pida = rt.create_and_start(&ida, &a);

    let mut b = Bundle::new("im-join-b");
    chown_r(&b.rootfs(), other, other);
    let ns = b.config["linux"]["namespaces"].as_array_mut().unwrap();
    ns.retain(|n| n["type"] != "pid");
    ns.push(json!({"type": "user", "path": format!("/proc/{pida}/ns/user")}));
    // husk wants the pid namespace joined with a joined user namespace (see userns.rs).
    ns.push(json!({"type": "pid", "path": format!("/proc/{pida}/ns/pid")}));
    let data = owned(b.path(), "vol/", 0, 0);
    owned(&data, "f", 7, 7);
    b.add_mount(json!({
        "destination": "/vol", "type": "bind", "source": data, "options": ["bind", "idmap"]
    }));
    b.sh("stat -c '%u:%g' /vol/f > /out/owners; touch /vol/new && echo made > /out/touch");
    rt.run_once(&b).ok();
    assert_eq!(b.read_out("owners"), "7:7\n");
    assert_eq!(b.read_out("touch"), "made\n");
    assert_eq!(ids(&data.join("new")), (0, 0));
    rt.kill(&ida, Some("KILL")).ok();
    rt.wait_status(&ida, "stopped");
    rt.delete(&ida, false).ok();
}

#[test]
fn features_report_idmap() {
    require_root!();
    if skip_on_runc() {
        return;
    }
    let rt = Runtime::new("im-feat");
    let f = rt.raw(&["features"]).ok().json();
    assert_eq!(f["linux"]["mountExtensions"]["idmap"]["enabled"], true);
    let opts = f["mountOptions"].as_array().unwrap();
    for o in ["idmap", "ridmap"] {
        assert!(opts.iter().any(|v| v == o), "{o} in {opts:?}");
    }
}

#[test]
fn idmap_is_not_recursive_and_ridmap_is() {
    require_root!();
    if skip_on_runc() {
        return;
    }
    if !kernel_at_least(6, 3) {
        eprintln!("SKIP: the submount is a tmpfs, idmappable since Linux 6.3");
        return;
    }
    let rt = Runtime::new("im-rec");
    let mut b = userns_bundle("im-rec");
    let data = owned(b.path(), "tree/", 1000, 1000);
    owned(&data, "top", 1000, 1000);
    let sub = data.join("sub");
    mount_tmpfs(&sub);
    let _unmount = HostMount(sub.clone());
    owned(&sub, "inner", 1000, 1000);
    let map = json!([{"containerID": 1000, "hostID": BASE, "size": 1}]);
    for (dest, opts) in [
        ("/idmap", json!(["rbind", "idmap"])),
        ("/ridmap", json!(["rbind", "ridmap"])),
        ("/bind-ridmap", json!(["bind", "ridmap"])),
    ] {
        b.add_mount(json!({
            "destination": dest, "type": "bind", "source": data, "options": opts,
            "uidMappings": map, "gidMappings": map
        }));
    }
    b.sh(
        "for d in /idmap /ridmap; do stat -c '%n %u' $d/top $d/sub/inner; done > /out/owners; \
         ls -A /bind-ridmap/sub > /out/nonrec; echo end >> /out/nonrec",
    );
    rt.run_once(&b).ok();
    // `idmap` maps the top mount only: the submount (rbind) keeps the host's ids, which the
    // container's user namespace does not map. `ridmap` maps every mount of the tree.
    assert_eq!(
        b.read_out("owners"),
        "/idmap/top 0\n/idmap/sub/inner 65534\n/ridmap/top 0\n/ridmap/sub/inner 0\n"
    );
    // A plain `bind` takes no submounts, ridmap or not: the tmpfs is not there.
    assert_eq!(b.read_out("nonrec"), "end\n");
}

#[test]
fn explicit_mappings_work_without_a_user_namespace() {
    require_root!();
    if skip_on_runc() {
        return;
    }
    // runc 1.2 allows per-mount mappings in a container without a user namespace: the ids
    // are then seen as the host's.
    let rt = Runtime::new("im-nous");
    let mut b = Bundle::new("im-nous");
    let data = owned(b.path(), "data/", 1000, 1000);
    owned(&data, "a", 1000, 1000);
    let map = json!([{"containerID": 1000, "hostID": 4000, "size": 10}]);
    b.add_mount(json!({
        "destination": "/data", "type": "bind", "source": data, "options": ["bind", "idmap"],
        "uidMappings": map, "gidMappings": map
    }));
    b.sh("stat -c '%u:%g' /data/a > /out/owners; \
         touch /data/byroot 2>/out/err || echo refused > /out/touch");
    rt.run_once(&b).ok();
    assert_eq!(b.read_out("owners"), "4000:4000\n");
    // Root (host 0) has no on-disk id through this mount: the kernel refuses the create.
    assert_eq!(b.read_out("touch"), "refused\n", "{}", b.read_out("err"));
    assert!(!data.join("byroot").exists());
}

/// `linux.mountLabel` on a host without SELinux: husk does what runc 1.1.5 does with the
/// same bundle. Both pass `context=` to the filesystems that take it whether or not SELinux
/// is on, so a config with a tmpfs fails (EINVAL), and one whose mounts take no label (binds,
/// proc, sysfs, mqueue) runs.
#[test]
fn mount_label_behaves_as_runc() {
    require_root!();
    if Path::new("/sys/fs/selinux/enforce").exists() {
        eprintln!("SKIP: this host has SELinux; the test is for hosts without it");
        return;
    }
    let runc = Path::new("/usr/sbin/runc");
    if !runc.exists() {
        eprintln!("SKIP: no runc to compare with");
        return;
    }
    let rt = Runtime::new("im-label");
    let label = "system_u:object_r:container_file_t:s0:c1,c2";

    // 1. The default config: /dev is a tmpfs.
    let mut full = Bundle::new("im-label-full");
    full.config["linux"]["mountLabel"] = json!(label);
    full.sh("echo started > /out/ran");
    // 2. Only mounts that take no label; /dev stays the rootfs' own directory.
    let mut bare = Bundle::new("im-label-bare");
    bare.config["linux"]["mountLabel"] = json!(label);
    bare.config["mounts"] = json!([
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs",
         "options": ["nosuid", "noexec", "nodev", "ro"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/out", "type": "bind",
         "source": bare.out().display().to_string(), "options": ["rbind", "rw"]}
    ]);
    bare.config["linux"]["maskedPaths"] = json!(["/proc/kcore"]);
    bare.sh("grep -c context= /proc/self/mountinfo > /out/labelled; echo started > /out/ran");

    let runc_root = rt.scratch().join("runc-root");
    let io = rt.scratch().join("io");
    for (b, runc_ok) in [(&full, false), (&bare, true)] {
        b.save();
        let id = unique_id(&format!("im-label-runc-{}", unique_suffix(b)));
        let args: Vec<String> = [
            "--root",
            &runc_root.display().to_string(),
            "run",
            "--bundle",
            &b.path_str(),
            &id,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let theirs = run_command(runc, &args, &io, None);
        let del: Vec<String> = [
            "--root",
            &runc_root.display().to_string(),
            "delete",
            "-f",
            &id,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let _ = try_run_command(runc, &del, &io, None);
        assert_eq!(theirs.success(), runc_ok, "runc: {theirs}");
        let ran_runc = b.read_out("ran");
        let _ = fs::remove_file(b.out().join("ran"));

        let ours = rt.run_once(b);
        assert_eq!(
            ours.success(),
            theirs.success(),
            "husk and runc differ: husk {ours}\nrunc {theirs}"
        );
        assert_eq!(b.read_out("ran"), ran_runc);
        if !ours.success() && !is_runc() {
            ours.stderr_has("linux.mountLabel");
        }
    }
    assert_eq!(bare.read_out("labelled"), "0\n");
}

fn unique_suffix(b: &Bundle) -> String {
    b.path()
        .file_name()
        .map(|n| {
            n.to_string_lossy()
                .rsplit('-')
                .next()
                .unwrap_or("")
                .to_string()
        })
        .unwrap_or_default()
}

/// The idmapped tree is made in the host's mount namespace, where its source may be a shared
/// mount: it must join the container as a slave (like the container's copy of every host
/// mount), so a mount made below it inside the container never appears on the host.
#[test]
fn idmapped_tree_does_not_propagate_to_the_host() {
    require_root!();
    if skip_on_runc() {
        return;
    }
    let rt = Runtime::new("im-prop");
    let mut b = Bundle::new("im-prop");
    let data = owned(b.path(), "shared/", 0, 0);
    fs::create_dir(data.join("sub")).unwrap();
    let sh = |args: &[&str]| {
        let st = Command::new("mount").args(args).status().unwrap();
        assert!(st.success(), "mount {args:?}");
    };
    let d = data.display().to_string();
    sh(&["--bind", &d, &d]);
    let _unmount = HostMount(data.clone());
    sh(&["--make-shared", &d]);
    for set in ["bounding", "effective", "permitted"] {
        b.config["process"]["capabilities"][set]
            .as_array_mut()
            .unwrap()
            .push(json!("CAP_SYS_ADMIN"));
    }
    let map = json!([{"containerID": 0, "hostID": 5000, "size": 10}]);
    b.add_mount(json!({
        "destination": "/data", "type": "bind", "source": data, "options": ["rbind", "idmap"],
        "uidMappings": map, "gidMappings": map
    }));
    b.sh(
        "mount -t tmpfs im-prop-leak /data/sub && grep ' /data ' /proc/self/mountinfo > /out/mi; \
         grep -c im-prop-leak /proc/self/mountinfo > /out/inside; \
         while [ ! -e /out/checked ]; do sleep 0.1; done",
    );
    let id = rt.id("c");
    rt.create_and_start(&id, &b);
    assert_eq!(b.wait_out("inside"), "1\n");
    let mi = b.read_out("mi");
    assert!(mi.contains("master:"), "a slave of the host's mount: {mi}");
    let host = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let leaked = host.contains("im-prop-leak");
    fs::write(b.out().join("checked"), "").unwrap();
    rt.wait_status(&id, "stopped");
    rt.delete(&id, false).ok();
    assert!(!leaked, "the container's mount reached the host");
}
