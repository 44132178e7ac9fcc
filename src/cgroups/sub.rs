//! `exec --cgroup [<controller>[,<controller>...]:]<path>`: run an exec'd process in an
//! existing sub-cgroup of the container's cgroup, as runc 1.1.
//!
//! One argument without a prefix applies to every hierarchy (on cgroup v2 it is the only form);
//! `controller:path` arguments move the process in those v1 controllers only, the others keep
//! the container's own cgroup. The sub-cgroup must exist (runc does not create it) and must
//! stay below the container's cgroup: `..` cannot leave it.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use nix::unistd::Pid;

use super::fsutil::write_file;
use super::{CgroupError, Manager};

/// Parse the `--cgroup` arguments into controller → sub-path ("" = every hierarchy), with
/// runc's error texts.
pub fn parse(args: &[String]) -> Result<BTreeMap<String, String>, CgroupError> {
    let mut paths = BTreeMap::new();
    for arg in args {
        match arg.split_once(':') {
            Some((ctrls, path)) => {
                if path.contains(':') {
                    return Err(CgroupError::Other(format!(
                        "invalid --cgroup argument: {arg}"
                    )));
                }
                for ctrl in ctrls.split(',') {
                    if ctrl.is_empty() {
                        return Err(CgroupError::Other(format!(
                            "invalid --cgroup argument: {arg} (empty <controller> prefix)"
                        )));
                    }
                    if paths.insert(ctrl.to_string(), path.to_string()).is_some() {
                        return Err(CgroupError::Other(format!(
                            "invalid --cgroup argument(s): controller {ctrl} specified multiple times"
                        )));
                    }
                }
            }
            None => {
                if args.len() != 1 {
                    return Err(CgroupError::Other(format!(
                        "invalid --cgroup argument: {arg} (missing <controller>: prefix)"
                    )));
                }
                paths.insert(String::new(), arg.clone());
            }
        }
    }
    Ok(paths)
}

/// `base` joined with `sub`, cleaned lexically; an error when the result is not `base` or
/// below it. (runc compares string prefixes, which lets `../<id>0` through to a sibling
/// whose name starts with the container's: husk compares whole components.)
fn below(base: &Path, sub: &str) -> Result<PathBuf, CgroupError> {
    let mut out = base.to_path_buf();
    let depth = base.components().count();
    for c in Path::new(sub).components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                if out.components().count() <= depth {
                    return Err(CgroupError::Other(format!(
                        "{sub} is not a sub cgroup path"
                    )));
                }
                out.pop();
            }
            // A leading "/" means the container's cgroup, as in runc's path.Join.
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    Ok(out)
}

/// The cgroup directories below `dir`, deepest first (the order rmdir needs). A container's
/// sub-cgroups (made for `exec --cgroup`, or by a process inside with a writable cgroupfs) are
/// part of it: listed by `ps`, signalled by `kill --all`, removed by `delete`, as runc.
pub fn descendants(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            // file_type() of a read_dir entry does not follow symlinks; cgroupfs has none.
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                let child = e.path();
                out.extend(descendants(&child));
                out.push(child);
            }
        }
    }
    out
}

impl Manager {
    /// The hierarchies by runc's keys: v1 controller names, and "" for the cgroup2 directory.
    fn keyed_dirs(&self) -> BTreeMap<String, PathBuf> {
        let mut m: BTreeMap<String, PathBuf> = self.v1.clone();
        if let Some(d) = &self.v2 {
            m.insert(String::new(), d.clone());
        }
        m
    }

    /// Put `pid` in the container's cgroup, in the sub-cgroups `subs` names (see `parse`).
    pub fn add_task_sub(
        &self,
        pid: Pid,
        subs: &BTreeMap<String, String>,
    ) -> Result<(), CgroupError> {
        if subs.is_empty() {
            return self.add_task(pid, false);
        }
        let mut dirs = self.keyed_dirs();
        if let Some(sub) = subs.get("") {
            for dir in dirs.values_mut() {
                *dir = below(dir, sub)?;
            }
        } else {
            for (ctrl, sub) in subs {
                let dir = dirs.get_mut(ctrl).ok_or_else(|| {
                    CgroupError::Other(format!("unknown controller {ctrl} in --cgroup"))
                })?;
                *dir = below(dir, sub)?;
            }
        }
        let mut unique: Vec<PathBuf> = dirs.into_values().collect();
        unique.sort();
        unique.dedup();
        for dir in unique {
            write_file(&dir.join("cgroup.procs"), &pid.to_string()).map_err(|e| {
                CgroupError::Other(format!("error adding pid {pid} to cgroups: {e}"))
            })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<BTreeMap<String, String>, String> {
        let v: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        parse(&v).map_err(|e| e.to_string())
    }

    #[test]
    fn parse_as_runc() {
        assert_eq!(p(&["sub"]).unwrap()[""], "sub");
        let m = p(&["cpu,memory:a", "pids:b"]).unwrap();
        assert_eq!((m["cpu"].as_str(), m["memory"].as_str()), ("a", "a"));
        assert_eq!(m["pids"], "b");
        assert!(p(&["a", "b"])
            .unwrap_err()
            .contains("missing <controller>: prefix"));
        assert!(p(&[":a"])
            .unwrap_err()
            .contains("empty <controller> prefix"));
        assert!(p(&["cpu:a", "cpu:b"])
            .unwrap_err()
            .contains("controller cpu specified multiple times"));
        assert!(p(&["cpu:a:b"])
            .unwrap_err()
            .contains("invalid --cgroup argument: cpu:a:b"));
    }

    #[test]
    fn sub_paths_stay_below_the_container() {
        let base = Path::new("/sys/fs/cgroup/memory/c1");
        assert_eq!(below(base, "a/b").unwrap(), base.join("a/b"));
        assert_eq!(below(base, "/a").unwrap(), base.join("a"));
        assert_eq!(below(base, "a/../b").unwrap(), base.join("b"));
        assert!(below(base, "..").is_err());
        assert!(below(base, "../c10").is_err());
        assert!(below(base, "a/../../x").is_err());
    }
}
