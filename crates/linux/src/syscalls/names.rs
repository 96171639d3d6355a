//! Syscall and errno names for --trace=syscalls.

/// The x86-64 name of syscall `nr`.
pub fn name(nr: u64) -> String {
    format!("syscall_{nr}")
}

/// How many arguments to print for syscall `nr`.
pub fn arg_count(nr: u64) -> usize {
    let _ = nr;
    6
}

/// The symbolic name of an errno value.
pub fn errno_name(e: i32) -> String {
    format!("E{e}")
}
