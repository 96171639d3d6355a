//! Reading and validating an ELF64 x86-64 executable or interpreter, and mapping its
//! PT_LOAD segments as binfmt_elf does.

use super::{err, LoadError};
use cetbox_mem::{page_ceil, page_floor, AddressSpace, Backing, MapRequest, VmaKind, PAGE_SIZE};
use object::elf;
use object::read::elf::{FileHeader, ProgramHeader};
use object::LittleEndian as LE;
use std::fs::File;
use std::os::unix::fs::{FileExt, MetadataExt};

pub use crate::abi::TASK_SIZE;
/// Where Linux puts a PIE that has an interpreter (2/3 of the 47-bit window, page-aligned).
pub const ELF_ET_DYN_BASE: u64 = 0x5555_5555_4000;

/// ELF_ET_DYN_BASE for an address space whose guest addresses end at `user_limit`: the same
/// two thirds (DEFAULT_MAP_WINDOW / 3 * 2) of a smaller range when an address-space limit
/// made cetbox cover less than the 47-bit space (see cetbox_mem's AddressSpace::new).
pub fn et_dyn_base(user_limit: u64) -> u64 {
    if user_limit >= 1 << 47 {
        ELF_ET_DYN_BASE
    } else {
        ((user_limit - 4096) / 3 * 2) & !4095
    }
}
/// Linux's limit on the size of the program header table.
const MAX_PHDRS_SIZE: u64 = 65536;
/// PATH_MAX, the limit on PT_INTERP.
const PATH_MAX: u64 = 4096;

/// One program header, as read from the file.
#[derive(Clone, Copy, Debug)]
pub struct Phdr {
    pub p_type: u32,
    pub p_flags: u32,
    pub p_offset: u64,
    pub p_vaddr: u64,
    pub p_filesz: u64,
    pub p_memsz: u64,
    pub p_align: u64,
}

/// A validated ELF file, still open.
pub struct Elf {
    pub file: File,
    /// The path the file was opened with (for messages).
    pub path: String,
    /// The absolute path, for /proc/self/maps and /proc/self/exe.
    pub abs_path: String,
    pub size: u64,
    pub dev: u64,
    pub ino: u64,
    pub e_type: u16,
    pub e_entry: u64,
    pub e_phoff: u64,
    pub phdrs: Vec<Phdr>,
    /// The PT_INTERP path (without its NUL).
    pub interp: Option<Vec<u8>>,
    /// PT_GNU_STACK with PF_X.
    pub exec_stack: bool,
}

/// What mapping an object produced.
#[derive(Clone, Copy, Debug)]
pub struct Loaded {
    pub bias: u64,
    /// Highest mapped byte + 1 (vaddr + memsz + bias) over all PT_LOADs.
    pub end: u64,
    /// Address of the program headers in memory (AT_PHDR).
    pub phdr_addr: u64,
    pub entry: u64,
}

fn machine_name(m: u16) -> &'static str {
    match m {
        elf::EM_386 => "i386",
        elf::EM_ARM => "ARM",
        elf::EM_AARCH64 => "AArch64",
        elf::EM_RISCV => "RISC-V",
        elf::EM_PPC64 => "PowerPC64",
        elf::EM_PPC => "PowerPC",
        elf::EM_S390 => "s390",
        elf::EM_MIPS => "MIPS",
        elf::EM_SPARCV9 => "SPARC V9",
        elf::EM_LOONGARCH => "LoongArch",
        0 => "none",
        _ => "unknown",
    }
}

/// Reads exactly `len` bytes at `off`; Err(true) for a short read (EIO as Linux's elf_read).
fn read_at(file: &File, off: u64, len: usize) -> Result<Vec<u8>, i32> {
    let mut buf = vec![0u8; len];
    let mut done = 0;
    while done < len {
        match file.read_at(&mut buf[done..], off + done as u64) {
            Ok(0) => return Err(libc::EIO),
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.raw_os_error().unwrap_or(libc::EIO)),
        }
    }
    Ok(buf)
}

/// Whether `head` (the first bytes of a file) starts like an ELF file.
pub fn is_elf(head: &[u8]) -> bool {
    head.len() >= 4 && head[..4] == elf::ELFMAG
}

