//! Bit tests (BT BTS BTR BTC), bit scans (BSF BSR, and the F3-prefixed TZCNT/LZCNT encodings,
//! which a CPU without BMI1/ABM executes as BSF/BSR) and BSWAP.

use super::Handler;
use crate::exception::Result;
use crate::flags::{parity, CF};
use crate::operand::{sign_extend, size_mask};
use crate::Cpu;
use iced_x86::{Code, Instruction, Mnemonic, OpKind};

const BT: u8 = 0;
const BTS: u8 = 1;
const BTR: u8 = 2;
const BTC: u8 = 3;

pub fn lookup(code: Code) -> Option<Handler> {
    Some(match code.mnemonic() {
        Mnemonic::Bt => bt::<BT>,
        Mnemonic::Bts => bt::<BTS>,
        Mnemonic::Btr => bt::<BTR>,
        Mnemonic::Btc => bt::<BTC>,
        Mnemonic::Bsf | Mnemonic::Tzcnt => bsf,
        Mnemonic::Bsr | Mnemonic::Lzcnt => bsr,
        Mnemonic::Bswap => bswap,
        _ => return None,
    })
}

#[inline(always)]
fn apply<const OP: u8>(v: u64, bit: u32) -> u64 {
    let m = 1u64 << bit;
    match OP {
        BTS => v | m,
        BTR => v & !m,
        BTC => v ^ m,
        _ => v,
    }
}

/// Flags after a bit test: CF is the bit; ZF is kept; OF, SF, AF and PF are undefined and the
/// host leaves them unchanged.
#[inline(always)]
fn bt_flags(cpu: &mut Cpu, bit: bool) {
    cpu.flags.set_bits(CF, bit);
}

fn bt<const OP: u8>(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    let size = cpu.op_size(i, 0);
    let w = size * 8;
    let raw = if i.op1_kind() == OpKind::Register {
        cpu.get_reg(i.op1_register())
    } else {
        i.immediate8() as u64
    };
    if i.op0_kind() == OpKind::Register {
        let r = i.op0_register();
        let bit = (raw & (w as u64 - 1)) as u32;
        let v = cpu.get_reg(r);
        if OP != BT {
            cpu.set_reg(r, apply::<OP>(v, bit));
        }
        bt_flags(cpu, (v >> bit) & 1 != 0);
        return Ok(());
    }
    let mut addr = cpu.ea(i);
    let bit;
    if i.op1_kind() == OpKind::Register {
        // A register offset is a signed bit index that may address memory outside the operand:
        // the CPU reads the operand-sized unit holding that bit.
        let off = sign_extend(raw, size) as i64;
        let unit = off >> w.trailing_zeros();
        addr = addr.wrapping_add((unit as u64).wrapping_mul(size as u64));
        bit = (off & (w as i64 - 1)) as u32;
    } else {
        bit = (raw & (w as u64 - 1)) as u32;
    }
    let old = if OP == BT {
        cpu.mem.read_sized(addr, size)?
    } else if i.has_lock_prefix() {
        cpu.mem
            .atomic_rmw(addr, size, &mut |v| Some(apply::<OP>(v, bit)))?
    } else {
        let v = cpu.read_rmw(addr, size)?;
        cpu.mem.write_sized(addr, size, apply::<OP>(v, bit))?;
        v
    };
    bt_flags(cpu, (old >> bit) & 1 != 0);
    Ok(())
}

/// Flags after BSF/BSR: ZF says whether the source was zero. CF, OF, SF, AF and PF are
/// undefined in the SDM; the host clears all but PF, which is the parity of the bit index
/// (of 0 for a zero source).
#[inline(always)]
fn scan_flags(cpu: &mut Cpu, src: u64, index: u64) {
    cpu.flags
        .set_arith(false, parity(index), false, src == 0, false, false);
}

pub(crate) fn bsf(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    scan(cpu, i, |src| src.trailing_zeros() as u64)
}

pub(crate) fn bsr(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    scan(cpu, i, |src| 63 - src.leading_zeros() as u64)
}

/// BSF/BSR: `index` finds the bit in a non-zero source; a zero source leaves the destination.
#[inline(always)]
fn scan(cpu: &mut Cpu, i: &Instruction, index: impl Fn(u64) -> u64) -> Result<()> {
    let size = cpu.op_size(i, 0);
    let src = cpu.read_op(i, 1, size)? & size_mask(size);
    let index = if src != 0 { index(src) } else { 0 };
    if src != 0 {
        cpu.set_reg(i.op0_register(), index);
    }
    scan_flags(cpu, src, index);
    Ok(())
}

fn bswap(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    let r = i.op0_register();
    let v = cpu.get_reg(r);
    let out = match i.code() {
        Code::Bswap_r64 => v.swap_bytes(),
        Code::Bswap_r32 => (v as u32).swap_bytes() as u64,
        // BSWAP r16 is undefined in the SDM; the host clears the register's low 16 bits.
        _ => 0,
    };
    cpu.set_reg(r, out);
    Ok(())
}
