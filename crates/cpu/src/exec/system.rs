//! SYSCALL, CPUID, timestamps, fences, hints, NOPs, and the trapping instructions.

use super::Handler;
use crate::exception::Result;
use crate::{Cpu, Exception, UdReason};
use iced_x86::{Code, Instruction};

pub fn lookup(code: Code) -> Option<Handler> {
    Some(match code {
        Code::Syscall => syscall,
        Code::Cpuid => cpuid,
        Code::Rdtsc => rdtsc,
        Code::Rdtscp => rdtscp,
        Code::Lfence | Code::Sfence | Code::Mfence => fence,
        Code::Pause
        | Code::Nopw
        | Code::Nopd
        | Code::Nopq
        | Code::Nop_rm16
        | Code::Nop_rm32
        | Code::Nop_rm64 => nop,
        Code::Prefetchnta_m8 | Code::Prefetcht0_m8 | Code::Prefetcht1_m8 | Code::Prefetcht2_m8 => {
            nop
        }
        Code::Reservednop_rm16_r16_0F0D
        | Code::Reservednop_rm32_r32_0F0D
        | Code::Reservednop_rm64_r64_0F0D => nop,
        Code::Reservednop_rm16_r16_0F18
        | Code::Reservednop_rm32_r32_0F18
        | Code::Reservednop_rm64_r64_0F18 => nop,
        Code::Reservednop_rm16_r16_0F19
        | Code::Reservednop_rm32_r32_0F19
        | Code::Reservednop_rm64_r64_0F19 => nop,
        Code::Reservednop_rm16_r16_0F1A
        | Code::Reservednop_rm32_r32_0F1A
        | Code::Reservednop_rm64_r64_0F1A => nop,
        Code::Reservednop_rm16_r16_0F1B
        | Code::Reservednop_rm32_r32_0F1B
        | Code::Reservednop_rm64_r64_0F1B => nop,
        Code::Reservednop_rm16_r16_0F1C
        | Code::Reservednop_rm32_r32_0F1C
        | Code::Reservednop_rm64_r64_0F1C => nop,
        Code::Reservednop_rm16_r16_0F1D
        | Code::Reservednop_rm32_r32_0F1D
        | Code::Reservednop_rm64_r64_0F1D => nop,
        Code::Reservednop_rm16_r16_0F1F
        | Code::Reservednop_rm32_r32_0F1F
        | Code::Reservednop_rm64_r64_0F1F => nop,
        Code::Clflush_m8 => clflush,
        Code::Ud2 | Code::Ud0 | Code::Ud0_r16_rm16 | Code::Ud0_r32_rm32 | Code::Ud0_r64_rm64 => ud,
        Code::Ud1_r16_rm16 | Code::Ud1_r32_rm32 | Code::Ud1_r64_rm64 => ud,
        Code::Int3 => int3,
        Code::Int_imm8 => int_n,
        Code::Int1 | Code::Hlt | Code::Cli | Code::Sti | Code::Into => privileged,
        // CPL 3 with IOPL 0 (SDM Vol. 3A §6.15 "#GP", Vol. 1 §19.5 I/O privilege): I/O ports,
        // MSRs, control and debug registers, descriptor tables, caches, TLBs, RDPMC without
        // CR4.PCE (Linux leaves it clear unless a perf mmap asks), SWAPGS/SYSRET/SYSEXIT.
        Code::In_AL_imm8
        | Code::In_AX_imm8
        | Code::In_EAX_imm8
        | Code::In_AL_DX
        | Code::In_AX_DX
        | Code::In_EAX_DX
        | Code::Out_imm8_AL
        | Code::Out_imm8_AX
        | Code::Out_imm8_EAX
        | Code::Out_DX_AL
        | Code::Out_DX_AX
        | Code::Out_DX_EAX
        | Code::Insb_m8_DX
        | Code::Insw_m16_DX
        | Code::Insd_m32_DX
        | Code::Outsb_DX_m8
        | Code::Outsw_DX_m16
        | Code::Outsd_DX_m32
        | Code::Rdmsr
        | Code::Wrmsr
        | Code::Rdpmc
        | Code::Mov_cr_r64
        | Code::Mov_r64_cr
        | Code::Mov_dr_r64
        | Code::Mov_r64_dr
        | Code::Lgdt_m1664
        | Code::Lidt_m1664
        | Code::Lldt_rm16
        | Code::Lldt_r32m16
        | Code::Lldt_r64m16
        | Code::Ltr_rm16
        | Code::Ltr_r32m16
        | Code::Ltr_r64m16
        | Code::Lmsw_rm16
        | Code::Lmsw_r32m16
        | Code::Lmsw_r64m16
        | Code::Clts
        | Code::Invd
        | Code::Wbinvd
        | Code::Wbnoinvd
        | Code::Invlpg_m
        | Code::Swapgs
        | Code::Sysretd
        | Code::Sysretq
        | Code::Sysexitd
        | Code::Sysexitq => privileged,
        _ => return None,
    })
}

/// SYSCALL: the CPU saves the return address in RCX and RFLAGS in R11; the run loop then leaves
/// to the operating system.
fn syscall(cpu: &mut Cpu, _: &Instruction) -> Result<()> {
    cpu.gpr[1] = cpu.rip;
    cpu.gpr[11] = cpu.rflags();
    Ok(())
}

fn cpuid(cpu: &mut Cpu, _: &Instruction) -> Result<()> {
    let (a, b, c, d) = crate::cpuid::cpuid(&cpu.config, cpu.gpr[0] as u32, cpu.gpr[1] as u32);
    cpu.gpr[0] = a as u64;
    cpu.gpr[3] = b as u64;
    cpu.gpr[1] = c as u64;
    cpu.gpr[2] = d as u64;
    Ok(())
}

/// The time-stamp counter: nanoseconds since an arbitrary start (a 1 GHz invariant TSC).
fn tsc() -> u64 {
    use std::sync::OnceLock;
    use std::time::Instant;
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

fn rdtsc(cpu: &mut Cpu, _: &Instruction) -> Result<()> {
    let t = tsc();
    cpu.gpr[0] = t & 0xffff_ffff;
    cpu.gpr[2] = t >> 32;
    Ok(())
}

fn rdtscp(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    rdtsc(cpu, i)?;
    cpu.gpr[1] = 0; // IA32_TSC_AUX: CPU 0
    Ok(())
}

fn fence(_: &mut Cpu, _: &Instruction) -> Result<()> {
    std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
    Ok(())
}

fn nop(_: &mut Cpu, _: &Instruction) -> Result<()> {
    Ok(())
}

/// CLFLUSH checks its operand like a read but has no other visible effect.
fn clflush(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    cpu.mem.check(cpu.ea(i), 1, cetbox_mem::Access::Read)?;
    Ok(())
}

fn ud(_: &mut Cpu, _: &Instruction) -> Result<()> {
    Err(Exception::InvalidOpcode(UdReason::Architectural))
}

fn int3(_: &mut Cpu, _: &Instruction) -> Result<()> {
    Err(Exception::Breakpoint)
}

/// INT n: only vector 0x80 has a gate user code may use (Linux's 32-bit system calls).
fn int_n(_: &mut Cpu, i: &Instruction) -> Result<()> {
    if i.immediate8() == 0x80 {
        Err(Exception::SystemCallGate)
    } else {
        Err(Exception::GeneralProtection)
    }
}

/// Instructions that fault at CPL 3 (HLT, CLI, STI) or use a gate user code cannot reach.
fn privileged(_: &mut Cpu, _: &Instruction) -> Result<()> {
    Err(Exception::GeneralProtection)
}