/// Validates the ELF header and program headers of an open file. `head` holds its first
/// bytes (up to 256). `interp` selects the interpreter's error numbers (ELIBBAD for a file
/// that is not an x86-64 ELF, as Linux).
pub fn parse(
    file: File,
    path: &str,
    abs_path: String,
    head: &[u8],
    interp: bool,
) -> Result<Elf, LoadError> {
    let bad_kind = if interp { libc::ELIBBAD } else { libc::ENOEXEC };
    let md = file
        .metadata()
        .map_err(|e| err(e.raw_os_error().unwrap_or(libc::EIO), path, "cannot stat"))?;
    let size = md.len();
    if !is_elf(head) {
        return Err(err(bad_kind, path, "not an ELF file"));
    }
    if head.len() < 64 {
        return Err(err(bad_kind, path, "truncated ELF header"));
    }
    match head[4] {
        elf::ELFCLASS64 => {}
        elf::ELFCLASS32 => {
            let m = u16::from_le_bytes([head[18], head[19]]);
            return Err(err(
                bad_kind,
                path,
                &format!(
                    "32-bit ELF (ELFCLASS32, machine {}) is not supported; cetbox runs x86-64 programs only",
                    machine_name(m)
                ),
            ));
        }
        c => return Err(err(bad_kind, path, &format!("invalid ELF class {c}"))),
    }
    if head[5] != elf::ELFDATA2LSB {
        return Err(err(
            bad_kind,
            path,
            "big-endian ELF (ELFDATA2MSB) is not x86-64",
        ));
    }
    let hdr = elf::FileHeader64::<LE>::parse(head)
        .map_err(|e| err(bad_kind, path, &format!("malformed ELF header: {e}")))?;
    let endian = hdr
        .endian()
        .map_err(|e| err(bad_kind, path, &format!("malformed ELF header: {e}")))?;
    let machine = hdr.e_machine(endian);
    if machine != elf::EM_X86_64 {
        return Err(err(
            bad_kind,
            path,
            &format!(
                "ELF for machine {} ({}), not x86-64",
                machine,
                machine_name(machine)
            ),
        ));
    }
    let e_type = hdr.e_type(endian);
    if e_type != elf::ET_EXEC && e_type != elf::ET_DYN {
        let what = match e_type {
            elf::ET_REL => "a relocatable object (ET_REL)",
            elf::ET_CORE => "a core dump (ET_CORE)",
            _ => "not an executable ELF type",
        };
        let errno = if interp { libc::EINVAL } else { libc::ENOEXEC };
        return Err(err(errno, path, &format!("{what}, not an executable")));
    }
    if hdr.e_phentsize(endian) as usize != std::mem::size_of::<elf::ProgramHeader64<LE>>() {
        return Err(err(
            libc::ENOEXEC,
            path,
            &format!("bad program header entry size {}", hdr.e_phentsize(endian)),
        ));
    }
    let phnum = hdr.e_phnum(endian) as u64;
    let phoff = hdr.e_phoff(endian);
    if phnum < 1 || phnum * 56 > MAX_PHDRS_SIZE {
        return Err(err(
            libc::ENOEXEC,
            path,
            &format!("bad number of program headers ({phnum})"),
        ));
    }
    let ph_len = phnum * 56;
    if phoff.checked_add(ph_len).is_none_or(|e| e > size) {
        // Linux's elf_read gives EIO for a short read of the program headers.
        return Err(err(
            libc::EIO,
            path,
            &format!("program headers (offset {phoff:#x}, {phnum} entries) extend past the end of the file ({size} bytes): truncated file"),
        ));
    }
    let raw = read_at(&file, phoff, ph_len as usize)
        .map_err(|e| err(e, path, "cannot read the program headers"))?;
    let table: &[elf::ProgramHeader64<LE>] = object::pod::slice_from_all_bytes(&raw)
        .map_err(|_| err(libc::ENOEXEC, path, "malformed program header table"))?;
    let phdrs: Vec<Phdr> = table
        .iter()
        .map(|p| Phdr {
            p_type: p.p_type(endian),
            p_flags: p.p_flags(endian),
            p_offset: p.p_offset(endian),
            p_vaddr: p.p_vaddr(endian),
            p_filesz: p.p_filesz(endian),
            p_memsz: p.p_memsz(endian),
            p_align: p.p_align(endian),
        })
        .collect();

    let mut out = Elf {
        file,
        path: path.to_string(),
        abs_path,
        size,
        dev: md.dev(),
        ino: md.ino(),
        e_type,
        e_entry: hdr.e_entry(endian),
        e_phoff: phoff,
        phdrs,
        interp: None,
        exec_stack: false,
    };
    out.check_segments()?;
    if !interp {
        out.read_interp()?;
    }
    for p in &out.phdrs {
        if p.p_type == elf::PT_GNU_STACK {
            out.exec_stack = p.p_flags & elf::PF_X != 0;
        }
    }
    Ok(out)
}

