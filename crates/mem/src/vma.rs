/// What a mapping is, for /proc/self/maps names and for shadow-stack rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VmaKind {
    Normal,
    /// The main thread's stack ("[stack]"), which grows down on demand.
    Stack,
    /// The brk heap ("[heap]").
    Heap,
    /// A shadow stack (VM_SHADOW_STACK; smaps flag `ss`).
    ShadowStack,
    /// The vDSO image ("[vdso]").
    Vdso,
    /// The vvar page ("[vvar]").
    Vvar,
}

/// Where a mapping's contents come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Backing {
    Anonymous,
    File {
        path: String,
        dev: u64,
        inode: u64,
        offset: u64,
    },
}

/// One guest mapping, as Linux's VMA.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vma {
    pub start: u64,
    pub end: u64,
    /// PROT_READ | PROT_WRITE | PROT_EXEC as the guest asked.
    pub prot: u32,
    pub shared: bool,
    pub growsdown: bool,
    pub kind: VmaKind,
    pub backing: Backing,
}

impl Vma {
    pub fn len(&self) -> u64 {
        self.end - self.start
    }

    pub fn is_empty(&self) -> bool {
        self.end == self.start
    }

    /// The part of this VMA within [start, end), with file offsets adjusted.
    pub fn slice(&self, start: u64, end: u64) -> Vma {
        let start = start.max(self.start);
        let end = end.min(self.end);
        let backing = match &self.backing {
            Backing::Anonymous => Backing::Anonymous,
            Backing::File {
                path,
                dev,
                inode,
                offset,
            } => Backing::File {
                path: path.clone(),
                dev: *dev,
                inode: *inode,
                offset: offset + (start - self.start),
            },
        };
        Vma {
            start,
            end,
            backing,
            ..self.clone()
        }
    }
}
