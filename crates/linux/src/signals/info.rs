//! siginfo_t as Linux lays it out for x86-64 (128 bytes).

/// A signal with its siginfo fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SigInfo {
    pub signo: i32,
    pub errno: i32,
    pub code: i32,
    /// The union after the first three ints, as raw bytes (offset 16 .. 128 of siginfo_t).
    pub fields: [u8; 112],
}

pub use crate::abi::{
    BUS_ADRALN, BUS_ADRERR, ILL_ILLOPC, ILL_ILLOPN, SEGV_ACCERR, SEGV_CPERR, SEGV_MAPERR,
    SEGV_PKUERR, SI_KERNEL, SI_QUEUE, SI_TKILL, SI_USER,
};
pub const FPE_INTDIV: i32 = 1;
pub const FPE_INTOVF: i32 = 2;
pub const FPE_FLTDIV: i32 = 3;
pub const FPE_FLTOVF: i32 = 4;
pub const FPE_FLTUND: i32 = 5;
pub const FPE_FLTRES: i32 = 6;
pub const FPE_FLTINV: i32 = 7;
pub const TRAP_BRKPT: i32 = 1;
pub const TRAP_TRACE: i32 = 2;

impl SigInfo {
    pub fn new(signo: i32, code: i32) -> SigInfo {
        SigInfo {
            signo,
            errno: 0,
            code,
            fields: [0; 112],
        }
    }

    /// A fault signal with si_addr (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP).
    pub fn fault(signo: i32, code: i32, addr: u64) -> SigInfo {
        let mut s = SigInfo::new(signo, code);
        s.fields[0..8].copy_from_slice(&addr.to_le_bytes());
        s
    }

    /// A signal sent by kill/tgkill: si_pid and si_uid.
    pub fn sent(signo: i32, code: i32, pid: i32, uid: u32) -> SigInfo {
        let mut s = SigInfo::new(signo, code);
        s.fields[0..4].copy_from_slice(&pid.to_le_bytes());
        s.fields[4..8].copy_from_slice(&uid.to_le_bytes());
        s
    }

    /// The 128-byte image.
    pub fn to_bytes(&self) -> [u8; 128] {
        let mut b = [0u8; 128];
        b[0..4].copy_from_slice(&self.signo.to_le_bytes());
        b[4..8].copy_from_slice(&self.errno.to_le_bytes());
        b[8..12].copy_from_slice(&self.code.to_le_bytes());
        b[16..128].copy_from_slice(&self.fields);
        b
    }

    pub fn from_bytes(b: &[u8; 128]) -> SigInfo {
        let i = |o: usize| i32::from_le_bytes(b[o..o + 4].try_into().unwrap());
        let mut fields = [0u8; 112];
        fields.copy_from_slice(&b[16..128]);
        SigInfo {
            signo: i(0),
            errno: i(4),
            code: i(8),
            fields,
        }
    }

    /// Reads a host `siginfo_t` (same layout: cetbox runs on x86-64 Linux).
    pub fn from_host(info: &libc::siginfo_t) -> SigInfo {
        // SAFETY: siginfo_t is 128 plain bytes on x86-64 Linux.
        let b: &[u8; 128] = unsafe { &*(info as *const libc::siginfo_t).cast::<[u8; 128]>() };
        SigInfo::from_bytes(b)
    }

    pub fn addr(&self) -> u64 {
        u64::from_le_bytes(self.fields[0..8].try_into().unwrap())
    }
}