impl Elf {
    fn fail(&self, errno: i32, why: &str) -> LoadError {
        err(errno, &self.path, why)
    }

    pub fn loads(&self) -> impl Iterator<Item = &Phdr> {
        self.phdrs.iter().filter(|p| p.p_type == elf::PT_LOAD)
    }

    /// Linux's sanity checks on PT_LOAD (which it applies after the point of no return, so
    /// the errno is never seen natively: cetbox reports ENOEXEC), plus the checks that catch
    /// truncated and corrupted files before they turn into SIGBUS or garbage at run time.
    fn check_segments(&self) -> Result<(), LoadError> {
        let mut prev_end: Option<u64> = None;
        let mut any = false;
        for (i, p) in self.phdrs.iter().enumerate() {
            if p.p_type != elf::PT_LOAD {
                continue;
            }
            any = true;
            let bad = |why: String| self.fail(libc::ENOEXEC, &format!("PT_LOAD #{i}: {why}"));
            if p.p_filesz > p.p_memsz {
                return Err(bad(format!(
                    "p_filesz {:#x} > p_memsz {:#x}",
                    p.p_filesz, p.p_memsz
                )));
            }
            if p.p_vaddr >= TASK_SIZE || p.p_memsz > TASK_SIZE || TASK_SIZE - p.p_memsz < p.p_vaddr
            {
                return Err(bad(format!(
                    "segment {:#x}+{:#x} lies outside the user address space",
                    p.p_vaddr, p.p_memsz
                )));
            }
            if p.p_offset
                .checked_add(p.p_filesz)
                .is_none_or(|e| e > self.size)
            {
                return Err(bad(format!(
                    "file range {:#x}+{:#x} extends past the end of the file ({} bytes): truncated file",
                    p.p_offset, p.p_filesz, self.size
                )));
            }
            if p.p_vaddr.wrapping_sub(p.p_offset) % PAGE_SIZE != 0 {
                return Err(bad(format!(
                    "p_vaddr {:#x} and p_offset {:#x} differ modulo the page size",
                    p.p_vaddr, p.p_offset
                )));
            }
            if let Some(pe) = prev_end {
                if p.p_vaddr < pe {
                    return Err(bad(format!(
                        "segment at {:#x} overlaps or precedes the previous one (ending at {pe:#x})",
                        p.p_vaddr
                    )));
                }
            }
            prev_end = Some(p.p_vaddr + p.p_memsz);
        }
        if !any {
            return Err(self.fail(libc::ENOEXEC, "no loadable (PT_LOAD) segments"));
        }
        if self.e_entry >= TASK_SIZE {
            return Err(self.fail(
                libc::ENOEXEC,
                &format!(
                    "entry point {:#x} outside the user address space",
                    self.e_entry
                ),
            ));
        }
        Ok(())
    }

    /// Reads PT_INTERP (the first one, as Linux).
    fn read_interp(&mut self) -> Result<(), LoadError> {
        let Some(p) = self
            .phdrs
            .iter()
            .find(|p| p.p_type == elf::PT_INTERP)
            .copied()
        else {
            return Ok(());
        };
        if p.p_filesz > PATH_MAX || p.p_filesz < 2 {
            return Err(self.fail(
                libc::ENOEXEC,
                &format!("PT_INTERP size {} is invalid", p.p_filesz),
            ));
        }
        let buf = read_at(&self.file, p.p_offset, p.p_filesz as usize).map_err(|e| {
            self.fail(
                e,
                "PT_INTERP extends past the end of the file: truncated file",
            )
        })?;
        if buf.last() != Some(&0) {
            return Err(self.fail(libc::ENOEXEC, "PT_INTERP is not NUL-terminated"));
        }
        let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        self.interp = Some(buf[..end].to_vec());
        Ok(())
    }

    /// Total span of the PT_LOAD segments, page-aligned (Linux's total_mapping_size).
    pub fn span(&self) -> (u64, u64) {
        let first = self.loads().next().map(|p| p.p_vaddr).unwrap_or(0);
        let last = self
            .loads()
            .map(|p| p.p_vaddr + p.p_memsz)
            .max()
            .unwrap_or(first);
        (page_floor(first), page_ceil(last))
    }

