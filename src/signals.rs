//! Signal names and numbers as runc parses them: `9`, `KILL`, `SIGKILL`, `kill`, `sigkill`.

use nix::sys::signal::Signal;

pub fn parse(s: &str) -> Result<i32, String> {
    if let Ok(n) = s.parse::<i32>() {
        if (1..=64).contains(&n) {
            return Ok(n);
        }
        return Err(format!("invalid signal {s:?}"));
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    if let Some(rt) = name.strip_prefix("SIGRTMIN") {
        let base = libc::SIGRTMIN();
        let off: i32 = if rt.is_empty() {
            0
        } else {
            rt.trim_start_matches('+')
                .parse()
                .map_err(|_| format!("invalid signal {s:?}"))?
        };
        return Ok(base + off);
    }
    if let Some(rt) = name.strip_prefix("SIGRTMAX") {
        let base = libc::SIGRTMAX();
        let off: i32 = if rt.is_empty() {
            0
        } else {
            rt.parse().map_err(|_| format!("invalid signal {s:?}"))?
        };
        return Ok(base + off);
    }
    name.parse::<Signal>()
        .map(|s| s as i32)
        .map_err(|_| format!("unknown signal {s:?}"))
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn runc_forms() {
        assert_eq!(parse("9"), Ok(9));
        assert_eq!(parse("KILL"), Ok(9));
        assert_eq!(parse("SIGKILL"), Ok(9));
        assert_eq!(parse("term"), Ok(15));
        assert_eq!(parse("usr1"), Ok(10));
        assert!(parse("NOPE").is_err());
        assert!(parse("0").is_err());
    }
}
