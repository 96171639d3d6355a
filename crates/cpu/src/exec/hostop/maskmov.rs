//! AVX/AVX2 masked moves (VMASKMOVPS/PD, VPMASKMOVD/Q; SDM Vol. 2B): only the elements whose
//! mask bit (the element's most significant bit) is set are accessed, so only those can fault.
//! Loads zero the other elements; stores leave the other bytes of memory untouched. Every
//! selected element is checked before anything is written, so a fault commits nothing.

use super::{check_level, set_ymm_bytes, vec_index, ymm_bytes};
use crate::exception::Result;
use crate::exec::Handler;
use crate::Cpu;
use cetbox_mem::Access;
use iced_x86::{Code, Instruction, Mnemonic, OpKind};

pub fn lookup(code: Code) -> Option<Handler> {
    matches!(
        code.mnemonic(),
        Mnemonic::Vmaskmovps
            | Mnemonic::Vmaskmovpd
            | Mnemonic::Vpmaskmovd
            | Mnemonic::Vpmaskmovq
            | Mnemonic::Vmaskmovdqu
    )
    .then_some(maskmov as Handler)
}

fn maskmov(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    check_level(cpu, i)?;
    if i.mnemonic() == Mnemonic::Vmaskmovdqu {
        return maskmovdqu(cpu, i);
    }
    let es = match i.mnemonic() {
        Mnemonic::Vmaskmovps | Mnemonic::Vpmaskmovd => 4,
        _ => 8,
    };
    let store = i.op0_kind() == OpKind::Memory;
    let data_reg = if store {
        i.op2_register()
    } else {
        i.op0_register()
    };
    let vl = if data_reg.is_ymm() { 32 } else { 16 };
    let mask = ymm_bytes(cpu, vec_index(i.op1_register()));
    let addr = cpu.ea(i);
    let on = |j: usize| mask[j * es + es - 1] & 0x80 != 0;
    let n = vl / es;
    if store {
        let src = ymm_bytes(cpu, vec_index(data_reg));
        for j in (0..n).filter(|&j| on(j)) {
            cpu.mem
                .check(addr.wrapping_add((j * es) as u64), es as u64, Access::Write)?;
        }
        for j in (0..n).filter(|&j| on(j)) {
            cpu.mem.write_bytes(
                addr.wrapping_add((j * es) as u64),
                &src[j * es..(j + 1) * es],
            )?;
        }
    } else {
        let mut out = [0u8; 32];
        for j in (0..n).filter(|&j| on(j)) {
            cpu.mem.read_bytes(
                addr.wrapping_add((j * es) as u64),
                &mut out[j * es..(j + 1) * es],
            )?;
        }
        set_ymm_bytes(cpu, vec_index(data_reg), &out);
    }
    Ok(())
}

/// VMASKMOVDQU xmm1, xmm2: the bytes of xmm1 whose byte in xmm2 has its top bit set are
/// stored at [RDI] (DS, or the segment override).
fn maskmovdqu(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    let src = ymm_bytes(cpu, vec_index(i.op1_register()));
    let mask = ymm_bytes(cpu, vec_index(i.op2_register()));
    let addr = cpu.ea(i);
    for j in (0..16).filter(|&j| mask[j] & 0x80 != 0) {
        cpu.mem
            .check(addr.wrapping_add(j as u64), 1, Access::Write)?;
    }
    for j in (0..16).filter(|&j| mask[j] & 0x80 != 0) {
        cpu.mem
            .write_bytes(addr.wrapping_add(j as u64), &src[j..j + 1])?;
    }
    Ok(())
}