    /// The largest power-of-two p_align of the PT_LOADs (Linux's maximum_alignment).
    pub fn max_align(&self) -> u64 {
        self.loads()
            .map(|p| p.p_align)
            .filter(|a| a.is_power_of_two())
            .max()
            .unwrap_or(PAGE_SIZE)
            .max(PAGE_SIZE)
    }

    /// Maps every PT_LOAD at `bias` (already reserved by a placeholder covering the span).
    pub fn map_segments(&self, mem: &AddressSpace, bias: u64) -> Result<Loaded, LoadError> {
        let mut end = 0u64;
        let mut mapped: Vec<(u64, u64)> = Vec::new();
        for p in self.loads() {
            let prot = prot_of(p.p_flags);
            let vaddr = p.p_vaddr + bias;
            let start = page_floor(vaddr);
            let off_in_page = vaddr - start;
            let file_end = vaddr + p.p_filesz;
            let mem_end = vaddr + p.p_memsz;
            let mut cursor = start;
            if p.p_filesz > 0 {
                let len = page_ceil(p.p_filesz + off_in_page);
                let req = MapRequest {
                    addr: start,
                    len,
                    prot,
                    fixed: true,
                    noreplace: false,
                    shared: false,
                    growsdown: false,
                    low_2g: false,
                    fd: Some(std::os::fd::AsRawFd::as_raw_fd(&self.file)),
                    offset: p.p_offset - off_in_page,
                    file_size: self.size,
                    kind: VmaKind::Normal,
                    backing: Backing::File {
                        path: self.abs_path.clone(),
                        dev: self.dev,
                        inode: self.ino,
                        offset: p.p_offset - off_in_page,
                    },
                };
                mem.map(&req).map_err(|e| {
                    self.fail(
                        libc::ENOMEM,
                        &format!("cannot map segment at {start:#x}: {e:?}"),
                    )
                })?;
                cursor = start + len;
                // The rest of the last file page belongs to .bss: zero it (kernel write, so
                // permissions do not matter).
                if p.p_memsz > p.p_filesz && file_end < cursor {
                    let n = (cursor - file_end) as usize;
                    mem.force_write(file_end, &vec![0u8; n])
                        .map_err(|_| self.fail(libc::EFAULT, "cannot clear the .bss tail"))?;
                }
            }
            let anon_end = page_ceil(mem_end);
            if anon_end > cursor {
                let req = MapRequest {
                    fixed: true,
                    ..MapRequest::anonymous(cursor, anon_end - cursor, prot, VmaKind::Normal)
                };
                mem.map(&req).map_err(|e| {
                    self.fail(
                        libc::ENOMEM,
                        &format!("cannot map .bss at {cursor:#x}: {e:?}"),
                    )
                })?;
            }
            mapped.push((start, anon_end.max(cursor)));
            end = end.max(mem_end);
        }
        // Linux maps the whole span once and unmaps what the segments do not use: holes
        // between segments stay unmapped.
        let (lo, hi) = self.span();
        let (lo, hi) = (lo + bias, hi + bias);
        let mut c = lo;
        for (s, e) in mapped {
            if s > c {
                let _ = mem.unmap(c, s - c);
            }
            c = c.max(e);
        }
        if hi > c {
            let _ = mem.unmap(c, hi - c);
        }
        // AT_PHDR: the program headers' address inside the PT_LOAD that holds them.
        let phdr_addr = self
            .loads()
            .find(|p| p.p_offset <= self.e_phoff && self.e_phoff < p.p_offset + p.p_filesz)
            .map(|p| self.e_phoff - p.p_offset + p.p_vaddr)
            .unwrap_or(0)
            + bias;
        Ok(Loaded {
            bias,
            end,
            phdr_addr,
            entry: self.e_entry.wrapping_add(bias),
        })
    }
}

/// PROT_* from ELF p_flags.
pub fn prot_of(flags: u32) -> u32 {
    let mut p = 0;
    if flags & elf::PF_R != 0 {
        p |= libc::PROT_READ;
    }
    if flags & elf::PF_W != 0 {
        p |= libc::PROT_WRITE;
    }
    if flags & elf::PF_X != 0 {
        p |= libc::PROT_EXEC;
    }
    p as u32
}
