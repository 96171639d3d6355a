//! The notes of an x86-64 Linux core file, laid out as the kernel writes them
//! (fs/binfmt_elf.c fill_note_info / write_note_info; struct layouts from
//! include/uapi/linux/elfcore.h, include/linux/elfcore.h, arch/x86/include/asm/user_64.h and
//! arch/x86/include/asm/user.h; the regsets from arch/x86/kernel/ptrace.c and
//! arch/x86/kernel/fpu/regset.c).

use crate::signals::SigInfo;

pub const NT_PRSTATUS: u32 = 1;
pub const NT_PRFPREG: u32 = 2;
pub const NT_PRPSINFO: u32 = 3;
pub const NT_AUXV: u32 = 6;
pub const NT_X86_XSTATE: u32 = 0x202;
pub const NT_X86_SHSTK: u32 = 0x204;
pub const NT_SIGINFO: u32 = 0x5349_4749;
pub const NT_FILE: u32 = 0x4649_4c45;

/// sizeof(struct elf_prstatus) on x86-64.
pub const PRSTATUS_SIZE: usize = 336;
/// sizeof(struct elf_prpsinfo) on x86-64.
pub const PRPSINFO_SIZE: usize = 136;
/// The user xstate of cetbox's CPU model: x87 and SSE (XCR0 = 3), the 512-byte legacy area
/// plus the 64-byte XSAVE header (fpu_user_cfg.max_size).
pub const XSTATE_SIZE: usize = 576;
const XCR0: u64 = 3;

/// One note: name ("CORE" or "LINUX"), type and descriptor.
pub struct Note {
    pub name: &'static str,
    pub kind: u32,
    pub desc: Vec<u8>,
}

impl Note {
    pub fn core(kind: u32, desc: Vec<u8>) -> Note {
        Note {
            name: "CORE",
            kind,
            desc,
        }
    }

    /// Elf64_Nhdr, the name with its NUL padded to 4 bytes, the descriptor padded to 4.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let namesz = self.name.len() + 1;
        out.extend_from_slice(&(namesz as u32).to_le_bytes());
        out.extend_from_slice(&(self.desc.len() as u32).to_le_bytes());
        out.extend_from_slice(&self.kind.to_le_bytes());
        out.extend_from_slice(self.name.as_bytes());
        out.push(0);
        out.resize(out.len().next_multiple_of(4), 0);
        out.extend_from_slice(&self.desc);
        out.resize(out.len().next_multiple_of(4), 0);
    }
}

/// A thread's registers as a core file needs them.
#[derive(Clone, Debug)]
pub struct ThreadRegs {
    pub tid: i32,
    /// x86 encoding order: rax rcx rdx rbx rsp rbp rsi rdi r8..r15.
    pub gpr: [u64; 16],
    pub rip: u64,
    pub rflags: u64,
    pub fs_base: u64,
    pub gs_base: u64,
    /// The syscall number when stopped in a syscall, else -1.
    pub orig_rax: i64,
    /// FXSAVE64 image.
    pub fx: [u8; 512],
    /// Shadow stacks enabled (ARCH_SHSTK_SHSTK), and the SSP.
    pub shstk: bool,
    pub ssp: u64,
    /// Blocked and pending signal sets (first word).
    pub sighold: u64,
    pub sigpend: u64,
}

/// Process-wide fields of NT_PRSTATUS and NT_PRPSINFO.
pub struct ProcIds {
    pub pid: i32,
    pub ppid: i32,
    pub pgrp: i32,
    pub sid: i32,
    pub uid: u32,
    pub gid: u32,
}

/// struct user_regs_struct (arch/x86/include/asm/user_64.h): the elf_gregset_t.
fn gregset(r: &ThreadRegs) -> [u64; 27] {
    let g = &r.gpr;
    [
        g[15],             // r15
        g[14],             // r14
        g[13],             // r13
        g[12],             // r12
        g[5],              // rbp
        g[3],              // rbx
        g[11],             // r11
        g[10],             // r10
        g[9],              // r9
        g[8],              // r8
        g[0],              // rax
        g[1],              // rcx
        g[2],              // rdx
        g[6],              // rsi
        g[7],              // rdi
        r.orig_rax as u64, // orig_rax
        r.rip,
        0x33, // cs: __USER_CS
        r.rflags,
        g[4], // rsp
        0x2b, // ss: __USER_DS
        r.fs_base,
        r.gs_base,
        0, // ds
        0, // es
        0, // fs
        0, // gs
    ]
}

