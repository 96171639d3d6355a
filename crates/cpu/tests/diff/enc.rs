//! A tiny x86-64 encoder for the forms table: legacy prefixes, REX, opcode, ModRM/SIB,
//! displacement, immediate. Enough for every form the table lists; iced decodes each result
//! when the table is built, so a wrong encoding is caught there.

pub const RAX: u8 = 0;
pub const RCX: u8 = 1;
pub const RDX: u8 = 2;
pub const RBX: u8 = 3;
pub const RSP: u8 = 4;
pub const RBP: u8 = 5;
pub const RSI: u8 = 6;
pub const RDI: u8 = 7;
pub const R8: u8 = 8;
pub const R9: u8 = 9;
pub const R10: u8 = 10;
pub const R11: u8 = 11;
pub const R12: u8 = 12;
pub const R13: u8 = 13;
pub const R14: u8 = 14;
pub const R15: u8 = 15;

/// The r/m operand of a ModRM instruction.
#[derive(Clone, Copy, Debug)]
pub enum Rm {
    /// A register (mod = 11).
    R(u8),
    /// [base + disp].
    M(u8, i32),
    /// [base + index * (1 << scale) + disp].
    Sib(u8, u8, u8, i32),
    /// [rip + disp32].
    Rip(i32),
}

impl Rm {
    pub fn is_mem(&self) -> bool {
        !matches!(self, Rm::R(_))
    }
}

/// Encodes prefixes, REX (W as given, forced when `force_rex` so that byte registers 4..7 mean
/// SPL..DIL), opcode bytes, ModRM with `reg` (a register number or an opcode extension), the
/// r/m operand and the immediate bytes.
pub fn modrm(
    pfx: &[u8],
    w: bool,
    force_rex: bool,
    op: &[u8],
    reg: u8,
    rm: Rm,
    imm: &[u8],
) -> Vec<u8> {
    let mut rex = 0x40u8 | ((w as u8) << 3) | (((reg >> 3) & 1) << 2);
    match rm {
        Rm::R(r) | Rm::M(r, _) => rex |= (r >> 3) & 1,
        Rm::Sib(b, i, _, _) => rex |= ((b >> 3) & 1) | (((i >> 3) & 1) << 1),
        Rm::Rip(_) => {}
    }
    let mut out = Vec::with_capacity(16);
    out.extend_from_slice(pfx);
    if rex != 0x40 || force_rex {
        out.push(rex);
    }
    out.extend_from_slice(op);
    let r = (reg & 7) << 3;
    let disp_mode = |base: u8, d: i32| -> (u8, Vec<u8>) {
        if d == 0 && base & 7 != 5 {
            (0x00, vec![])
        } else if (-128..=127).contains(&d) {
            (0x40, vec![d as i8 as u8])
        } else {
            (0x80, d.to_le_bytes().to_vec())
        }
    };
    match rm {
        Rm::R(x) => out.push(0xc0 | r | (x & 7)),
        Rm::M(b, d) => {
            let (m, dd) = disp_mode(b, d);
            if b & 7 == 4 {
                out.push(m | r | 4);
                out.push(0x24);
            } else {
                out.push(m | r | (b & 7));
            }
            out.extend(dd);
        }
        Rm::Sib(b, i, s, d) => {
            assert!(i != RSP, "rsp cannot be an index");
            let (m, dd) = disp_mode(b, d);
            out.push(m | r | 4);
            out.push((s << 6) | ((i & 7) << 3) | (b & 7));
            out.extend(dd);
        }
        Rm::Rip(d) => {
            out.push(r | 5);
            out.extend(d.to_le_bytes());
        }
    }
    out.extend_from_slice(imm);
    out
}

/// An instruction whose opcode carries the register (`op + (r & 7)`): PUSH/POP r, BSWAP,
/// XCHG with rAX, MOV r, imm.
pub fn opreg(pfx: &[u8], w: bool, op: &[u8], r: u8, imm: &[u8]) -> Vec<u8> {
    let mut out = pfx.to_vec();
    let rex = 0x40 | ((w as u8) << 3) | ((r >> 3) & 1);
    if rex != 0x40 {
        out.push(rex);
    }
    let (last, head) = op.split_last().expect("opcode");
    out.extend_from_slice(head);
    out.push(last + (r & 7));
    out.extend_from_slice(imm);
    out
}

/// The operand-size prefix and REX.W for an integer operand of `size` bytes.
pub fn osz(size: u8) -> (&'static [u8], bool) {
    match size {
        2 => (&[0x66], false),
        8 => (&[], true),
        _ => (&[], false),
    }
}

/// An immediate of `size` bytes (at most 4: x86 has imm64 only for MOV r64).
pub fn imm(v: i64, size: u8) -> Vec<u8> {
    v.to_le_bytes()[..size as usize].to_vec()
}
