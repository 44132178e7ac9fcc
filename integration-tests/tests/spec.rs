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