/// struct elf_prstatus: pr_info (si_signo, si_code, si_errno), pr_cursig, pr_sigpend,
/// pr_sighold, pr_pid, pr_ppid, pr_pgrp, pr_sid, four struct timevals, pr_reg, pr_fpvalid.
/// fill_prstatus gives every thread the dumping signal as pr_cursig and si_signo.
pub fn prstatus(r: &ThreadRegs, sig: i32, ids: &ProcIds) -> Note {
    let mut b = vec![0u8; PRSTATUS_SIZE];
    b[0..4].copy_from_slice(&sig.to_le_bytes());
    b[12..14].copy_from_slice(&(sig as u16).to_le_bytes());
    b[16..24].copy_from_slice(&r.sigpend.to_le_bytes());
    b[24..32].copy_from_slice(&r.sighold.to_le_bytes());
    b[32..36].copy_from_slice(&r.tid.to_le_bytes());
    b[36..40].copy_from_slice(&ids.ppid.to_le_bytes());
    b[40..44].copy_from_slice(&ids.pgrp.to_le_bytes());
    b[44..48].copy_from_slice(&ids.sid.to_le_bytes());
    // pr_utime, pr_stime, pr_cutime, pr_cstime (48..112) stay zero.
    for (i, v) in gregset(r).iter().enumerate() {
        b[112 + 8 * i..120 + 8 * i].copy_from_slice(&v.to_le_bytes());
    }
    // pr_fpvalid: the FPU state is in the NT_PRFPREG note.
    b[328..332].copy_from_slice(&1u32.to_le_bytes());
    Note::core(NT_PRSTATUS, b)
}

/// struct elf_prpsinfo: state 'R' (running: the dumping task), pr_flag PF_SIGNALED |
/// PF_DUMPCORE, ids, the command name and the argument string (NULs as spaces, at most 79
/// bytes), as fill_psinfo fills it.
pub fn prpsinfo(ids: &ProcIds, comm: &[u8; 16], argv: &[Vec<u8>]) -> Note {
    const PF_DUMPCORE: u64 = 0x200;
    const PF_SIGNALED: u64 = 0x400;
    let mut b = vec![0u8; PRPSINFO_SIZE];
    b[0] = 0; // pr_state
    b[1] = b'R'; // pr_sname
    b[2] = 0; // pr_zomb
    b[3] = 0; // pr_nice
    b[8..16].copy_from_slice(&(PF_DUMPCORE | PF_SIGNALED).to_le_bytes());
    b[16..20].copy_from_slice(&ids.uid.to_le_bytes());
    b[20..24].copy_from_slice(&ids.gid.to_le_bytes());
    b[24..28].copy_from_slice(&ids.pid.to_le_bytes());
    b[28..32].copy_from_slice(&ids.ppid.to_le_bytes());
    b[32..36].copy_from_slice(&ids.pgrp.to_le_bytes());
    b[36..40].copy_from_slice(&ids.sid.to_le_bytes());
    b[40..56].copy_from_slice(comm);
    b[55] = 0;
    let mut args = Vec::new();
    for a in argv {
        args.extend_from_slice(a);
        args.push(0);
    }
    args.truncate(79);
    // The kernel copies ELF_PRARGSZ - 1 bytes of the command line and turns NULs into spaces
    // (a trailing NUL included, before the final terminator).
    for (i, c) in args.iter().enumerate() {
        b[56 + i] = if *c == 0 { b' ' } else { *c };
    }
    Note::core(NT_PRPSINFO, b)
}

pub fn siginfo(info: &SigInfo) -> Note {
    Note::core(NT_SIGINFO, info.to_bytes().to_vec())
}

