//! Where the CET glibc of tests/sysroot/glibc-cet.sh lives, and the rule for tests that need
//! it: when it is absent they are reported as *ignored* with a line saying they did NOT run and
//! why (never as passed); with `CETBOX_GLIBC_REQUIRED=1` (set by .ci/run after building it)
//! absence is a failure instead, so CI cannot pass without running them.
//!
//! The test files that use this (glibc_cet.rs, glibc_harness.rs) run on libtest-mimic
//! (`harness = false` in Cargo.toml) because the built-in harness cannot ignore a test at run
//! time.

#![allow(dead_code)]

use libtest_mimic::{Completion, Failed, Trial};
use std::path::{Path, PathBuf};

/// `$CETBOX_GLIBC_CACHE`, else `${XDG_CACHE_HOME:-~/.cache}/cetbox/glibc-2.41-cet`, as in
/// tests/sysroot/glibc-cet.sh.
pub fn cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("CETBOX_GLIBC_CACHE") {
        return PathBuf::from(d);
    }
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from("/nonexistent"))
        .join("cetbox/glibc-2.41-cet")
}

/// The sysroot (`$CETBOX_GLIBC_SYSROOT` if set), or why it is not usable.
pub fn sysroot() -> Result<PathBuf, String> {
    let dir = std::env::var_os("CETBOX_GLIBC_SYSROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| cache_dir().join("sysroot"));
    if dir.join(".cetbox-stamp").is_file() && dir.join("lib64/ld-linux-x86-64.so.2").exists() {
        Ok(dir)
    } else {
        Err(format!(
            "no CET glibc sysroot at {} (build it with tests/sysroot/glibc-cet.sh)",
            dir.display()
        ))
    }
}

/// glibc's build tree kept next to the sysroot (glibc's own tests run there), or why not.
pub fn build_tree() -> Result<PathBuf, String> {
    let dir = cache_dir().join("build");
    if dir.join(".cetbox-built").is_file() {
        Ok(dir)
    } else {
        Err(format!(
            "no glibc build tree at {} (build it with tests/sysroot/glibc-cet.sh)",
            dir.display()
        ))
    }
}

fn required() -> bool {
    std::env::var("CETBOX_GLIBC_REQUIRED").is_ok_and(|v| v == "1")
}

/// A test that needs `locate()`'s directory: runs `body` with it, or is ignored (NOT RUN) when
/// it is absent, or fails then under CETBOX_GLIBC_REQUIRED=1.
pub fn trial<L, F>(name: &str, locate: L, body: F) -> Trial
where
    L: FnOnce() -> Result<PathBuf, String> + Send + 'static,
    F: FnOnce(&Path) + Send + 'static,
{
    Trial::ignorable_test(name, move || match locate() {
        Ok(dir) => {
            body(&dir);
            Ok(Completion::Completed)
        }
        Err(why) if required() => Err(Failed::from(format!(
            "{why}; CETBOX_GLIBC_REQUIRED=1 says it must be there"
        ))),
        Err(why) => Ok(Completion::ignored_with(format!("NOT RUN: {why}"))),
    })
}
