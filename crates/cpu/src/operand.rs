//! Operand access for instruction handlers: registers by iced `Register`, effective addresses,
//! and generic read/write of an instruction's operands.

use crate::exception::Result;
use crate::{Cpu, Exception};
use iced_x86::{Instruction, OpKind, Register, UsedMemory};

const AL: u32 = Register::AL as u32;
const AX: u32 = Register::AX as u32;
const EAX: u32 = Register::EAX as u32;
const RAX: u32 = Register::RAX as u32;
const R15: u32 = Register::R15 as u32;
const XMM0: u32 = Register::XMM0 as u32;

/// The register index of an iced XMM register.
#[inline(always)]
pub fn xmm_index(r: Register) -> usize {
    (r as u32 - XMM0) as usize & 15
}

/// Mask of the low `size` bytes.
#[inline(always)]
pub fn size_mask(size: u32) -> u64 {
    if size >= 8 {
        u64::MAX
    } else {
        (1u64 << (size * 8)) - 1
    }
}

/// Sign-extends the low `size` bytes of `v`.
#[inline(always)]
pub fn sign_extend(v: u64, size: u32) -> u64 {
    let sh = 64 - size * 8;
    (((v << sh) as i64) >> sh) as u64
}

impl Cpu {
    /// Reads a general-purpose register of any width, zero-extended.
    #[inline(always)]
    pub fn get_reg(&self, r: Register) -> u64 {
        let n = r as u32;
        if n >= RAX {
            if n <= R15 {
                return self.gpr[(n - RAX) as usize];
            }
            return match r {
                Register::RIP => self.rip,
                Register::EIP => self.rip & 0xffff_ffff,
                Register::FS
                | Register::GS
                | Register::ES
                | Register::CS
                | Register::SS
                | Register::DS => self.segment_selector(r),
                _ => 0,
            };
        }
        if n >= EAX {
            return self.gpr[(n - EAX) as usize] & 0xffff_ffff;
        }
        if n >= AX {
            return self.gpr[(n - AX) as usize] & 0xffff;
        }
        let i = n - AL;
        if (4..8).contains(&i) {
            // AH, CH, DH, BH.
            return (self.gpr[(i - 4) as usize] >> 8) & 0xff;
        }
        let i = if i >= 8 { i - 4 } else { i };
        self.gpr[i as usize] & 0xff
    }

    /// Writes a general-purpose register with x86 rules: 32-bit writes zero the upper half,
    /// 8- and 16-bit writes merge.
    #[inline(always)]
    pub fn set_reg(&mut self, r: Register, v: u64) {
        let n = r as u32;
        if n >= RAX {
            if n <= R15 {
                self.gpr[(n - RAX) as usize] = v;
            }
            return;
        }
        if n >= EAX {
            self.gpr[(n - EAX) as usize] = v & 0xffff_ffff;
            return;
        }
        if n >= AX {
            let g = &mut self.gpr[(n - AX) as usize];
            *g = (*g & !0xffff) | (v & 0xffff);
            return;
        }
        let i = n - AL;
        if (4..8).contains(&i) {
            let g = &mut self.gpr[(i - 4) as usize];
            *g = (*g & !0xff00) | ((v & 0xff) << 8);
            return;
        }
        let i = if i >= 8 { i - 4 } else { i };
        let g = &mut self.gpr[i as usize];
        *g = (*g & !0xff) | (v & 0xff);
    }

    /// Segment selectors as Linux sets them for 64-bit user code.
    pub fn segment_selector(&self, r: Register) -> u64 {
        match r {
            Register::CS => 0x33,
            Register::SS => 0x2b,
            _ => 0,
        }
    }

    /// The linear address of the memory operand (segment base included).
    #[inline(always)]
    pub fn ea(&self, i: &Instruction) -> u64 {
        let a = self.offset(i);
        match i.memory_segment() {
            Register::FS => a.wrapping_add(self.fs_base),
            Register::GS => a.wrapping_add(self.gs_base),
            _ => a,
        }
    }

    /// The linear address of a memory access iced-x86 lists for an instruction
    /// (`InstructionInfo::used_memory`), with this CPU's registers and FS/GS bases (the other
    /// segments have base 0 in 64-bit mode); None if iced-x86 cannot compute it.
    pub fn used_memory_address(&self, m: &UsedMemory) -> Option<u64> {
        m.virtual_address(0, |reg, _, _| {
            Some(match reg {
                Register::FS => self.fs_base,
                Register::GS => self.gs_base,
                Register::ES | Register::CS | Register::SS | Register::DS => 0,
                r => self.get_reg(r),
            })
        })
    }

