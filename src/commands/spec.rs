//! `husk spec [--rootless] [--bundle DIR]`: runc's config.json template.

use std::path::Path;

use crate::cli::SpecArgs;
use crate::error::{Error, Result};

const TEMPLATE: &str = include_str!("templates/config.json");

pub fn run(a: SpecArgs, rootless: bool) -> Result<()> {
    let dir = a.bundle.as_deref().unwrap_or(Path::new("."));
    if !dir.is_dir() {
        return Err(Error::msg(format!(
            "chdir {}: no such file or directory",
            dir.display()
        )));
    }
    let path = dir.join("config.json");
    if path.exists() {
        // runc refuses to overwrite, with this text.
        return Err(Error::msg("File config.json exists. Remove it first"));
    }
    let mut spec: serde_json::Value = serde_json::from_str(TEMPLATE)
        .map_err(|e| Error::msg(format!("built-in template: {e}")))?;
    if rootless {
        make_rootless(&mut spec);
    }
    let text = serde_json::to_string_pretty(&spec).unwrap_or_default();
    std::fs::write(&path, text + "\n")
        .map_err(|e| Error::msg(format!("{}: {e}", path.display())))?;
    Ok(())
}

/// runc's rootless changes: a user namespace mapping the caller, no network namespace, no
/// device cgroup rules, no devpts gid, /sys bound from the host.
fn make_rootless(spec: &mut serde_json::Value) {
    let uid = nix::unistd::geteuid().as_raw();
    let gid = nix::unistd::getegid().as_raw();
    let linux = &mut spec["linux"];
    linux["uidMappings"] = serde_json::json!([{"containerID": 0, "hostID": uid, "size": 1}]);
    linux["gidMappings"] = serde_json::json!([{"containerID": 0, "hostID": gid, "size": 1}]);
    if let Some(obj) = linux.as_object_mut() {
        obj.remove("resources");
    }
    if let Some(ns) = linux["namespaces"].as_array_mut() {
        ns.retain(|n| n["type"] != "network");
        ns.push(serde_json::json!({"type": "user"}));
    }
    if let Some(mounts) = spec["mounts"].as_array_mut() {
        for m in mounts.iter_mut() {
            if m["destination"] == "/dev/pts" {
                if let Some(opts) = m["options"].as_array_mut() {
                    opts.retain(|o| o != "gid=5");
                }
            }
            if m["destination"] == "/sys" {
                *m = serde_json::json!({"destination": "/sys", "type": "none", "source": "/sys",
                    "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]});
            }
        }
    }
}
