//! Which cgroup hierarchies are mounted, read once per invocation from /proc/self/mountinfo,
//! and husk's own cgroup in each (from /proc/self/cgroup).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use super::CgroupError;

/// One mounted hierarchy.
#[derive(Debug, Clone)]
pub struct Mount {
    pub mountpoint: PathBuf,
    /// The cgroup the mount shows at its mountpoint (field 4 of mountinfo: `/` on the host).
    pub root: PathBuf,
    /// husk's own cgroup in this hierarchy (from /proc/self/cgroup).
    pub own: PathBuf,
}

impl Mount {
    /// The directory of cgroup `inner` (absolute: from the hierarchy's root; relative: below
    /// husk's own cgroup).
    pub fn dir_for(&self, inner: &Path) -> PathBuf {
        let cg = if inner.is_absolute() {
            inner.to_path_buf()
        } else {
            self.own.join(inner)
        };
        // Inside a container the mount's root is not `/`: strip it to find the directory.
        let rel = cg
            .strip_prefix(&self.root)
            .or_else(|_| cg.strip_prefix("/"))
            .unwrap_or(&cg);
        self.mountpoint.join(rel)
    }
}

#[derive(Debug, Clone, Default)]
pub struct Hierarchies {
    /// v1 controller (or `name=...`) → its mount. Co-mounted controllers share a mount.
    pub v1: BTreeMap<String, Mount>,
    /// The cgroup2 mount (pure v2: /sys/fs/cgroup; hybrid: /sys/fs/cgroup/unified).
    pub v2: Option<Mount>,
}

static HIERARCHIES: OnceLock<Result<Hierarchies, String>> = OnceLock::new();

impl Hierarchies {
    pub fn get() -> Result<&'static Hierarchies, CgroupError> {
        HIERARCHIES
            .get_or_init(detect)
            .as_ref()
            .map_err(|e| CgroupError::Other(e.clone()))
    }
}

/// Controllers husk manages on v1 (runc 1.1's list, plus `name=systemd` which runc joins).
const V1_KNOWN: &[&str] = &[
    "cpuset",
    "cpu",
    "cpuacct",
    "memory",
    "devices",
    "freezer",
    "blkio",
    "pids",
    "hugetlb",
    "net_cls",
    "net_prio",
    "perf_event",
    "rdma",
    "misc",
    "name=systemd",
];

fn detect() -> Result<Hierarchies, String> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| format!("read /proc/self/mountinfo: {e}"))?;
    let own_text = std::fs::read_to_string("/proc/self/cgroup")
        .map_err(|e| format!("read /proc/self/cgroup: {e}"))?;
    // /proc/self/cgroup: `hier-id:controllers:path`; `0::path` is cgroup2.
    let mut own_v1: BTreeMap<String, PathBuf> = BTreeMap::new();
    let mut own_v2 = PathBuf::from("/");
    for line in own_text.lines() {
        let mut it = line.splitn(3, ':');
        let (Some(_), Some(ctrls), Some(path)) = (it.next(), it.next(), it.next()) else {
            continue;
        };
        if ctrls.is_empty() {
            own_v2 = PathBuf::from(path);
        } else {
            for c in ctrls.split(',') {
                own_v1.insert(c.to_string(), PathBuf::from(path));
            }
        }
    }
    let mut h = Hierarchies::default();
    for line in mountinfo.lines() {
        // id parent maj:min root mountpoint opts [optional...] - fstype source superopts
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        let pre: Vec<&str> = pre.split(' ').collect();
        let post: Vec<&str> = post.split(' ').collect();
        if pre.len() < 5 || post.len() < 3 {
            continue;
        }
        let root = PathBuf::from(unescape(pre[3]));
        let mountpoint = PathBuf::from(unescape(pre[4]));
        match post[0] {
            // The first cgroup2 mount wins (a later bind of it is the same hierarchy).
            "cgroup2" if h.v2.is_none() => {
                h.v2 = Some(Mount {
                    mountpoint,
                    root,
                    own: own_v2.clone(),
                });
            }
            "cgroup" => {
                for opt in post[2].split(',') {
                    if !V1_KNOWN.contains(&opt) || h.v1.contains_key(opt) {
                        continue;
                    }
                    let own = own_v1
                        .get(opt)
                        .cloned()
                        .unwrap_or_else(|| PathBuf::from("/"));
                    h.v1.insert(
                        opt.to_string(),
                        Mount {
                            mountpoint: mountpoint.clone(),
                            root: root.clone(),
                            own,
                        },
                    );
                }
            }
            _ => {}
        }
    }
    if h.v1.is_empty() && h.v2.is_none() {
        return Err(
            "no cgroup hierarchy is mounted (neither cgroup nor cgroup2 in /proc/self/mountinfo)"
                .into(),
        );
    }
    Ok(h)
}

/// mountinfo escapes space, tab, newline and backslash as octal.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() {
            let oct = &s[i + 1..(i + 4).min(s.len())];
            if let Ok(v) = u8::from_str_radix(oct, 8) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
