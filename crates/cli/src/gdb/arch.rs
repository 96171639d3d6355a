//! The x86-64 Linux register set gdb expects, described by a target description: the
//! features of gdb's own amd64 Linux descriptions (gdb/features/i386/64bit-core.xml,
//! 64bit-sse.xml, 64bit-linux.xml, 64bit-segments.xml) plus the shadow-stack pointer in
//! `org.gnu.gdb.i386.pl3_ssp` (64bit-ssp.xml, GDB 15), which GDB 15+ shows as `$pl3_ssp`.
//! Register numbers are positions in this description, as in gdb's amd64 numbering.

use cetbox_linux::debug::regs::Regs;
use gdbstub::arch::{Arch, RegId, Registers};
use std::num::NonZeroUsize;

/// Register numbers (gdb's amd64 order).
pub const RIP: usize = 16;
pub const EFLAGS: usize = 17;
pub const ST0: usize = 24;
pub const XMM0: usize = 40;
pub const MXCSR: usize = 56;
pub const ORIG_RAX: usize = 57;
pub const FS_BASE: usize = 58;
pub const GS_BASE: usize = 59;
pub const PL3_SSP: usize = 60;
pub const COUNT: usize = 61;

/// gdb's rax, rbx, rcx, rdx, rsi, rdi, rbp, rsp as indices into `Cpu::gpr` (x86 encoding order).
const GPR_ORDER: [usize; 8] = [0, 3, 1, 2, 6, 7, 5, 4];

/// The size in bytes of register `n`.
pub fn size(n: usize) -> usize {
    match n {
        0..=16 => 8,
        17..=23 => 4,
        24..=31 => 10,
        32..=39 => 4,
        40..=55 => 16,
        56 => 4,
        57..=60 => 8,
        _ => 0,
    }
}

fn gpr_index(n: usize) -> usize {
    if n < 8 {
        GPR_ORDER[n]
    } else {
        n
    }
}

/// Register `n`'s bytes (little-endian), or None when it is unavailable (pl3_ssp without
/// shadow stacks, as Linux gives no NT_X86_SHSTK regset then).
pub fn get(r: &Regs, n: usize) -> Option<Vec<u8>> {
    let le = |v: u64, k: usize| v.to_le_bytes()[..k].to_vec();
    Some(match n {
        0..=15 => le(r.gpr[gpr_index(n)], 8),
        RIP => le(r.rip, 8),
        EFLAGS => le(r.rflags, 4),
        // cs, ss, ds, es, fs, gs: Linux's 64-bit user selectors.
        18 => le(0x33, 4),
        19 => le(0x2b, 4),
        20..=23 => le(0, 4),
        24..=31 => {
            let i = n - ST0;
            r.x87.st[(r.x87.top as usize + i) & 7].to_le_bytes()[..10].to_vec()
        }
        32 => le(r.x87.fcw as u64, 4),
        33 => le(r.x87.status_word() as u64, 4),
        34 => le(r.x87.ftw as u64, 4),
        // fiseg/fioff, foseg/fooff: the 64-bit FXSAVE layout keeps 64-bit pointers, split
        // as gdb's i387_supply_fxsave does for amd64.
        35 => le(r.x87.fip >> 32, 4),
        36 => le(r.x87.fip, 4),
        37 => le(r.x87.fdp >> 32, 4),
        38 => le(r.x87.fdp, 4),
        39 => le(r.x87.fop as u64, 4),
        40..=55 => r.sse.xmm[n - XMM0].to_le_bytes().to_vec(),
        MXCSR => le(r.sse.mxcsr as u64, 4),
        ORIG_RAX => le(r.orig_rax, 8),
        FS_BASE => le(r.fs_base, 8),
        GS_BASE => le(r.gs_base, 8),
        PL3_SSP if r.shstk_enabled => le(r.ssp, 8),
        _ => return None,
    })
}

