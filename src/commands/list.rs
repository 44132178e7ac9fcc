//! `husk list [--format table|json] [-q]`

use super::Ctx;
use crate::cli::ListArgs;
use crate::error::Result;
use crate::state::ContainerDir;

pub fn run(ctx: &Ctx, a: ListArgs) -> Result<()> {
    let mut rows = Vec::new();
    if let Ok(entries) = std::fs::read_dir(&ctx.root) {
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .collect();
        names.sort();
        for name in names {
            let Ok(dir) = ContainerDir::new(&ctx.root, &name) else {
                continue;
            };
            let Ok(mut saved) = dir.load() else { continue };
            saved.owner = owner(&ctx.root.join(&name));
            let status = dir.status(&saved);
            rows.push((saved, status));
        }
    }
    if a.quiet {
        for (s, _) in &rows {
            super::emit(&format!("{}\n", s.id));
        }
        return Ok(());
    }
    if a.format == "json" {
        let list: Vec<_> = rows
            .iter()
            .map(|(s, st)| super::state::runc_state(s, *st))
            .collect();
        // runc prints `null` for no containers.
        let out = if list.is_empty() {
            "null".to_string()
        } else {
            serde_json::to_string(&list).unwrap_or_default()
        };
        super::emit(&format!("{out}\n"));
        return Ok(());
    }
    // runc's tabwriter: minimum width 12, padding 3.
    let mut table = vec![["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
        .map(String::from)
        .to_vec()];
    for (s, st) in &rows {
        let pid = if *st == crate::state::Status::Stopped {
            0
        } else {
            s.pid
        };
        table.push(vec![
            s.id.clone(),
            pid.to_string(),
            st.as_str().to_string(),
            s.bundle.display().to_string(),
            s.created.clone(),
            if s.owner.is_empty() {
                "root".to_string()
            } else {
                s.owner.clone()
            },
        ]);
    }
    let widths: Vec<usize> = (0..6)
        .map(|c| table.iter().map(|r| r[c].len()).max().unwrap_or(0).max(9) + 3)
        .collect();
    for r in table {
        let mut line = String::new();
        for (c, cell) in r.iter().enumerate() {
            if c == 5 {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}", w = widths[c]));
            }
        }
        super::emit(&format!("{line}\n"));
    }
    Ok(())
}

/// runc's OWNER: the name of the user owning the container's state directory (who created
/// it: root, or the rootless user), `#<uid>` when /etc/passwd does not know it.
fn owner(dir: &std::path::Path) -> String {
    use std::os::unix::fs::MetadataExt;
    let Ok(uid) = std::fs::metadata(dir).map(|m| m.uid()) else {
        return String::new();
    };
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() > 2 && f[2].parse() == Ok(uid))
        .map(|f| f[0].to_string())
        .unwrap_or_else(|| format!("#{uid}"))
}