/// The saved auxiliary vector, AT_NULL included.
pub fn auxv(v: &[(u64, u64)]) -> Note {
    let mut b = Vec::new();
    for (k, val) in v {
        b.extend_from_slice(&k.to_le_bytes());
        b.extend_from_slice(&val.to_le_bytes());
    }
    if v.last().map(|e| e.0) != Some(0) {
        b.extend_from_slice(&[0u8; 16]);
    }
    Note::core(NT_AUXV, b)
}

/// NT_FILE (fill_files_note): count, page size, then (start, end, file offset in pages) per
/// file mapping, then the NUL-terminated names.
pub fn files(maps: &[(u64, u64, u64, String)]) -> Note {
    let mut b = Vec::new();
    b.extend_from_slice(&(maps.len() as u64).to_le_bytes());
    b.extend_from_slice(&4096u64.to_le_bytes());
    for (s, e, off, _) in maps {
        b.extend_from_slice(&s.to_le_bytes());
        b.extend_from_slice(&e.to_le_bytes());
        b.extend_from_slice(&(off / 4096).to_le_bytes());
    }
    for (_, _, _, name) in maps {
        b.extend_from_slice(name.as_bytes());
        b.push(0);
    }
    Note::core(NT_FILE, b)
}

/// NT_PRFPREG: struct user_i387_struct, the FXSAVE image.
pub fn fpregs(r: &ThreadRegs) -> Note {
    Note::core(NT_PRFPREG, r.fx.to_vec())
}

/// NT_X86_XSTATE (xstateregs_get): the legacy area with the XCR0 the OS enabled in bytes
/// 464..471 (arch/x86/include/asm/user.h, USER_XSTATE_XCR0_WORD), then the XSAVE header with
/// XSTATE_BV. CET state is supervisor state (XSS), not part of this user buffer: the SSP is in
/// NT_X86_SHSTK.
pub fn xstate(r: &ThreadRegs) -> Note {
    let mut b = vec![0u8; XSTATE_SIZE];
    b[..512].copy_from_slice(&r.fx);
    b[464..512].fill(0);
    b[464..472].copy_from_slice(&XCR0.to_le_bytes());
    b[512..520].copy_from_slice(&XCR0.to_le_bytes());
    Note {
        name: "LINUX",
        kind: NT_X86_XSTATE,
        desc: b,
    }
}

/// NT_X86_SHSTK (ssp_get): the 8-byte user SSP (MSR_IA32_PL3_SSP); only for a thread with
/// shadow stacks enabled (ssp_active).
pub fn shstk(r: &ThreadRegs) -> Option<Note> {
    r.shstk.then(|| Note {
        name: "LINUX",
        kind: NT_X86_SHSTK,
        desc: r.ssp.to_le_bytes().to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn note_encoding_pads_name_and_desc() {
        let mut out = Vec::new();
        Note::core(NT_AUXV, vec![1, 2, 3, 4, 5]).encode(&mut out);
        assert_eq!(out.len(), 12 + 8 + 8);
        assert_eq!(&out[0..12], &[5, 0, 0, 0, 5, 0, 0, 0, 6, 0, 0, 0]);
        assert_eq!(&out[12..20], b"CORE\0\0\0\0");
    }

    #[test]
    fn prstatus_places_rip_and_rsp_as_user_regs_struct() {
        let mut r = ThreadRegs {
            tid: 7,
            gpr: [0; 16],
            rip: 0x401000,
            rflags: 0x246,
            fs_base: 0,
            gs_base: 0,
            orig_rax: -1,
            fx: [0; 512],
            shstk: false,
            ssp: 0,
            sighold: 0,
            sigpend: 0,
        };
        r.gpr[4] = 0x7ffd_0000;
        r.gpr[0] = 0x1234;
        let ids = ProcIds {
            pid: 7,
            ppid: 1,
            pgrp: 7,
            sid: 7,
            uid: 0,
            gid: 0,
        };
        let n = prstatus(&r, 11, &ids);
        let q = |i: usize| u64::from_le_bytes(n.desc[112 + 8 * i..120 + 8 * i].try_into().unwrap());
        assert_eq!(
            (q(10), q(15), q(16), q(17), q(19), q(20)),
            (0x1234, u64::MAX, 0x401000, 0x33, 0x7ffd_0000, 0x2b)
        );
        assert_eq!(&n.desc[32..36], &7i32.to_le_bytes());
    }
}
