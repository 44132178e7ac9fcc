//! User and time namespaces: the parts the host side does for the init.
//!
//! - `linux.uidMappings` / `linux.gidMappings` are validated before anything is created and
//!   written by the host into `/proc/<init>/{uid,gid}_map` between the clone and `Go` (the
//!   init cannot write its own maps with the rights it needs). As root they are written
//!   directly; otherwise through `newuidmap`/`newgidmap` (shadow-utils, setuid), falling back
//!   to a direct write of a single self-mapping with `setgroups` denied, as the kernel demands
//!   for an unprivileged writer.
//! - `linux.timeOffsets`: offsets can only be set while no process is in the new time
//!   namespace (`/proc/<pid>/timens_offsets` refers to a process's *children's* time
//!   namespace, and is frozen once a process enters it). A clone3(CLONE_NEWTIME) child is
//!   already in it, so the host instead unshares CLONE_NEWTIME itself (its own clock is
//!   untouched), writes its own timens_offsets, clones the init without CLONE_NEWTIME (the
//!   child is born into the prepared namespace), then returns its children's namespace to
//!   its own with setns.

use std::fs::File;
use std::io::Write;
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::process::Command;

use nix::sched::CloneFlags;
use oci_spec::runtime::{LinuxIdMapping, LinuxNamespaceType, Spec};

#[derive(Debug, thiserror::Error)]
pub enum UsernsError {
    #[error("{field}: {msg}")]
    Config { field: String, msg: String },
    #[error("write {path}: {msg}")]
    Write { path: PathBuf, msg: String },
    #[error("linux.timeOffsets: {step}: {source}")]
    Time {
        step: &'static str,
        source: nix::errno::Errno,
    },
}

fn config(field: impl Into<String>, msg: impl Into<String>) -> UsernsError {
    UsernsError::Config {
        field: field.into(),
        msg: msg.into(),
    }
}

/// The kernel's limit on lines in one uid_map/gid_map (since Linux 4.15).
const MAX_EXTENTS: usize = 340;

/// The validated id maps of a container with a new user namespace.
#[derive(Clone, Debug, Default)]
pub struct Maps {
    pub uid: Vec<LinuxIdMapping>,
    pub gid: Vec<LinuxIdMapping>,
}

impl Maps {
    /// Validate the mappings against the namespaces. `None` when the container gets no new
    /// user namespace (a joined one already has its maps).
    pub fn from_spec(spec: &Spec) -> Result<Option<Maps>, UsernsError> {
        let linux = spec.linux().as_ref();
        let uid = linux
            .and_then(|l| l.uid_mappings().clone())
            .unwrap_or_default();
        let gid = linux
            .and_then(|l| l.gid_mappings().clone())
            .unwrap_or_default();
        let userns = linux
            .and_then(|l| l.namespaces().as_ref())
            .and_then(|ns| ns.iter().find(|n| n.typ() == LinuxNamespaceType::User));
        match userns {
            None => {
                if !uid.is_empty() || !gid.is_empty() {
                    let f = if uid.is_empty() {
                        "linux.gidMappings"
                    } else {
                        "linux.uidMappings"
                    };
                    return Err(config(
                        f,
                        "set, but there is no user namespace in linux.namespaces",
                    ));
                }
                Ok(None)
            }
            Some(n) if n.path().is_some() => {
                // The joined namespace's maps are fixed already; runc 1.1 ignores any given.
                if !uid.is_empty() || !gid.is_empty() {
                    crate::logging::debug(
                        "linux.uidMappings/gidMappings are ignored: the user namespace is joined by path",
                    );
                }
                Ok(None)
            }
            Some(_) => {
                check("linux.uidMappings", &uid)?;
                check("linux.gidMappings", &gid)?;
                Ok(Some(Maps { uid, gid }))
            }
        }
    }

