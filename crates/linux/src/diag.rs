//! cetbox's own one-line diagnostics on stderr (a leaf module: anything may report through it
//! without depending on the run loop).

use std::io::Write;

/// Prints one cetbox diagnostic line on stderr.
pub fn diag(msg: &str) {
    let mut e = std::io::stderr().lock();
    let _ = writeln!(e, "cetbox: {msg}");
}
