//! husk's stand-in for the `regex` crate: see this crate's Cargo.toml for why.
//!
//! oci-spec 0.10 (feature "runtime") calls `Regex::new(pattern)` and `Regex::is_match(text)`.
//! `regex_lite::Regex` has both with the same signatures and the same syntax for the one pattern
//! in use. One difference, deliberate: `\d` is ASCII-only in regex-lite (Unicode digits in
//! `regex`), which is what runc's Go `regexp` does for execCPUAffinity too.

pub use regex_lite::{Error, Regex};

#[cfg(test)]
mod tests {
    use super::Regex;

    /// The pattern oci-spec 0.10 validates `process.execCPUAffinity` with.
    const CPU_AFFINITY: &str = r"^(\d+(-\d+)?)(,\d+(-\d+)?)*$";

    #[test]
    fn cpu_affinity_pattern() {
        let re = Regex::new(CPU_AFFINITY).expect("oci-spec's pattern compiles");
        for ok in ["0", "0-3", "1,3", "0-1,4-7,9", "12"] {
            assert!(re.is_match(ok), "{ok} should match");
        }
        for bad in ["", "a", "1-", "-1", "1,", ",1", "1 - 2", "1;2", "\u{0663}"] {
            assert!(!re.is_match(bad), "{bad:?} should not match");
        }
    }
}