    /// Write the maps of process `pid` (host side, between clone and Go).
    ///
    /// As root both maps are written directly. As an unprivileged user (rootless), as runc:
    /// a map that is only the caller's own id is written directly (for gid_map the kernel
    /// then demands `setgroups` "deny" first, CVE-2014-8989); anything else needs the setuid
    /// helpers `newuidmap`/`newgidmap` (package uidmap), which allow the ranges /etc/subuid
    /// and /etc/subgid grant the user. A refused or impossible map is an error naming the
    /// field, with the helper's own explanation.
    pub fn write(&self, pid: i32) -> Result<(), UsernsError> {
        if nix::unistd::geteuid().is_root() {
            // As root, setgroups stays allowed: the container may set its supplementary
            // groups (runc writes "deny" only for rootless containers).
            write_map(pid, "linux.uidMappings", "uid_map", &self.uid)?;
            write_map(pid, "linux.gidMappings", "gid_map", &self.gid)?;
            return Ok(());
        }
        let euid = nix::unistd::geteuid().as_raw();
        let egid = nix::unistd::getegid().as_raw();
        if is_self_map(&self.uid, euid) {
            write_map(pid, "linux.uidMappings", "uid_map", &self.uid)?;
        } else {
            helper("newuidmap", "linux.uidMappings", pid, &self.uid)?;
        }
        if is_self_map(&self.gid, egid) {
            write_file(pid, "setgroups", "deny").map_err(|e| {
                config(
                    "linux.gidMappings",
                    format!("deny setgroups before gid_map: {e}"),
                )
            })?;
            write_map(pid, "linux.gidMappings", "gid_map", &self.gid)?;
        } else {
            helper("newgidmap", "linux.gidMappings", pid, &self.gid)?;
        }
        Ok(())
    }
}

/// One range mapping exactly the caller's own id: what an unprivileged process may write
/// itself.
fn is_self_map(maps: &[LinuxIdMapping], own: u32) -> bool {
    matches!(maps, [m] if m.size() == 1 && m.host_id() == own)
}

/// Whether this process may call setgroups(2): not in a user namespace whose `setgroups`
/// file says "deny" (a rootless container mapped without newgidmap).
pub fn setgroups_allowed() -> bool {
    std::fs::read_to_string("/proc/self/setgroups")
        .map(|s| s.trim() != "deny")
        .unwrap_or(true)
}

