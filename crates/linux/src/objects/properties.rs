//! GNU property notes (NT_GNU_PROPERTY_TYPE_0) and the x86 feature bits in them
//! (Linux Extensions to gABI, https://gitlab.com/x86-psABIs/Linux-ABI; constants as in glibc
//! elf/elf.h).

use object::elf;
use object::read::elf::{FileHeader, ProgramHeader};
use object::{Endianness, ReadRef};

pub const GNU_PROPERTY_X86_FEATURE_1_AND: u32 = 0xc000_0002;
pub const GNU_PROPERTY_X86_ISA_1_NEEDED: u32 = 0xc000_8002;
pub const GNU_PROPERTY_X86_ISA_1_USED: u32 = 0xc001_0002;
pub const FEATURE_1_IBT: u32 = 1 << 0;
pub const FEATURE_1_SHSTK: u32 = 1 << 1;

/// What an object's property note says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Properties {
    /// GNU_PROPERTY_X86_FEATURE_1_AND, 0 when absent.
    pub feature_1_and: u32,
    /// Whether a property note was found at all.
    pub has_note: bool,
    /// GNU_PROPERTY_X86_ISA_1_NEEDED (x86-64 baseline = bit 0, v2 = bit 1, ...), if present.
    pub isa_needed: Option<u32>,
    /// DT_NEEDED names, DT_RUNPATH and DT_RPATH, and PT_INTERP, for dynamically linked objects.
    pub needed: Vec<String>,
    pub runpath: Option<String>,
    pub rpath: Option<String>,
    pub interp: Option<String>,
    /// Whether this is a 64-bit x86-64 ELF file.
    pub is_x86_64: bool,
}

impl Properties {
    pub fn shstk(&self) -> bool {
        self.feature_1_and & FEATURE_1_SHSTK != 0
    }
    pub fn ibt(&self) -> bool {
        self.feature_1_and & FEATURE_1_IBT != 0
    }
    /// "x86-64-v1".."x86-64-v4" from the ISA bits, or None.
    pub fn isa_level(&self) -> Option<String> {
        let bits = self.isa_needed?;
        if bits == 0 {
            return None;
        }
        Some(format!("x86-64-v{}", 32 - bits.leading_zeros()))
    }
}

/// Reads the properties of an ELF file, reading only the parts needed.
/// Anything but a regular file (a FIFO, a device, a directory) is refused at once: it is
/// opened without blocking (O_NONBLOCK: a FIFO with no writer would block the open, and a
/// read of it forever) and checked before anything is read.
pub fn read_file_properties(path: &std::path::Path) -> Result<Properties, String> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| e.to_string())?;
    let md = f.metadata().map_err(|e| e.to_string())?;
    if !md.is_file() {
        return Err("not a regular file".to_string());
    }
    let cache = object::ReadCache::new(f);
    read_properties(&cache)
}

/// Reads the properties of an ELF64 x86-64 object. Errors are one-line descriptions.
pub fn read_properties<'a, R: ReadRef<'a>>(data: R) -> Result<Properties, String> {
    let hdr = elf::FileHeader64::<Endianness>::parse(data)
        .map_err(|_| "not a 64-bit ELF file".to_string())?;
    let endian = hdr.endian().map_err(|_| "bad ELF byte order".to_string())?;
    let mut p = Properties {
        is_x86_64: hdr.e_machine(endian) == elf::EM_X86_64,
        ..Default::default()
    };
    let phdrs = hdr
        .program_headers(endian, data)
        .map_err(|_| "malformed program headers".to_string())?;
    // Prefer PT_GNU_PROPERTY; fall back to GNU notes in PT_NOTE segments.
    let mut notes: Vec<&'a [u8]> = Vec::new();
    for ph in phdrs
        .iter()
        .filter(|ph| ph.p_type(endian) == elf::PT_GNU_PROPERTY)
    {
        if let Ok(d) = ph.data(endian, data) {
            notes.push(d);
        }
    }
    if notes.is_empty() {
        for ph in phdrs.iter().filter(|ph| ph.p_type(endian) == elf::PT_NOTE) {
            if let Ok(d) = ph.data(endian, data) {
                notes.push(d);
            }
        }
    }
    for n in notes {
        parse_notes(n, &mut p);
    }
    for ph in phdrs.iter() {
        if ph.p_type(endian) == elf::PT_INTERP {
            if let Ok(d) = ph.data(endian, data) {
                let s = d.split(|&b| b == 0).next().unwrap_or(&[]);
                p.interp = Some(String::from_utf8_lossy(s).into_owned());
            }
        }
    }
    read_dynamic(hdr, endian, data, &mut p);
    Ok(p)
}