/// Sets register `n` from its bytes. Selectors and orig_rax are read-only here (writes are
/// ignored, as cetbox has fixed selectors); pl3_ssp is checked by the controller.
pub fn set(r: &mut Regs, n: usize, b: &[u8]) {
    if b.len() < size(n) {
        return;
    }
    let mut w = [0u8; 16];
    w[..b.len().min(16)].copy_from_slice(&b[..b.len().min(16)]);
    let v = u64::from_le_bytes(w[..8].try_into().unwrap());
    let v32 = v & 0xffff_ffff;
    match n {
        0..=15 => r.gpr[gpr_index(n)] = v,
        RIP => r.rip = v,
        EFLAGS => r.rflags = v32,
        24..=31 => {
            let i = n - ST0;
            let idx = (r.x87.top as usize + i) & 7;
            r.x87.st[idx] = u128::from_le_bytes(w) & ((1u128 << 80) - 1);
        }
        32 => r.x87.fcw = v as u16,
        33 => {
            r.x87.top = ((v >> 11) & 7) as u8;
            r.x87.fsw = v as u16 & !0x3800;
        }
        34 => r.x87.ftw = v as u16,
        35 => r.x87.fip = (r.x87.fip & 0xffff_ffff) | (v32 << 32),
        36 => r.x87.fip = (r.x87.fip & !0xffff_ffff) | v32,
        37 => r.x87.fdp = (r.x87.fdp & 0xffff_ffff) | (v32 << 32),
        38 => r.x87.fdp = (r.x87.fdp & !0xffff_ffff) | v32,
        39 => r.x87.fop = v as u16,
        40..=55 => r.sse.xmm[n - XMM0] = u128::from_le_bytes(w),
        MXCSR => r.sse.mxcsr = v32 as u32 & cetbox_cpu::fpstate::MXCSR_MASK,
        FS_BASE => r.fs_base = v,
        GS_BASE => r.gs_base = v,
        PL3_SSP => r.ssp = v,
        _ => {}
    }
}

/// The whole register file in description order (gdb's `g` packet).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct X86_64Regs {
    pub bytes: Vec<Option<u8>>,
}

impl X86_64Regs {
    pub fn from_regs(r: &Regs) -> X86_64Regs {
        let mut bytes = Vec::new();
        for n in 0..COUNT {
            match get(r, n) {
                Some(b) => bytes.extend(b.into_iter().map(Some)),
                None => bytes.extend(std::iter::repeat_n(None, size(n))),
            }
        }
        X86_64Regs { bytes }
    }

    /// Applies the bytes gdb sent (unavailable ones keep their value).
    pub fn apply_to(&self, r: &mut Regs) {
        let mut off = 0;
        for n in 0..COUNT {
            let k = size(n);
            let Some(chunk) = self.bytes.get(off..off + k) else {
                break;
            };
            if chunk.iter().all(|b| b.is_some()) {
                let b: Vec<u8> = chunk.iter().map(|b| b.unwrap_or(0)).collect();
                set(r, n, &b);
            }
            off += k;
        }
    }
}

impl Registers for X86_64Regs {
    type ProgramCounter = u64;

    fn pc(&self) -> u64 {
        let off: usize = (0..RIP).map(size).sum();
        let b: Vec<u8> = self.bytes[off..off + 8]
            .iter()
            .map(|b| b.unwrap_or(0))
            .collect();
        u64::from_le_bytes(b.try_into().unwrap_or([0; 8]))
    }

    fn gdb_serialize(&self, mut write_byte: impl FnMut(Option<u8>)) {
        for b in &self.bytes {
            write_byte(*b);
        }
    }

    fn gdb_deserialize(&mut self, bytes: &[u8]) -> Result<(), ()> {
        self.bytes = bytes.iter().map(|b| Some(*b)).collect();
        Ok(())
    }
}

/// A register number from `p`/`P` packets.
#[derive(Clone, Copy, Debug)]
pub struct RegNum(pub usize);

