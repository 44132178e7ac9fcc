//! Linux security modules: `process.apparmorProfile`, `process.selinuxLabel` and
//! `linux.mountLabel`.
//!
//! The process's label is set for its execve by writing the kernel's "exec" attribute of the
//! init's own thread: `exec <profile>` for AppArmor, the context for SELinux. The write goes
//! through the init's private procfs instance (procfs.rs), so a container's rootfs that
//! replaced or covered `/proc` cannot make the label a no-op (CVE-2019-16884, CVE-2019-19921).
//!
//! `linux.mountLabel` becomes `context="<label>"` in the data of the filesystems the runtime
//! mounts that take it: tmpfs (also tmpcopyup, the cgroup v1 tmpfs and the tmpfs that masks a
//! directory in `maskedPaths`), devpts and any other new filesystem, but not proc, sysfs,
//! mqueue, cgroup or cgroup2, nor bind mounts (mount(2) ignores data with MS_BIND) — runc's
//! `label.FormatMountLabel` at the same places. Like runc (1.1.5 and 1.2), it is passed
//! whether or not SELinux is enabled: the kernel decides.
//!
//! Host without the LSM, as runc 1.1.5 here: a `selinuxLabel` is refused at create ("selinux
//! label is specified in config, but selinux is disabled or not supported"); an
//! `apparmorProfile` fails the create too (runc's write to attr/exec fails with EINVAL; husk
//! says why first). A `mountLabel` is not refused: the first mount that gets `context=` fails
//! with EINVAL as with runc (husk's error adds that SELinux is off), and a config whose
//! mounts take no label (only binds, proc, sysfs, mqueue) runs, as with runc.

use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;

#[derive(Debug, thiserror::Error)]
pub enum LsmError {
    #[error("{field}: {msg}")]
    Config { field: &'static str, msg: String },
    #[error("{field}: write {path}: {msg}")]
    Apply {
        field: &'static str,
        path: PathBuf,
        msg: String,
    },
}

/// What the config asks of the LSMs.
#[derive(Debug, Default, PartialEq)]
pub struct Labels {
    pub apparmor: Option<String>,
    pub selinux: Option<String>,
    pub mount: Option<String>,
}

/// Which LSMs the host has.
#[derive(Clone, Copy, Debug)]
pub struct Host {
    pub apparmor: bool,
    pub selinux: bool,
}

impl Host {
    pub fn detect() -> Host {
        Host {
            apparmor: std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
                .map(|s| s.trim() == "Y")
                .unwrap_or(false),
            selinux: Path::new("/sys/fs/selinux/enforce").exists(),
        }
    }
}

impl Labels {
    pub fn from_spec(spec: &Spec) -> Labels {
        let nonempty = |s: Option<&String>| s.filter(|s| !s.is_empty()).cloned();
        let process = spec.process().as_ref();
        Labels {
            apparmor: nonempty(process.and_then(|p| p.apparmor_profile().as_ref())),
            selinux: nonempty(process.and_then(|p| p.selinux_label().as_ref())),
            mount: nonempty(spec.linux().as_ref().and_then(|l| l.mount_label().as_ref())),
        }
    }

    /// Refuse labels the host cannot apply (at create, before anything exists).
    pub fn check(&self, host: Host) -> Result<(), LsmError> {
        if self.selinux.is_some() && !host.selinux {
            return Err(LsmError::Config {
                field: "process.selinuxLabel",
                msg:
                    "selinux label is specified in config, but selinux is disabled or not supported"
                        .into(),
            });
        }
        if self.apparmor.is_some() && !host.apparmor {
            return Err(LsmError::Config {
                field: "process.apparmorProfile",
                msg: "apparmor profile is specified in config, but AppArmor is not enabled on this host".into(),
            });
        }
        Ok(())
    }

    /// The writes the init makes, as (field, attribute file under /proc/thread-self/attr,
    /// value). AppArmor uses its own subdirectory when the kernel has LSM stacking.
    pub fn writes(&self, apparmor_dir: bool) -> Vec<(&'static str, &'static str, String)> {
        let mut w = Vec::new();
        if let Some(p) = &self.apparmor {
            let file = if apparmor_dir {
                "apparmor/exec"
            } else {
                "exec"
            };
            w.push(("process.apparmorProfile", file, format!("exec {p}")));
        }
        if let Some(l) = &self.selinux {
            w.push(("process.selinuxLabel", "exec", l.clone()));
        }
        w
    }