fn u32_at(d: &[u8], o: usize) -> Option<u32> {
    d.get(o..o + 4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// GNU_PROPERTY_X86_FEATURE_1_AND from a buffer of ELF notes (a PT_GNU_PROPERTY or PT_NOTE
/// segment): Some(bits), Some(0) for a GNU property note without it, None without a note.
pub fn feature_1_and_from_notes(buf: &[u8]) -> Option<u32> {
    let mut p = Properties::default();
    parse_notes(buf, &mut p);
    p.has_note.then_some(p.feature_1_and)
}

/// Walks a sequence of ELF64 notes, picking out NT_GNU_PROPERTY_TYPE_0 owned by "GNU".
fn parse_notes(d: &[u8], p: &mut Properties) {
    let mut o = 0usize;
    while o + 12 <= d.len() {
        let (Some(namesz), Some(descsz), Some(ty)) =
            (u32_at(d, o), u32_at(d, o + 4), u32_at(d, o + 8))
        else {
            return;
        };
        let name_off = o + 12;
        let desc_off = name_off + (namesz as usize).next_multiple_of(4);
        let desc_off = desc_off.next_multiple_of(8).min(d.len());
        let desc_end = desc_off.saturating_add(descsz as usize);
        if desc_end > d.len() {
            return;
        }
        let name = &d[name_off..(name_off + namesz as usize).min(d.len())];
        if ty == elf::NT_GNU_PROPERTY_TYPE_0 && name.starts_with(b"GNU") {
            p.has_note = true;
            parse_properties(&d[desc_off..desc_end], p);
        }
        o = desc_end.next_multiple_of(8);
    }
}

fn parse_properties(d: &[u8], p: &mut Properties) {
    let mut o = 0usize;
    while o + 8 <= d.len() {
        let (Some(ty), Some(sz)) = (u32_at(d, o), u32_at(d, o + 4)) else {
            return;
        };
        let data = o + 8;
        if data + sz as usize > d.len() {
            return;
        }
        if sz == 4 {
            let v = u32_at(d, data).unwrap_or(0);
            match ty {
                GNU_PROPERTY_X86_FEATURE_1_AND => p.feature_1_and = v,
                GNU_PROPERTY_X86_ISA_1_NEEDED => p.isa_needed = Some(v),
                _ => {}
            }
        }
        o = (data + sz as usize).next_multiple_of(8);
    }
}

/// Reads DT_NEEDED, DT_RUNPATH and DT_RPATH through PT_DYNAMIC, as ld.so does.
fn read_dynamic<'a, R: ReadRef<'a>>(
    hdr: &elf::FileHeader64<Endianness>,
    endian: Endianness,
    data: R,
    p: &mut Properties,
) {
    let Ok(phdrs) = hdr.program_headers(endian, data) else {
        return;
    };
    let Some(dynamic) = phdrs.iter().find(|ph| ph.p_type(endian) == elf::PT_DYNAMIC) else {
        return;
    };
    let Ok(dyn_data) = dynamic.data(endian, data) else {
        return;
    };
    let entries: Vec<(u64, u64)> = dyn_data
        .chunks_exact(16)
        .map(|e| {
            (
                u64::from_le_bytes(e[0..8].try_into().unwrap()),
                u64::from_le_bytes(e[8..16].try_into().unwrap()),
            )
        })
        .take_while(|(tag, _)| *tag != elf::DT_NULL as u64)
        .collect();
    let find = |t: u32| {
        entries
            .iter()
            .find(|(tag, _)| *tag == t as u64)
            .map(|(_, v)| *v)
    };
    let (Some(strtab), Some(strsz)) = (find(elf::DT_STRTAB), find(elf::DT_STRSZ)) else {
        return;
    };
    // DT_STRTAB is a virtual address: find the file offset through the PT_LOAD holding it.
    let Some(off) = phdrs
        .iter()
        .filter(|ph| ph.p_type(endian) == elf::PT_LOAD)
        .find_map(|ph| {
            let (va, fs) = (ph.p_vaddr(endian), ph.p_filesz(endian));
            (strtab >= va && strtab < va + fs).then(|| ph.p_offset(endian) + (strtab - va))
        })
    else {
        return;
    };
    let Ok(strs) = data.read_bytes_at(off, strsz.min(1 << 20)) else {
        return;
    };
    let s = |o: u64| -> Option<String> {
        let tail = strs.get(o as usize..)?;
        let end = tail.iter().position(|&b| b == 0)?;
        Some(String::from_utf8_lossy(&tail[..end]).into_owned())
    };
    for (tag, val) in &entries {
        match *tag as u32 {
            elf::DT_NEEDED => p.needed.extend(s(*val)),
            elf::DT_RUNPATH => p.runpath = s(*val),
            elf::DT_RPATH => p.rpath = s(*val),
            _ => {}
        }
    }
}
