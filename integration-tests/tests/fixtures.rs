//! spec-fixtures/: every good config runs; every bad input fails cleanly (see
//! spec-fixtures/README.md for the layout).

use integration_tests::*;
use std::fs;
use std::path::{Path, PathBuf};

fn fixtures(sub: &str) -> Vec<PathBuf> {
    let dir = workspace_dir().join("spec-fixtures").join(sub);
    let mut v: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .collect();
    v.sort();
    v
}

fn name_of(p: &Path) -> String {
    p.file_stem().unwrap().to_string_lossy().into_owned()
}

#[test]
fn good_fixtures_run() {
    require_root!();
    let rt = Runtime::new("good");
    let mut failures = Vec::new();
    let files: Vec<PathBuf> = fixtures("good")
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    assert!(files.len() >= 2, "good fixtures: {files:?}");
    for file in files {
        let name = name_of(&file);
        let mut b = Bundle::new(&format!("good-{name}"));
        b.raw_config = Some(fs::read(&file).unwrap());
        let id = rt.id(&name);
        let out = rt.run(&id, &b, &[]);
        if !out.success() {
            failures.push(format!("{name}: {out}"));
        }
        let left = rt.leftovers(&id);
        if !left.is_empty() {
            failures.push(format!("{name}: left behind {left:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn bad_inputs() {
    require_root!();
    let rt = Runtime::new("bad");
    let cases = fixtures("bad");
    assert!(cases.len() >= 14, "bad cases: {cases:?}");
    let mut failures = Vec::new();
    for case in cases.iter().filter(|p| p.is_dir()) {
        let name = name_of(case);
        let expected: Vec<String> = fs::read_to_string(case.join("expected"))
            .unwrap_or_else(|e| panic!("{name}/expected: {e}"))
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(String::from)
            .collect();
        assert!(!expected.is_empty(), "{name}/expected is empty");
        let mut b = Bundle::new(&format!("bad-{name}"));
        b.raw_config = Some(fs::read(case.join("config.json")).unwrap());
        let id = match fs::read_to_string(case.join("id")) {
            Ok(s) => s.strip_suffix('\n').unwrap_or(&s).to_string(),
            Err(_) => unique_id(&format!("bad-{name}")),
        };
        let bundle = b.path_str();

        // An id that exists already: create it first.
        let before = if case.join("precreate").exists() {
            rt.create(&id, &b).ok();
            Some(rt.state_json(&id))
        } else {
            None
        };

        let out = rt.create(&id, &b);
        eprintln!(
            "[{name}] id {id:?}: exit {}: {}",
            out.status,
            out.stderr.trim()
        );

        if is_runc() && case.join("runc-lacks").exists() {
            // runc 1.1.5 predates the feature and ignores its fields: nothing to compare.
            rt.delete(&id, true).ok();
            continue;
        }
        if is_runc() && case.join("runc-accepts").exists() {
            // runc takes it (with a warning naming the problem); husk refuses it.
            if !out.success() {
                failures.push(format!("{name}: runc was expected to accept this: {out}"));
            }
            for e in &expected {
                if !out.stderr.to_lowercase().contains(&e.to_lowercase()) {
                    failures.push(format!("{name}: runc's warning lacks {e:?}: {out}"));
                }
            }
            rt.delete(&id, true).ok();
            continue;
        }

        if out.status != 1 {
            failures.push(format!("{name}: expected exit 1: {out}"));
        }
        if !is_runc() {
            let lower = out.stderr.to_lowercase();
            for e in &expected {
                if !lower.contains(&e.to_lowercase()) {
                    failures.push(format!("{name}: stderr lacks {e:?}: {out}"));
                }
            }
        }

        // Nothing left behind (or, for an existing id, the first container untouched).
        match before {
            Some(st) => {
                let now = rt.state_json(&id);
                if now != st {
                    failures.push(format!("{name}: existing container changed: {st} -> {now}"));
                }
                rt.delete(&id, true).ok();
                let left = rt.leftovers(&id);
                if !left.is_empty() {
                    failures.push(format!("{name}: left behind {left:?}"));
                }
            }
            None => {
                let mut left = rt.leftovers(&id);
                if !id.is_empty() && rt.root().join(&id).exists() {
                    left.push(format!("{} exists", rt.root().join(&id).display()));
                }
                if let Ok(rd) = fs::read_dir(rt.root()) {
                    for e in rd.flatten() {
                        left.push(format!("{} in the root dir", e.path().display()));
                    }
                }
                if !left.is_empty() {
                    failures.push(format!("{name}: left behind {left:?}"));
                }
            }
        }
        let procs = processes_mentioning(&bundle);
        if !procs.is_empty() {
            failures.push(format!("{name}: processes mention the bundle: {procs:?}"));
        }
        let mounts = mounts_containing(&bundle);
        if !mounts.is_empty() {
            failures.push(format!("{name}: mounts left: {mounts:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
