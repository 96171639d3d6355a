//! RFLAGS with lazy evaluation of the arithmetic flags.
//!
//! Most instructions set CF/PF/AF/ZF/SF/OF and the next one ignores them, so ALU instructions
//! record their operands and result and the flags are computed only when read. Everything else
//! (DF, the reserved bit 1, and the arithmetic flags once materialized) lives in `bits`.

use iced_x86::ConditionCode;

pub const CF: u64 = 1 << 0;
pub const PF: u64 = 1 << 2;
pub const AF: u64 = 1 << 4;
pub const ZF: u64 = 1 << 6;
pub const SF: u64 = 1 << 7;
pub const TF: u64 = 1 << 8;
pub const IF: u64 = 1 << 9;
pub const DF: u64 = 1 << 10;
pub const OF: u64 = 1 << 11;
pub const AC: u64 = 1 << 18;
pub const ID: u64 = 1 << 21;
/// The six arithmetic status flags.
pub const ARITH: u64 = CF | PF | AF | ZF | SF | OF;
/// Flags user code can change with POPF (AC and ID included; IOPL, VM and friends not).
pub const USER_WRITABLE: u64 = ARITH | TF | DF | AC | ID | (1 << 19) | (1 << 20);

/// How the arithmetic flags are to be derived from (dst, src, res).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum FlagOp {
    /// Already in `bits`.
    Materialized,
    Add,
    /// ADC with carry-in in `carry`.
    Adc,
    Sub,
    /// SBB with borrow-in in `carry`.
    Sbb,
    /// AND/OR/XOR/TEST: CF = OF = 0, AF = 0.
    Logic,
    /// INC: like ADD of 1 but CF kept (in `carry`).
    Inc,
    /// DEC: like SUB of 1 but CF kept (in `carry`).
    Dec,
}

#[derive(Clone, Copy, Debug)]
pub struct Flags {
    pub op: FlagOp,
    /// Operand size in bytes (1, 2, 4, 8).
    pub size: u8,
    pub carry: bool,
    pub dst: u64,
    pub src: u64,
    pub res: u64,
    /// Materialized RFLAGS; its arithmetic bits are stale unless `op` is Materialized.
    pub bits: u64,
}

impl Default for Flags {
    fn default() -> Self {
        Flags {
            op: FlagOp::Materialized,
            size: 8,
            carry: false,
            dst: 0,
            src: 0,
            res: 0,
            bits: 0x202,
        }
    }
}

#[inline(always)]
fn mask(size: u8) -> u64 {
    if size >= 8 {
        u64::MAX
    } else {
        (1u64 << (size as u32 * 8)) - 1
    }
}

#[inline(always)]
fn msb(size: u8) -> u64 {
    1u64 << (size as u32 * 8 - 1)
}

/// PF: set when the low byte has an even number of one bits.
#[inline(always)]
pub fn parity(v: u64) -> bool {
    (v as u8).count_ones().is_multiple_of(2)
}

impl Flags {
    /// Records an arithmetic result; the flags are computed when read.
    #[inline(always)]
    pub fn set_lazy(&mut self, op: FlagOp, size: u32, dst: u64, src: u64, res: u64) {
        self.op = op;
        self.size = size as u8;
        self.dst = dst;
        self.src = src;
        self.res = res;
    }

    /// Records ADC/SBB (carry-in needed to derive CF).
    #[inline(always)]
    pub fn set_lazy_carry(
        &mut self,
        op: FlagOp,
        size: u32,
        dst: u64,
        src: u64,
        res: u64,
        carry: bool,
    ) {
        self.carry = carry;
        self.set_lazy(op, size, dst, src, res);
    }

    /// Records INC/DEC, which keep CF.
    #[inline(always)]
    pub fn set_incdec(&mut self, inc: bool, size: u32, dst: u64, res: u64) {
        self.carry = self.cf();
        self.set_lazy(
            if inc { FlagOp::Inc } else { FlagOp::Dec },
            size,
            dst,
            1,
            res,
        );
    }