    /// The memory operand's effective address without a segment base (what LEA computes),
    /// truncated to 32 bits with a 32-bit address size.
    #[inline(always)]
    pub fn offset(&self, i: &Instruction) -> u64 {
        let base = i.memory_base();
        let mut a = i.memory_displacement64();
        if base != Register::None && base != Register::RIP && base != Register::EIP {
            a = a.wrapping_add(self.get_reg(base));
        }
        let index = i.memory_index();
        if index != Register::None {
            a = a.wrapping_add(
                self.get_reg(index)
                    .wrapping_mul(i.memory_index_scale() as u64),
            );
        }
        if (base as u32) >= EAX && (base as u32) < RAX
            || (index as u32) >= EAX && (index as u32) < RAX
            || base == Register::EIP
        {
            a &= 0xffff_ffff;
        }
        a
    }

    /// Size in bytes of operand `n` (register, memory or immediate).
    #[inline(always)]
    pub fn op_size(&self, i: &Instruction, n: u32) -> u32 {
        match i.op_kind(n) {
            OpKind::Register => reg_size(i.op_register(n)),
            OpKind::Memory => i.memory_size().size() as u32,
            OpKind::Immediate8 => 1,
            OpKind::Immediate16 | OpKind::Immediate8to16 => 2,
            OpKind::Immediate32 | OpKind::Immediate8to32 => 4,
            _ => 8,
        }
    }

    /// Reads operand `n` (register, memory of `size` bytes, or immediate), zero-extended.
    #[inline(always)]
    pub fn read_op(&self, i: &Instruction, n: u32, size: u32) -> Result<u64> {
        match i.op_kind(n) {
            OpKind::Register => Ok(self.get_reg(i.op_register(n))),
            OpKind::Memory => Ok(self.mem.read_sized(self.ea(i), size)?),
            _ => Ok(i.immediate(n) & size_mask(size)),
        }
    }

    /// The load of a non-atomic read-modify-write of `size` bytes at `addr`: a fault is the
    /// write's (`Exception::rmw_fault`).
    #[inline(always)]
    pub fn read_rmw(&self, addr: u64, size: u32) -> Result<u64> {
        self.mem
            .read_sized(addr, size)
            .map_err(|f| Exception::from(f).rmw_fault(&self.mem, addr, size as u64))
    }

    /// Writes operand `n` (register or memory of `size` bytes).
    #[inline(always)]
    pub fn write_op(&mut self, i: &Instruction, n: u32, size: u32, v: u64) -> Result<()> {
        match i.op_kind(n) {
            OpKind::Register => {
                self.set_reg(i.op_register(n), v);
                Ok(())
            }
            OpKind::Memory => Ok(self.mem.write_sized(self.ea(i), size, v)?),
            _ => Err(Exception::InvalidOpcode(crate::UdReason::Architectural)),
        }
    }

    /// Pushes 8 bytes on the normal stack.
    #[inline(always)]
    pub fn push64(&mut self, v: u64) -> Result<()> {
        let sp = self.gpr[4].wrapping_sub(8);
        self.mem.write_u64(sp, v)?;
        self.gpr[4] = sp;
        Ok(())
    }

    /// Pops 8 bytes from the normal stack.
    #[inline(always)]
    pub fn pop64(&mut self) -> Result<u64> {
        let v = self.mem.read_u64(self.gpr[4])?;
        self.gpr[4] = self.gpr[4].wrapping_add(8);
        Ok(v)
    }

    #[inline(always)]
    pub fn xmm(&self, r: Register) -> u128 {
        self.sse.xmm[xmm_index(r)]
    }

    #[inline(always)]
    pub fn set_xmm(&mut self, r: Register, v: u128) {
        self.sse.xmm[xmm_index(r)] = v;
    }
}

/// Size in bytes of a general-purpose register.
#[inline(always)]
pub fn reg_size(r: Register) -> u32 {
    let n = r as u32;
    if (RAX..=R15).contains(&n) || r == Register::RIP {
        8
    } else if (EAX..RAX).contains(&n) || r == Register::EIP {
        4
    } else if (AX..EAX).contains(&n) {
        2
    } else if (AL..AX).contains(&n) {
        1
    } else if (XMM0..XMM0 + 32).contains(&n) {
        16
    } else {
        8
    }
}

/// Whether an operand is an immediate of any width (iced-x86's immediate operand kinds,
/// ENTER's second immediate included).
pub fn is_immediate(k: OpKind) -> bool {
    matches!(
        k,
        OpKind::Immediate8
            | OpKind::Immediate8_2nd
            | OpKind::Immediate16
            | OpKind::Immediate32
            | OpKind::Immediate64
            | OpKind::Immediate8to16
            | OpKind::Immediate8to32
            | OpKind::Immediate8to64
            | OpKind::Immediate32to64
    )
}
