//! The CET shadow-stack instructions (Intel SDM Vol. 2A-2C, by mnemonic; Vol. 1 ch. 18) and
//! their disabled-state behaviour (docs/acceptance.md, CPU vectors 1-4 and 29-33).

use super::Handler;
use crate::exception::Result;
use crate::{is_canonical, CpCode, Cpu, Exception, UdReason};
use iced_x86::{Code, Instruction, Register};

pub fn lookup(code: Code) -> Option<Handler> {
    Some(match code {
        Code::Rdsspd_r32 | Code::Rdsspq_r64 => rdssp,
        Code::Incsspd_r32 | Code::Incsspq_r64 => incssp,
        Code::Rstorssp_m64 => rstorssp,
        Code::Saveprevssp => saveprevssp,
        Code::Wrssd_m32_r32 | Code::Wrssq_m64_r64 => wrss,
        Code::Wrussd_m32_r32 | Code::Wrussq_m64_r64 => wruss,
        Code::Setssbsy | Code::Clrssbsy_m64 => supervisor_only,
        // No user IBT on Linux: landing pads are NOPs; reserved NOPs never access memory.
        Code::Endbr64 | Code::Endbr32 => nop,
        Code::Reservednop_rm16_r16_0F1E
        | Code::Reservednop_rm32_r32_0F1E
        | Code::Reservednop_rm64_r64_0F1E => nop,
        _ => return None,
    })
}

fn ud() -> Exception {
    Exception::InvalidOpcode(UdReason::Architectural)
}

fn nop(_: &mut Cpu, _: &Instruction) -> Result<()> {
    Ok(())
}

/// RDSSP: reads SSP when enabled; otherwise a NOP that leaves the destination untouched.
fn rdssp(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    if cpu.cet.shstk_enabled() {
        let r: Register = i.op0_register();
        cpu.set_reg(r, cpu.cet.ssp); // a 32-bit destination zero-extends
    }
    Ok(())
}

/// INCSSP: pops n = r[7:0] entries after reading the first and the last of them.
fn incssp(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    if !cpu.cet.shstk_enabled() {
        return Err(ud());
    }
    let sz: u64 = if i.code() == Code::Incsspq_r64 { 8 } else { 4 };
    let n = cpu.get_reg(i.op0_register()) & 0xff;
    let ssp = cpu.cet.ssp;
    shadow_load(cpu, ssp, sz)?;
    if n > 0 {
        shadow_load(cpu, ssp.wrapping_add((n - 1) * sz), sz)?;
    }
    cpu.cet.ssp = ssp.wrapping_add(n * sz);
    Ok(())
}

fn shadow_load(cpu: &Cpu, addr: u64, sz: u64) -> Result<u64> {
    if !is_canonical(addr) {
        return Err(Exception::GeneralProtection);
    }
    Ok(cpu.mem.shadow_read(addr, sz as u32)?)
}

/// RSTORSSP m64: switches SSP to the stack whose restore token is at the operand.
fn rstorssp(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    if !cpu.cet.shstk_enabled() {
        return Err(ud());
    }
    let la = cpu.ea(i);
    if !is_canonical(la) || la & 7 != 0 {
        return Err(Exception::GeneralProtection);
    }
    let prev = cpu.cet.ssp | 3;
    let valid = |tok: u64| tok & 3 == 1 && (tok & !7).wrapping_sub(8) == la;
    // Locked read-modify-write: the token is replaced only if valid, else written back as is.
    let tok = cpu
        .mem
        .shadow_cmpxchg(la, |tok| if valid(tok) { prev } else { tok })?;
    if !valid(tok) {
        return Err(Exception::ControlProtection(CpCode::Rstorssp));
    }
    cpu.last_rstorssp = Some(crate::state::SsSwitch {
        rip: i.ip(),
        from_ssp: cpu.cet.ssp,
        to_ssp: la,
        at: cpu.icount,
    });
    cpu.cet.ssp = la;
    let cf = tok & 4 != 0;
    cpu.flags.set_arith(cf, false, false, false, false, false);
    Ok(())
}

/// SAVEPREVSSP: turns the previous-ssp token left by RSTORSSP into a restore token on the
/// previous stack.
fn saveprevssp(cpu: &mut Cpu, _: &Instruction) -> Result<()> {
    if !cpu.cet.shstk_enabled() {
        return Err(ud());
    }
    let ssp = cpu.cet.ssp;
    if ssp & 7 != 0 {
        return Err(Exception::GeneralProtection);
    }
    let ptok = shadow_load(cpu, ssp, 8)?;
    if cpu.flags.cf() || ptok & 2 == 0 {
        return Err(Exception::GeneralProtection);
    }
    let old = ptok & !3;
    let hole = old.wrapping_sub(4);
    let slot = (old & !7).wrapping_sub(8);
    if !is_canonical(hole) || !is_canonical(slot) {
        return Err(Exception::GeneralProtection);
    }
    // Check both stores before making either.
    cpu.mem.check(hole, 4, cetbox_mem::Access::ShadowWrite)?;
    cpu.mem.check(slot, 8, cetbox_mem::Access::ShadowWrite)?;
    cpu.mem.shadow_write(hole, 4, 0)?;
    cpu.mem.shadow_write(slot, 8, old | 1)?;
    cpu.cet.ssp = ssp + 8;
    Ok(())
}

/// WRSS: a user write to shadow-stack memory, allowed only with WR_SHSTK_EN.
fn wrss(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    if !cpu.cet.wrss_enabled() {
        return Err(ud());
    }
    let sz: u64 = if i.code() == Code::Wrssq_m64_r64 {
        8
    } else {
        4
    };
    let la = cpu.ea(i);
    if !is_canonical(la) || la & (sz - 1) != 0 {
        return Err(Exception::GeneralProtection);
    }
    let v = cpu.get_reg(i.op1_register());
    cpu.mem.shadow_write(la, sz as u32, v)?;
    Ok(())
}

/// WRUSS is CPL-0 only: #GP at CPL 3 when CR4.CET is set, else #UD.
fn wruss(cpu: &mut Cpu, _: &Instruction) -> Result<()> {
    if cpu.config.cet {
        Err(Exception::GeneralProtection)
    } else {
        Err(ud())
    }
}

/// SETSSBSY/CLRSSBSY: #UD because Linux never enables supervisor shadow stacks (Intel SDM
/// Vol. 2B SETSSBSY, Vol. 2A CLRSSBSY: #UD while IA32_S_CET.SH_STK_EN = 0).
fn supervisor_only(_: &mut Cpu, _: &Instruction) -> Result<()> {
    Err(ud())
}