/// What an unprivileged caller (rootless, euid != 0) cannot do, checked before anything is
/// created, with runc's rules (libcontainer/configs/validate/rootless.go): the container
/// needs a user namespace with uid and gid mappings, and `uid=`/`gid=` mount options must
/// name ids mapped in it.
pub fn check_rootless(spec: &Spec) -> Result<(), UsernsError> {
    if nix::unistd::geteuid().is_root() {
        return Ok(());
    }
    let linux = spec.linux().as_ref();
    let userns = linux
        .and_then(|l| l.namespaces().as_ref())
        .and_then(|ns| ns.iter().find(|n| n.typ() == LinuxNamespaceType::User));
    let Some(userns) = userns else {
        return Err(config(
            "linux.namespaces",
            format!(
                "rootless container requires user namespaces: husk runs as uid {} and cannot \
                 create the other namespaces or mounts without one (add {{\"type\": \"user\"}} \
                 and linux.uidMappings/gidMappings, see `husk spec --rootless`)",
                nix::unistd::geteuid()
            ),
        ));
    };
    if userns.path().is_some() {
        // A joined namespace has its maps already (rootless Podman's pause process).
        return Ok(());
    }
    let uid = linux
        .and_then(|l| l.uid_mappings().clone())
        .unwrap_or_default();
    let gid = linux
        .and_then(|l| l.gid_mappings().clone())
        .unwrap_or_default();
    let mapped = |maps: &[LinuxIdMapping], id: u64| {
        maps.iter().any(|m| {
            id >= m.container_id() as u64 && id < m.container_id() as u64 + m.size() as u64
        })
    };
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        for opt in m.options().iter().flatten() {
            for (key, maps, what) in [("uid=", &uid, "uidMappings"), ("gid=", &gid, "gidMappings")]
            {
                let Some(id) = opt.strip_prefix(key).and_then(|v| v.parse::<u64>().ok()) else {
                    continue;
                };
                if !mapped(maps, id) {
                    return Err(config(
                        format!("mounts[{i}].options"),
                        format!(
                            "{opt}: id {id} is not mapped in linux.{what}; a rootless \
                             container cannot use unmapped ids in mount options"
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}

pub(crate) fn check(field: &str, maps: &[LinuxIdMapping]) -> Result<(), UsernsError> {
    if maps.is_empty() {
        return Err(config(
            field,
            "empty: a new user namespace needs at least one mapping",
        ));
    }
    if maps.len() > MAX_EXTENTS {
        return Err(config(
            field,
            format!(
                "{} ranges; the kernel allows at most {MAX_EXTENTS}",
                maps.len()
            ),
        ));
    }
    let end = |start: u32, size: u32| start as u64 + size as u64;
    for (i, m) in maps.iter().enumerate() {
        let f = format!("{field}[{i}]");
        if m.size() == 0 {
            return Err(config(f, "size is 0"));
        }
        // The last id, 4294967295, is (uid_t)-1: never mappable.
        if end(m.container_id(), m.size()) > u32::MAX as u64 {
            return Err(config(
                &f,
                format!(
                    "containerID {} + size {} exceeds the 32-bit id range",
                    m.container_id(),
                    m.size()
                ),
            ));
        }
        if end(m.host_id(), m.size()) > u32::MAX as u64 {
            return Err(config(
                &f,
                format!(
                    "hostID {} + size {} exceeds the 32-bit id range",
                    m.host_id(),
                    m.size()
                ),
            ));
        }
        for (j, o) in maps.iter().enumerate().take(i) {
            let c = ranges_overlap(m.container_id(), m.size(), o.container_id(), o.size());
            let h = ranges_overlap(m.host_id(), m.size(), o.host_id(), o.size());
            if c || h {
                return Err(config(
                    &f,
                    format!(
                        "{} range overlaps {field}[{j}]",
                        if c { "containerID" } else { "hostID" }
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn ranges_overlap(a: u32, a_len: u32, b: u32, b_len: u32) -> bool {
    let (a, b) = (a as u64, b as u64);
    a < b + b_len as u64 && b < a + a_len as u64
}

fn format_map(maps: &[LinuxIdMapping]) -> String {
    maps.iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect()
}

fn write_file(pid: i32, name: &str, data: &str) -> Result<(), UsernsError> {
    let path = PathBuf::from(format!("/proc/{pid}/{name}"));
    // One write(2): the kernel accepts a map only in a single write.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .and_then(|mut f| f.write_all(data.as_bytes()))
        .map_err(|e| UsernsError::Write {
            path,
            msg: e.to_string(),
        })
}

fn write_map(
    pid: i32,
    field: &str,
    name: &str,
    maps: &[LinuxIdMapping],
) -> Result<(), UsernsError> {
    write_file(pid, name, &format_map(maps)).map_err(|e| config(field, e.to_string()))
}

/// Run newuidmap/newgidmap for `pid`; its refusal is an error naming `field`.
fn helper(prog: &str, field: &str, pid: i32, maps: &[LinuxIdMapping]) -> Result<(), UsernsError> {
    let mut cmd = Command::new(prog);
    cmd.arg(pid.to_string());
    for m in maps {
        cmd.args([
            m.container_id().to_string(),
            m.host_id().to_string(),
            m.size().to_string(),
        ]);
    }
    cmd.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null());
    let out = cmd.output().map_err(|e| {
        config(
            field,
            if e.kind() == std::io::ErrorKind::NotFound {
                format!(
                    "{prog} not found: an unprivileged user can map only its own id without \
                     it (install uidmap / shadow-utils)"
                )
            } else {
                format!("run {prog}: {e}")
            },
        )
    })?;
    if !out.status.success() {
        let why = String::from_utf8_lossy(&out.stderr)
            .trim()
            .replace('\n', "; ");
        return Err(config(
            field,
            format!(
                "{prog} refused the mapping ({}), is it within the user's ranges in /etc/sub{}id? \
                 {why}",
                format_map(maps).trim().replace('\n', ", "),
                if prog == "newuidmap" { "u" } else { "g" }
            ),
        ));
    }
    Ok(())
}

/// The init, right after Go, in a new or joined user namespace: become root of it, so that
/// files it creates (mount targets, the cwd) belong to a mapped id (runc's nsexec does the
/// same). Without a mapping for 0 this fails with EINVAL, which names the cause.
pub fn become_root() -> Result<(), UsernsError> {
    let err = |step: &'static str| {
        move |e: nix::errno::Errno| {
            config(
                "linux.uidMappings",
                format!("{step} in the user namespace: {e} (is id 0 mapped?)"),
            )
        }
    };
    let zero_g = nix::unistd::Gid::from_raw(0);
    let zero_u = nix::unistd::Uid::from_raw(0);
    nix::unistd::setresgid(zero_g, zero_g, zero_g).map_err(err("setresgid(0)"))?;
    nix::unistd::setresuid(zero_u, zero_u, zero_u).map_err(err("setresuid(0)"))?;
    Ok(())
}

/// The offsets to write into `timens_offsets`, when the container gets a new time namespace.
pub fn time_offsets(spec: &Spec) -> Result<Option<String>, UsernsError> {
    let linux = spec.linux().as_ref();
    let new_time = linux
        .and_then(|l| l.namespaces().as_ref())
        .into_iter()
        .flatten()
        .any(|n| n.typ() == LinuxNamespaceType::Time && n.path().is_none());
    let offsets = linux.and_then(|l| l.time_offsets().as_ref());
    if !new_time {
        if offsets.is_some_and(|o| !o.is_empty()) {
            return Err(config(
                "linux.timeOffsets",
                "set, but there is no new time namespace in linux.namespaces",
            ));
        }
        return Ok(None);
    }
    let mut text = String::new();
    let mut clocks: Vec<_> = offsets.into_iter().flatten().collect();
    clocks.sort_by(|a, b| a.0.cmp(b.0));
    for (clock, off) in clocks {
        if clock != "monotonic" && clock != "boottime" {
            return Err(config(
                format!("linux.timeOffsets.{clock}"),
                "only \"monotonic\" and \"boottime\" clocks have offsets",
            ));
        }
        let ns = off.nanosecs().unwrap_or(0);
        if ns >= 1_000_000_000 {
            return Err(config(
                format!("linux.timeOffsets.{clock}.nanosecs"),
                format!("{ns} is not below 1000000000"),
            ));
        }
        text.push_str(&format!("{clock} {} {ns}\n", off.secs().unwrap_or(0)));
    }
    Ok(Some(text))
}

/// Host side, right before the clone: make the children's time namespace a new one with
/// these offsets. Returns a handle on our own time namespace for [`restore_time_ns`].
pub fn prepare_time_ns(offsets: &str) -> Result<File, UsernsError> {
    let own = File::open("/proc/self/ns/time").map_err(|e| UsernsError::Write {
        path: "/proc/self/ns/time".into(),
        msg: e.to_string(),
    })?;
    nix::sched::unshare(CloneFlags::from_bits_retain(libc::CLONE_NEWTIME)).map_err(|source| {
        UsernsError::Time {
            step: "unshare(CLONE_NEWTIME)",
            source,
        }
    })?;
    if !offsets.is_empty() {
        let path = PathBuf::from("/proc/self/timens_offsets");
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .and_then(|mut f| f.write_all(offsets.as_bytes()))
            .map_err(|e| UsernsError::Write {
                path,
                msg: e.to_string(),
            })?;
    }
    Ok(own)
}

/// Host side, right after the clone: our later children (hooks) use our own clocks again.
pub fn restore_time_ns(own: &File) -> Result<(), UsernsError> {
    nix::sched::setns(
        own.as_fd(),
        CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
    )
    .map_err(|source| UsernsError::Time {
        step: "setns back to the runtime's time namespace",
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(linux: serde_json::Value) -> Spec {
        let mut v: serde_json::Value =
            serde_json::from_str(include_str!("../spec-fixtures/good/minimal.json")).unwrap();
        for (k, val) in linux.as_object().unwrap() {
            v["linux"][k] = val.clone();
        }
        serde_json::from_value(v).unwrap()
    }

    fn err(linux: serde_json::Value) -> String {
        Maps::from_spec(&spec(linux)).err().unwrap().to_string()
    }

    #[test]
    fn mappings_are_validated() {
        let ns = serde_json::json!([{"type": "user"}, {"type": "mount"}]);
        let ok = Maps::from_spec(&spec(serde_json::json!({"namespaces": ns,
            "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 1000},
                            {"containerID": 1000, "hostID": 1000, "size": 1}],
            "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}]})))
        .unwrap()
        .unwrap();
        assert_eq!(format_map(&ok.uid), "0 100000 1000\n1000 1000 1\n");

        let e = err(serde_json::json!({"namespaces": ns,
            "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 1000},
                            {"containerID": 999, "hostID": 5000, "size": 10}],
            "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 1}]}));
        assert!(
            e.contains("linux.uidMappings[1]") && e.contains("overlaps linux.uidMappings[0]"),
            "{e}"
        );
        let e = err(serde_json::json!({"namespaces": ns,
            "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 1}],
            "gidMappings": [{"containerID": 0, "hostID": 1, "size": 10},
                            {"containerID": 10, "hostID": 5, "size": 1}]}));
        assert!(
            e.contains("linux.gidMappings[1]: hostID range overlaps"),
            "{e}"
        );
        let e = err(serde_json::json!({"namespaces": ns,
            "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 0}],
            "gidMappings": [{"containerID": 0, "hostID": 1, "size": 1}]}));
        assert!(e.contains("linux.uidMappings[0]: size is 0"), "{e}");
        let e = err(serde_json::json!({"namespaces": ns,
            "uidMappings": [{"containerID": 0, "hostID": 4294967000u32, "size": 1000}],
            "gidMappings": [{"containerID": 0, "hostID": 1, "size": 1}]}));
        assert!(e.contains("linux.uidMappings[0]: hostID"), "{e}");
        let e = err(serde_json::json!({"namespaces": ns,
            "gidMappings": [{"containerID": 0, "hostID": 1, "size": 1}]}));
        assert!(e.contains("linux.uidMappings: empty"), "{e}");
        let e = err(serde_json::json!({"namespaces": [{"type": "mount"}],
            "uidMappings": [{"containerID": 0, "hostID": 1, "size": 1}]}));
        assert!(
            e.contains("linux.uidMappings: set, but there is no user namespace"),
            "{e}"
        );
    }

    #[test]
    fn time_offsets_text() {
        let s = spec(serde_json::json!({"namespaces": [{"type": "time"}],
            "timeOffsets": {"monotonic": {"secs": 10}, "boottime": {"secs": -5, "nanosecs": 7}}}));
        assert_eq!(
            time_offsets(&s).unwrap().unwrap(),
            "boottime -5 7\nmonotonic 10 0\n"
        );
        let s = spec(serde_json::json!({"timeOffsets": {"monotonic": {"secs": 10}}}));
        assert!(time_offsets(&s)
            .err()
            .unwrap()
            .to_string()
            .contains("linux.timeOffsets"));
        let s = spec(serde_json::json!({"namespaces": [{"type": "time"}],
            "timeOffsets": {"realtime": {"secs": 10}}}));
        assert!(time_offsets(&s)
            .err()
            .unwrap()
            .to_string()
            .contains("linux.timeOffsets.realtime"));
    }
}
