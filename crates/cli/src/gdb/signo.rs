//! The remote protocol numbers signals in gdb's own enumeration (gdb's
//! include/gdb/signals.def, `enum gdb_signal`), not the target's: translating both ways, as
//! gdbserver does with gdb_signal_from_host and gdb_signal_to_host.

/// gdb's GDB_SIGNAL_UNKNOWN.
const UNKNOWN: u8 = 143;

/// (Linux x86-64 number, gdb number) for the signals whose numbers differ.
const DIFFERENT: &[(i32, u8)] = &[
    (7, 10),       // SIGBUS
    (10, 30),      // SIGUSR1
    (12, 31),      // SIGUSR2
    (16, UNKNOWN), // SIGSTKFLT (gdb has none)
    (17, 20),      // SIGCHLD
    (18, 19),      // SIGCONT
    (19, 17),      // SIGSTOP
    (20, 18),      // SIGTSTP
    (23, 16),      // SIGURG
    (29, 23),      // SIGIO
    (30, 32),      // SIGPWR
    (31, 12),      // SIGSYS
    (32, 77),      // SIGRTMIN-2 (GDB_SIGNAL_REALTIME_32)
    (64, 78),      // GDB_SIGNAL_REALTIME_64
];

/// gdb's number for Linux signal `sig`.
pub fn to_gdb(sig: i32) -> u8 {
    if let Some(&(_, g)) = DIFFERENT.iter().find(|(h, _)| *h == sig) {
        return g;
    }
    match sig {
        0..=15 | 21 | 22 | 24..=28 => sig as u8,
        // GDB_SIGNAL_REALTIME_33 is 45, and 34..63 follow.
        33..=63 => (sig - 33 + 45) as u8,
        _ => UNKNOWN,
    }
}

/// The Linux signal for gdb's number `g` (None for one Linux does not have).
pub fn from_gdb(g: u8) -> Option<i32> {
    if g == UNKNOWN {
        return None;
    }
    (1..=64).find(|&s| to_gdb(s) == g)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        for s in 1..=64 {
            if s != 16 {
                assert_eq!(from_gdb(to_gdb(s)), Some(s), "signal {s}");
            }
        }
        assert_eq!(to_gdb(libc::SIGUSR1), 30);
        assert_eq!(to_gdb(libc::SIGSEGV), 11);
        assert_eq!(to_gdb(libc::SIGCHLD), 20);
    }
}
