//! x87 and SSE architectural state, and its FXSAVE image (the layout Linux puts in signal
//! frames and glibc reads).

/// x87 FPU state. Registers hold raw 80-bit values (in the low 80 bits) by physical index;
/// ST(i) is `st[(top + i) & 7]`.
#[derive(Clone, Debug)]
pub struct X87 {
    pub st: [u128; 8],
    /// Control word (FCW); 0x037f after FNINIT.
    pub fcw: u16,
    /// Status word without the TOP field (which lives in `top`).
    pub fsw: u16,
    pub top: u8,
    /// Full 2-bit-per-register tag word (11 = empty).
    pub ftw: u16,
    pub fop: u16,
    pub fip: u64,
    pub fdp: u64,
}

impl Default for X87 {
    fn default() -> Self {
        X87 {
            st: [0; 8],
            fcw: 0x037f,
            fsw: 0,
            top: 0,
            ftw: 0xffff,
            fop: 0,
            fip: 0,
            fdp: 0,
        }
    }
}

impl X87 {
    /// FSW with TOP merged in.
    pub fn status_word(&self) -> u16 {
        (self.fsw & !0x3800) | ((self.top as u16 & 7) << 11)
    }

    /// The abridged tag byte FXSAVE stores (1 bit per register: 1 = not empty).
    pub fn abridged_tags(&self) -> u8 {
        let mut t = 0u8;
        for i in 0..8 {
            if (self.ftw >> (2 * i)) & 3 != 3 {
                t |= 1 << i;
            }
        }
        t
    }

    /// Rebuilds the full tag word from an abridged one (FXRSTOR), classifying contents.
    pub fn set_abridged_tags(&mut self, t: u8) {
        let mut ftw = 0u16;
        for i in 0..8 {
            let tag = if t & (1 << i) == 0 {
                3
            } else {
                classify(self.st[i])
            };
            ftw |= (tag as u16) << (2 * i);
        }
        self.ftw = ftw;
    }
}

/// The 2-bit x87 tag of a non-empty register: 0 valid, 1 zero, 2 special.
pub fn classify(v: u128) -> u8 {
    let exp = ((v >> 64) & 0x7fff) as u16;
    let mant = v as u64;
    if exp == 0 && mant == 0 {
        1
    } else if exp == 0x7fff || exp == 0 || mant >> 63 == 0 {
        2
    } else {
        0
    }
}

/// SSE and AVX state: XMM0-15 and, for x86-64-v3, the upper halves of YMM0-15 (bits
/// 255:128), which legacy SSE instructions leave alone and VEX-encoded ones write.
#[derive(Clone, Debug)]
pub struct Sse {
    pub xmm: [u128; 16],
    pub ymm_hi: [u128; 16],
    pub mxcsr: u32,
}

impl Default for Sse {
    fn default() -> Self {
        Sse {
            xmm: [0; 16],
            ymm_hi: [0; 16],
            mxcsr: 0x1f80,
        }
    }
}

/// MXCSR bits a guest may set (DAZ included); anything else raises #GP on LDMXCSR/FXRSTOR.
pub const MXCSR_MASK: u32 = 0xffff;

/// Writes the 512-byte FXSAVE64 image of `x87` and `sse` into `out`.
pub fn fxsave(x87: &X87, sse: &Sse, out: &mut [u8; 512]) {
    out.fill(0);
    out[0..2].copy_from_slice(&x87.fcw.to_le_bytes());
    out[2..4].copy_from_slice(&x87.status_word().to_le_bytes());
    out[4] = x87.abridged_tags();
    out[6..8].copy_from_slice(&x87.fop.to_le_bytes());
    out[8..16].copy_from_slice(&x87.fip.to_le_bytes());
    out[16..24].copy_from_slice(&x87.fdp.to_le_bytes());
    out[24..28].copy_from_slice(&sse.mxcsr.to_le_bytes());
    out[28..32].copy_from_slice(&MXCSR_MASK.to_le_bytes());
    for i in 0..8 {
        // FXSAVE stores ST(i) in stack order, not physical order.
        let v = x87.st[(x87.top as usize + i) & 7];
        out[32 + 16 * i..32 + 16 * i + 10].copy_from_slice(&v.to_le_bytes()[..10]);
    }
    for i in 0..16 {
        out[160 + 16 * i..176 + 16 * i].copy_from_slice(&sse.xmm[i].to_le_bytes());
    }
}

/// Loads an FXSAVE64 image. Returns false (and changes nothing) if MXCSR has reserved bits set,
/// which is #GP for FXRSTOR and a bad frame for rt_sigreturn.
pub fn fxrstor(x87: &mut X87, sse: &mut Sse, img: &[u8; 512]) -> bool {
    let le16 = |o: usize| u16::from_le_bytes([img[o], img[o + 1]]);
    let le64 = |o: usize| u64::from_le_bytes(img[o..o + 8].try_into().unwrap());
    let mxcsr = u32::from_le_bytes(img[24..28].try_into().unwrap());
    if mxcsr & !MXCSR_MASK != 0 {
        return false;
    }
    x87.fcw = le16(0);
    let fsw = le16(2);
    x87.top = ((fsw >> 11) & 7) as u8;
    x87.fsw = fsw & !0x3800;
    x87.fop = le16(6);
    x87.fip = le64(8);
    x87.fdp = le64(16);
    for i in 0..8 {
        let mut b = [0u8; 16];
        b[..10].copy_from_slice(&img[32 + 16 * i..32 + 16 * i + 10]);
        x87.st[(x87.top as usize + i) & 7] = u128::from_le_bytes(b);
    }
    x87.set_abridged_tags(img[4]);
    sse.mxcsr = mxcsr;
    for i in 0..16 {
        sse.xmm[i] = u128::from_le_bytes(img[160 + 16 * i..176 + 16 * i].try_into().unwrap());
    }
    true
}
