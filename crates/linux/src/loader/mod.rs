//! Loading ELF programs: static, static-PIE, dynamically linked (PT_INTERP), and #! scripts,
//! with the initial stack Linux builds.

use crate::process::Thread;
use std::fmt;

/// Why a program could not be loaded; `errno` is what execve returns.
#[derive(Debug, Clone)]
pub struct LoadError {
    pub errno: i32,
    pub message: String,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Loads `path` into the thread's (empty) address space and sets up registers and the stack
/// so that the next `run` starts the program.
pub fn load(
    t: &mut Thread,
    path: &str,
    argv: &[Vec<u8>],
    envp: &[Vec<u8>],
) -> Result<(), LoadError> {
    let _ = (t, argv, envp);
    Err(LoadError {
        errno: libc::ENOEXEC,
        message: format!("{path}: loader not implemented"),
    })
}
