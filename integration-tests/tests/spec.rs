//! `spec [--rootless] [--bundle DIR]`: runc's template, same shape as runc's own output.

use integration_tests::*;
use std::process::Command;

fn spec(dir: &std::path::Path, bin: &std::path::Path, rootless: bool) -> serde_json::Value {
    let mut cmd = Command::new(bin);
    cmd.arg("spec");
    if rootless {
        cmd.arg("--rootless");
    }
    let out = cmd.arg("--bundle").arg(dir).output().expect("run spec");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(dir.join("config.json")).expect("config.json written");
    serde_json::from_str(&text).expect("valid JSON")
}

/// Every key path of a JSON document, with array elements' keys merged.
fn keys(v: &serde_json::Value, prefix: &str, out: &mut std::collections::BTreeSet<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                let p = format!("{prefix}.{k}");
                out.insert(p.clone());
                keys(v, &p, out);
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|v| keys(v, &format!("{prefix}[]"), out)),
        _ => {}
    }
}

#[test]
fn spec_matches_runc_template() {
    require_root!();
    for rootless in [false, true] {
        let mine = tempdir("spec-mine");
        let theirs = tempdir("spec-runc");
        let a = spec(&mine, &husk_bin(), rootless);
        let b = spec(&theirs, std::path::Path::new("/usr/sbin/runc"), rootless);
        let (mut ka, mut kb) = (Default::default(), Default::default());
        keys(&a, "", &mut ka);
        keys(&b, "", &mut kb);
        assert_eq!(
            ka, kb,
            "rootless={rootless}: same fields as runc's template"
        );
        assert_eq!(a["mounts"], b["mounts"], "rootless={rootless}");
        assert_eq!(
            a["linux"]["namespaces"], b["linux"]["namespaces"],
            "rootless={rootless}"
        );
        assert_eq!(a["process"]["capabilities"], b["process"]["capabilities"]);
        // A second spec refuses to overwrite.
        let again = Command::new(husk_bin())
            .args(["spec", "--bundle"])
            .arg(&mine)
            .output()
            .unwrap();
        assert_eq!(again.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&again.stderr).contains("config.json exists"));
        let _ = std::fs::remove_dir_all(&mine);
        let _ = std::fs::remove_dir_all(&theirs);
    }
}

fn tempdir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("husk-it-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `features` (runtime-spec features.md): every field runc reports, and the truth about this
/// host's LSMs.
#[test]
fn features_has_runcs_fields() {
    require_root!();
    let run = |bin: &std::path::Path| -> serde_json::Value {
        let out = Command::new(bin)
            .arg("features")
            .output()
            .expect("run features");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("features JSON")
    };
    let mine = run(&husk_bin());
    let theirs = run(std::path::Path::new("/usr/sbin/runc"));
    let (mut km, mut kt) = (
        std::collections::BTreeSet::new(),
        std::collections::BTreeSet::new(),
    );
    keys(&mine, "", &mut km);
    keys(&theirs, "", &mut kt);
    let missing: Vec<_> = kt
        .iter()
        .filter(|k| !k.starts_with(".annotations."))
        .filter(|k| !km.contains(*k))
        .collect();
    assert!(
        missing.is_empty(),
        "fields runc has and we lack: {missing:?}"
    );
    for hook in [
        "prestart",
        "createRuntime",
        "createContainer",
        "startContainer",
        "poststart",
        "poststop",
    ] {
        assert!(
            mine["hooks"].as_array().unwrap().iter().any(|h| h == hook),
            "{hook}"
        );
    }
    if is_runc() {
        // runc 1.1.5 reports what it was built with, not what the host has.
        return;
    }
    // This host has neither AppArmor nor SELinux: features must not claim them.
    let apparmor = std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .map(|s| s.trim() == "Y")
        .unwrap_or(false);
    assert_eq!(mine["linux"]["apparmor"]["enabled"], apparmor);
    let selinux = std::path::Path::new("/sys/fs/selinux/enforce").exists();
    assert_eq!(mine["linux"]["selinux"]["enabled"], selinux);
}
