//! CMPXCHG16B m128 (x86-64-v2; SDM Vol. 2A): compares RDX:RAX with the 16 bytes at m128; if
//! equal, ZF is set and RCX:RBX is stored, else ZF is cleared and the memory value is loaded
//! into RDX:RAX. The operand must be 16-byte aligned (#GP(0)). The access is always a write
//! (the processor writes back the old value on a mismatch), and it is performed with the
//! host's own LOCK CMPXCHG16B on the identity-mapped guest address, so it is atomic against
//! every other guest thread with or without the LOCK prefix.

use super::hostop::check_level;
use super::Handler;
use crate::exception::Result;
use crate::flags::ZF;
use crate::{Cpu, Exception};
use cetbox_mem::Access;
use iced_x86::{Code, Instruction};

pub fn lookup(code: Code) -> Option<Handler> {
    (code == Code::Cmpxchg16b_m128).then_some(cmpxchg16b as Handler)
}

fn cmpxchg16b(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    check_level(cpu, i)?;
    let addr = cpu.ea(i);
    if addr & 15 != 0 {
        return Err(Exception::GeneralProtection);
    }
    cpu.mem.check(addr, 16, Access::Write)?;
    let (mut lo, mut hi) = (cpu.gpr[0], cpu.gpr[2]);
    let (new_lo, new_hi) = (cpu.gpr[3], cpu.gpr[1]);
    let z: u8;
    // SAFETY: the 16 bytes at `addr` were checked writable guest memory (the host maps them
    // read-write at the same address) and the address is 16-byte aligned. RBX cannot be an asm
    // operand, so the new low half travels in another register and is swapped in and out.
    unsafe {
        core::arch::asm!(
            "xchg {t}, rbx",
            "lock cmpxchg16b [{p}]",
            "sete {z}",
            "mov rbx, {t}",
            p = in(reg) addr,
            t = inout(reg) new_lo => _,
            z = out(reg_byte) z,
            inout("rax") lo,
            inout("rdx") hi,
            in("rcx") new_hi,
            options(nostack),
        );
    }
    if z == 0 {
        cpu.gpr[0] = lo;
        cpu.gpr[2] = hi;
    }
    let _ = (&mut lo, &mut hi);
    cpu.flags.set_bits(ZF, z != 0);
    Ok(())
}