    /// The mount option that labels a filesystem: `context="<label>"`, the label quoted as
    /// Go's `%q` does (runc's `label.FormatMountLabel`), so it survives the commas of an MLS
    /// range ("s0:c1,c2") in the comma-separated mount data.
    pub fn mount_option(&self) -> Option<String> {
        self.mount
            .as_ref()
            .map(|l| format!("context={}", go_quote(l)))
    }
}

/// A string quoted like Go's `strconv.Quote` for the characters a label can hold: `"` and
/// `\` escaped, control characters as escapes.
fn go_quote(s: &str) -> String {
    let mut q = String::with_capacity(s.len() + 2);
    q.push('"');
    for c in s.chars() {
        match c {
            '"' => q.push_str("\\\""),
            '\\' => q.push_str("\\\\"),
            '\n' => q.push_str("\\n"),
            '\t' => q.push_str("\\t"),
            '\r' => q.push_str("\\r"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                q.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => q.push(c),
        }
    }
    q.push('"');
    q
}

/// Validate at create.
pub fn check(spec: &Spec) -> Result<(), LsmError> {
    Labels::from_spec(spec).check(Host::detect())
}

/// The init, after the rootfs is finished (its /proc is the container's own procfs), before
/// the capabilities are dropped: set the labels the process will get at execve.
pub fn apply(spec: &Spec, procfs: &crate::procfs::Proc) -> Result<(), LsmError> {
    apply_labels(&Labels::from_spec(spec), procfs)
}

/// The labels of an exec'd process: its own (the container's, or `exec --apparmor` /
/// `--process-label`, or the `--process` file's); the mount label does not apply.
pub fn for_process(p: &oci_spec::runtime::Process) -> Labels {
    let nonempty = |s: Option<&String>| s.filter(|s| !s.is_empty()).cloned();
    Labels {
        apparmor: nonempty(p.apparmor_profile().as_ref()),
        selinux: nonempty(p.selinux_label().as_ref()),
        mount: None,
    }
}

/// Write `labels` for the coming execve through `procfs`.
pub fn apply_labels(labels: &Labels, procfs: &crate::procfs::Proc) -> Result<(), LsmError> {
    let apparmor_dir = Path::new("/proc/thread-self/attr/apparmor").is_dir();
    for (field, file, value) in labels.writes(apparmor_dir) {
        // Through the private procfs (procfs.rs): a rootfs whose /proc is not the kernel's,
        // or is covered by mounts, cannot swallow the label (CVE-2019-16884, -2025-52881).
        let rel = format!("attr/{file}");
        procfs
            .write_thread_self(&rel, value.as_bytes())
            .map_err(|e| LsmError::Apply {
                field,
                path: PathBuf::from("/proc/thread-self").join(&rel),
                msg: e.to_string(),
            })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(v: serde_json::Value) -> Spec {
        let mut base: serde_json::Value =
            serde_json::from_str(include_str!("../spec-fixtures/good/minimal.json")).unwrap();
        if let Some(p) = v.get("process") {
            for (k, val) in p.as_object().unwrap() {
                base["process"][k] = val.clone();
            }
        }
        if let Some(l) = v.get("mountLabel") {
            base["linux"]["mountLabel"] = l.clone();
        }
        serde_json::from_value(base).unwrap()
    }

    #[test]
    fn labels_plumbing() {
        let s = spec(
            serde_json::json!({"process": {"apparmorProfile": "husk-default",
            "selinuxLabel": "system_u:system_r:container_t:s0:c1,c2"},
            "mountLabel": "system_u:object_r:container_file_t:s0:c1,c2"}),
        );
        let l = Labels::from_spec(&s);
        assert_eq!(
            l.writes(false),
            vec![
                (
                    "process.apparmorProfile",
                    "exec",
                    "exec husk-default".to_string()
                ),
                (
                    "process.selinuxLabel",
                    "exec",
                    "system_u:system_r:container_t:s0:c1,c2".to_string()
                )
            ]
        );
        assert_eq!(l.writes(true)[0].1, "apparmor/exec");
        assert_eq!(
            l.mount_option().unwrap(),
            "context=\"system_u:object_r:container_file_t:s0:c1,c2\""
        );
        let all = Host {
            apparmor: true,
            selinux: true,
        };
        assert!(l.check(all).is_ok());
        let none = Host {
            apparmor: false,
            selinux: false,
        };
        let e = l.check(none).unwrap_err().to_string();
        assert!(
            e.starts_with("process.selinuxLabel: selinux label is specified"),
            "{e}"
        );
        // A mountLabel alone is never refused: the kernel decides, as with runc.
        let only_mount = Labels {
            mount: Some("x".into()),
            ..Default::default()
        };
        assert!(only_mount.check(none).is_ok());
        let only_aa = Labels {
            apparmor: Some("p".into()),
            ..Default::default()
        };
        let e = only_aa.check(none).unwrap_err().to_string();
        assert!(e.starts_with("process.apparmorProfile:"), "{e}");
        assert_eq!(go_quote("a\"b\\c\n\u{1}"), r#""a\"b\\c\n\x01""#);
        // Empty strings mean "not set", as in runc.
        let s = spec(serde_json::json!({"process": {"apparmorProfile": "", "selinuxLabel": ""}}));
        assert_eq!(Labels::from_spec(&s), Labels::default());
        // An exec'd process: its own labels, never the mount label.
        let p = s.process().clone().unwrap();
        assert_eq!(for_process(&p), Labels::default());
        let mut p2 = p.clone();
        p2.set_apparmor_profile(Some("x".into()));
        p2.set_selinux_label(Some("l".into()));
        let l = for_process(&p2);
        assert_eq!(
            (
                l.apparmor.as_deref(),
                l.selinux.as_deref(),
                l.mount.as_deref()
            ),
            (Some("x"), Some("l"), None)
        );
        assert!(Labels::from_spec(&s).writes(false).is_empty());
    }
}
