//! `husk ps [--format table|json] ID [ps options]`, as runc: json is the array of host pids;
//! table runs ps(1) (default `-ef`) and keeps its header and the container's lines.

use super::Ctx;
use crate::cli::PsArgs;
use crate::container::ops;
use crate::error::{Error, Result};
use crate::state::{ContainerDir, Status};

pub fn run(ctx: &Ctx, a: PsArgs) -> Result<()> {
    let dir = ContainerDir::new(&ctx.root, &a.id)?;
    let (saved, status) = ops::status_of(&dir)?;
    if status == Status::Stopped {
        return Err(Error::msg("container not running"));
    }
    let pids = ops::pids(&saved)?;
    if a.format == "json" {
        println!(
            "{}",
            serde_json::to_string(&pids).unwrap_or_else(|_| "[]".into())
        );
        return Ok(());
    }
    let args: Vec<String> = if a.ps_args.is_empty() {
        vec!["-ef".into()]
    } else {
        a.ps_args.clone()
    };
    let out = std::process::Command::new("ps")
        .args(&args)
        .output()
        .map_err(|e| Error::msg(format!("run ps {}: {e}", args.join(" "))))?;
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    if !out.status.success() {
        return Err(Error::msg(format!(
            "ps {}: {}: {}",
            args.join(" "),
            out.status,
            text.trim()
        )));
    }
    let mut lines = text.lines();
    let header = lines.next().unwrap_or("");
    let Some(pid_col) = header.split_whitespace().position(|f| f == "PID") else {
        return Err(Error::msg("couldn't find PID field in ps output"));
    };
    println!("{header}");
    for line in lines {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let Some(p) = fields.get(pid_col).and_then(|f| f.parse::<i32>().ok()) else {
            continue;
        };
        if pids.contains(&p) {
            println!("{line}");
        }
    }
    Ok(())
}