    #[inline(always)]
    pub fn cf(&self) -> bool {
        let m = mask(self.size);
        match self.op {
            FlagOp::Materialized => self.bits & CF != 0,
            FlagOp::Add => (self.res & m) < (self.dst & m),
            FlagOp::Adc => {
                if self.carry {
                    (self.res & m) <= (self.dst & m)
                } else {
                    (self.res & m) < (self.dst & m)
                }
            }
            FlagOp::Sub => (self.dst & m) < (self.src & m),
            FlagOp::Sbb => {
                if self.carry {
                    (self.dst & m) <= (self.src & m)
                } else {
                    (self.dst & m) < (self.src & m)
                }
            }
            FlagOp::Logic => false,
            FlagOp::Inc | FlagOp::Dec => self.carry,
        }
    }

    #[inline(always)]
    pub fn zf(&self) -> bool {
        match self.op {
            FlagOp::Materialized => self.bits & ZF != 0,
            _ => self.res & mask(self.size) == 0,
        }
    }

    #[inline(always)]
    pub fn sf(&self) -> bool {
        match self.op {
            FlagOp::Materialized => self.bits & SF != 0,
            _ => self.res & msb(self.size) != 0,
        }
    }

    #[inline(always)]
    pub fn of(&self) -> bool {
        let m = msb(self.size);
        match self.op {
            FlagOp::Materialized => self.bits & OF != 0,
            FlagOp::Add | FlagOp::Adc | FlagOp::Inc => {
                (self.dst ^ self.res) & (self.src ^ self.res) & m != 0
            }
            FlagOp::Sub | FlagOp::Sbb | FlagOp::Dec => {
                (self.dst ^ self.src) & (self.dst ^ self.res) & m != 0
            }
            FlagOp::Logic => false,
        }
    }

    #[inline(always)]
    pub fn pf(&self) -> bool {
        match self.op {
            FlagOp::Materialized => self.bits & PF != 0,
            _ => parity(self.res),
        }
    }

    #[inline(always)]
    pub fn af(&self) -> bool {
        match self.op {
            FlagOp::Materialized => self.bits & AF != 0,
            FlagOp::Logic => false,
            _ => (self.dst ^ self.src ^ self.res) & 0x10 != 0,
        }
    }

    /// Full RFLAGS.
    pub fn get(&self) -> u64 {
        let m = mask(self.size);
        let top = msb(self.size);
        let (dst, src, res) = (self.dst & m, self.src & m, self.res & m);
        // CF, OF and AF by kind, in one dispatch; ZF, SF and PF follow from the result.
        let (cf, of, af) = match self.op {
            FlagOp::Materialized => return self.bits,
            FlagOp::Add | FlagOp::Adc | FlagOp::Inc => {
                let cf = match self.op {
                    FlagOp::Add => res < dst,
                    FlagOp::Adc if self.carry => res <= dst,
                    FlagOp::Adc => res < dst,
                    _ => self.carry,
                };
                let of = (self.dst ^ self.res) & (self.src ^ self.res) & top != 0;
                (cf, of, (self.dst ^ self.src ^ self.res) & 0x10 != 0)
            }
            FlagOp::Sub | FlagOp::Sbb | FlagOp::Dec => {
                let cf = match self.op {
                    FlagOp::Sub => dst < src,
                    FlagOp::Sbb if self.carry => dst <= src,
                    FlagOp::Sbb => dst < src,
                    _ => self.carry,
                };
                let of = (self.dst ^ self.src) & (self.dst ^ self.res) & top != 0;
                (cf, of, (self.dst ^ self.src ^ self.res) & 0x10 != 0)
            }
            FlagOp::Logic => (false, false, false),
        };
        let mut f = self.bits & !ARITH;
        f |= cf as u64 * CF;
        f |= parity(self.res) as u64 * PF;
        f |= af as u64 * AF;
        f |= (res == 0) as u64 * ZF;
        f |= (self.res & top != 0) as u64 * SF;
        f |= of as u64 * OF;
        f
    }

    /// Replaces RFLAGS (bit 1 always reads as 1).
    pub fn set(&mut self, v: u64) {
        self.op = FlagOp::Materialized;
        self.bits = v | 0x2;
    }

    /// Computes the lazy flags into `bits`, so individual bits can be changed.
    #[inline]
    pub fn materialize(&mut self) {
        if self.op != FlagOp::Materialized {
            self.bits = self.get();
            self.op = FlagOp::Materialized;
        }
    }

    /// Sets or clears the given bits (materializing first).
    #[inline]
    pub fn set_bits(&mut self, which: u64, on: bool) {
        self.materialize();
        if on {
            self.bits |= which;
        } else {
            self.bits &= !which;
        }
    }