impl RegId for RegNum {
    fn from_raw_id(id: usize) -> Option<(Self, Option<NonZeroUsize>)> {
        (id < COUNT).then(|| (RegNum(id), NonZeroUsize::new(size(id))))
    }
}

pub enum X86_64Linux {}

impl Arch for X86_64Linux {
    type Usize = u64;
    type Registers = X86_64Regs;
    type BreakpointKind = usize;
    type RegId = RegNum;

    fn target_description_xml() -> Option<&'static str> {
        Some(TARGET_XML)
    }
}

/// The target description. Names, sizes and types follow gdb's feature files named above.
pub const TARGET_XML: &str = r#"<?xml version="1.0"?>
<!DOCTYPE target SYSTEM "gdb-target.dtd">
<target version="1.0">
  <architecture>i386:x86-64</architecture>
  <osabi>GNU/Linux</osabi>
  <feature name="org.gnu.gdb.i386.core">
    <flags id="i386_eflags" size="4">
      <field name="" start="22" end="31"/>
      <field name="CF" start="0" end="0"/>
      <field name="" start="1" end="1"/>
      <field name="PF" start="2" end="2"/>
      <field name="AF" start="4" end="4"/>
      <field name="ZF" start="6" end="6"/>
      <field name="SF" start="7" end="7"/>
      <field name="TF" start="8" end="8"/>
      <field name="IF" start="9" end="9"/>
      <field name="DF" start="10" end="10"/>
      <field name="OF" start="11" end="11"/>
      <field name="NT" start="14" end="14"/>
      <field name="RF" start="16" end="16"/>
      <field name="VM" start="17" end="17"/>
      <field name="AC" start="18" end="18"/>
      <field name="VIF" start="19" end="19"/>
      <field name="VIP" start="20" end="20"/>
      <field name="ID" start="21" end="21"/>
    </flags>
    <reg name="rax" bitsize="64" type="int64" regnum="0"/>
    <reg name="rbx" bitsize="64" type="int64"/>
    <reg name="rcx" bitsize="64" type="int64"/>
    <reg name="rdx" bitsize="64" type="int64"/>
    <reg name="rsi" bitsize="64" type="int64"/>
    <reg name="rdi" bitsize="64" type="int64"/>
    <reg name="rbp" bitsize="64" type="data_ptr"/>
    <reg name="rsp" bitsize="64" type="data_ptr"/>
    <reg name="r8" bitsize="64" type="int64"/>
    <reg name="r9" bitsize="64" type="int64"/>
    <reg name="r10" bitsize="64" type="int64"/>
    <reg name="r11" bitsize="64" type="int64"/>
    <reg name="r12" bitsize="64" type="int64"/>
    <reg name="r13" bitsize="64" type="int64"/>
    <reg name="r14" bitsize="64" type="int64"/>
    <reg name="r15" bitsize="64" type="int64"/>
    <reg name="rip" bitsize="64" type="code_ptr"/>
    <reg name="eflags" bitsize="32" type="i386_eflags"/>
    <reg name="cs" bitsize="32" type="int32"/>
    <reg name="ss" bitsize="32" type="int32"/>
    <reg name="ds" bitsize="32" type="int32"/>
    <reg name="es" bitsize="32" type="int32"/>
    <reg name="fs" bitsize="32" type="int32"/>
    <reg name="gs" bitsize="32" type="int32"/>
    <reg name="st0" bitsize="80" type="i387_ext"/>
    <reg name="st1" bitsize="80" type="i387_ext"/>
    <reg name="st2" bitsize="80" type="i387_ext"/>
    <reg name="st3" bitsize="80" type="i387_ext"/>
    <reg name="st4" bitsize="80" type="i387_ext"/>
    <reg name="st5" bitsize="80" type="i387_ext"/>
    <reg name="st6" bitsize="80" type="i387_ext"/>
    <reg name="st7" bitsize="80" type="i387_ext"/>
    <reg name="fctrl" bitsize="32" type="int" group="float"/>
    <reg name="fstat" bitsize="32" type="int" group="float"/>
    <reg name="ftag" bitsize="32" type="int" group="float"/>
    <reg name="fiseg" bitsize="32" type="int" group="float"/>
    <reg name="fioff" bitsize="32" type="int" group="float"/>
    <reg name="foseg" bitsize="32" type="int" group="float"/>
    <reg name="fooff" bitsize="32" type="int" group="float"/>
    <reg name="fop" bitsize="32" type="int" group="float"/>
  </feature>
  <feature name="org.gnu.gdb.i386.sse">
    <vector id="v4f" type="ieee_single" count="4"/>
    <vector id="v2d" type="ieee_double" count="2"/>
    <vector id="v16i8" type="int8" count="16"/>
    <vector id="v8i16" type="int16" count="8"/>
    <vector id="v4i32" type="int32" count="4"/>
    <vector id="v2i64" type="int64" count="2"/>
    <union id="vec128">
      <field name="v4_float" type="v4f"/>
      <field name="v2_double" type="v2d"/>
      <field name="v16_int8" type="v16i8"/>
      <field name="v8_int16" type="v8i16"/>
      <field name="v4_int32" type="v4i32"/>
      <field name="v2_int64" type="v2i64"/>
      <field name="uint128" type="uint128"/>
    </union>
    <flags id="i386_mxcsr" size="4">
      <field name="IE" start="0" end="0"/>
      <field name="DE" start="1" end="1"/>
      <field name="ZE" start="2" end="2"/>
      <field name="OE" start="3" end="3"/>
      <field name="UE" start="4" end="4"/>
      <field name="PE" start="5" end="5"/>
      <field name="DAZ" start="6" end="6"/>
      <field name="IM" start="7" end="7"/>
      <field name="DM" start="8" end="8"/>
      <field name="ZM" start="9" end="9"/>
      <field name="OM" start="10" end="10"/>
      <field name="UM" start="11" end="11"/>
      <field name="PM" start="12" end="12"/>
      <field name="FZ" start="15" end="15"/>
    </flags>
    <reg name="xmm0" bitsize="128" type="vec128" regnum="40"/>
    <reg name="xmm1" bitsize="128" type="vec128"/>
    <reg name="xmm2" bitsize="128" type="vec128"/>
    <reg name="xmm3" bitsize="128" type="vec128"/>
    <reg name="xmm4" bitsize="128" type="vec128"/>
    <reg name="xmm5" bitsize="128" type="vec128"/>
    <reg name="xmm6" bitsize="128" type="vec128"/>
    <reg name="xmm7" bitsize="128" type="vec128"/>
    <reg name="xmm8" bitsize="128" type="vec128"/>
    <reg name="xmm9" bitsize="128" type="vec128"/>
    <reg name="xmm10" bitsize="128" type="vec128"/>
    <reg name="xmm11" bitsize="128" type="vec128"/>
    <reg name="xmm12" bitsize="128" type="vec128"/>
    <reg name="xmm13" bitsize="128" type="vec128"/>
    <reg name="xmm14" bitsize="128" type="vec128"/>
    <reg name="xmm15" bitsize="128" type="vec128"/>
    <reg name="mxcsr" bitsize="32" type="i386_mxcsr" group="vector"/>
  </feature>
  <feature name="org.gnu.gdb.i386.linux">
    <reg name="orig_rax" bitsize="64" type="int" regnum="57"/>
  </feature>
  <feature name="org.gnu.gdb.i386.segments">
    <reg name="fs_base" bitsize="64" type="int"/>
    <reg name="gs_base" bitsize="64" type="int"/>
  </feature>
  <feature name="org.gnu.gdb.i386.pl3_ssp">
    <reg name="pl3_ssp" bitsize="64" type="data_ptr"/>
  </feature>
</target>
"#;