    /// Sets all six arithmetic flags at once from explicit values.
    #[inline]
    pub fn set_arith(&mut self, cf: bool, pf: bool, af: bool, zf: bool, sf: bool, of: bool) {
        self.op = FlagOp::Materialized;
        self.bits = (self.bits & !ARITH)
            | (cf as u64 * CF)
            | (pf as u64 * PF)
            | (af as u64 * AF)
            | (zf as u64 * ZF)
            | (sf as u64 * SF)
            | (of as u64 * OF);
    }

    #[inline(always)]
    pub fn df(&self) -> bool {
        self.bits & DF != 0
    }

    /// Evaluates a condition code (Jcc, SETcc, CMOVcc).
    /// `cond` for a condition code known at compile time (its iced discriminant).
    #[inline(always)]
    pub fn cond_n<const CC: u8>(&self) -> bool {
        self.cond(condition(CC))
    }

    #[inline(always)]
    pub fn cond(&self, cc: ConditionCode) -> bool {
        // Logic results (AND/OR/XOR/TEST) have CF = OF = 0.
        if self.op == FlagOp::Logic {
            let m = mask(self.size);
            let z = self.res & m == 0;
            let s = self.res & msb(self.size) != 0;
            match cc {
                ConditionCode::e | ConditionCode::be => return z,
                ConditionCode::ne | ConditionCode::a => return !z,
                ConditionCode::s | ConditionCode::l => return s,
                ConditionCode::ns | ConditionCode::ge => return !s,
                ConditionCode::le => return z || s,
                ConditionCode::g => return !z && !s,
                ConditionCode::b | ConditionCode::o => return false,
                ConditionCode::ae | ConditionCode::no => return true,
                _ => {}
            }
        }
        // Fast paths for the overwhelmingly common CMP/SUB-then-branch pattern.
        if self.op == FlagOp::Sub {
            let m = mask(self.size);
            let (a, b) = (self.dst & m, self.src & m);
            let sh = 64 - self.size as u32 * 8;
            let (sa, sb) = (((a << sh) as i64) >> sh, ((b << sh) as i64) >> sh);
            match cc {
                ConditionCode::e => return a == b,
                ConditionCode::ne => return a != b,
                ConditionCode::b => return a < b,
                ConditionCode::ae => return a >= b,
                ConditionCode::be => return a <= b,
                ConditionCode::a => return a > b,
                ConditionCode::l => return sa < sb,
                ConditionCode::ge => return sa >= sb,
                ConditionCode::le => return sa <= sb,
                ConditionCode::g => return sa > sb,
                _ => {}
            }
        }
        match cc {
            ConditionCode::None => true,
            ConditionCode::o => self.of(),
            ConditionCode::no => !self.of(),
            ConditionCode::b => self.cf(),
            ConditionCode::ae => !self.cf(),
            ConditionCode::e => self.zf(),
            ConditionCode::ne => !self.zf(),
            ConditionCode::be => self.cf() || self.zf(),
            ConditionCode::a => !self.cf() && !self.zf(),
            ConditionCode::s => self.sf(),
            ConditionCode::ns => !self.sf(),
            ConditionCode::p => self.pf(),
            ConditionCode::np => !self.pf(),
            ConditionCode::l => self.sf() != self.of(),
            ConditionCode::ge => self.sf() == self.of(),
            ConditionCode::le => self.zf() || self.sf() != self.of(),
            ConditionCode::g => !self.zf() && self.sf() == self.of(),
        }
    }
}

/// The iced condition code with number `n` (its discriminant).
#[inline(always)]
pub const fn condition(n: u8) -> ConditionCode {
    match n {
        1 => ConditionCode::o,
        2 => ConditionCode::no,
        3 => ConditionCode::b,
        4 => ConditionCode::ae,
        5 => ConditionCode::e,
        6 => ConditionCode::ne,
        7 => ConditionCode::be,
        8 => ConditionCode::a,
        9 => ConditionCode::s,
        10 => ConditionCode::ns,
        11 => ConditionCode::p,
        12 => ConditionCode::np,
        13 => ConditionCode::l,
        14 => ConditionCode::ge,
        15 => ConditionCode::le,
        16 => ConditionCode::g,
        _ => ConditionCode::None,
    }
}
