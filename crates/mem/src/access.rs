/// The kind of a guest memory access, which decides the permission it needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// An ordinary data read (allowed on shadow-stack pages).
    Read,
    /// An ordinary data write (faults on shadow-stack pages).
    Write,
    /// An instruction fetch.
    Fetch,
    /// A shadow-stack load (RET, INCSSP, RSTORSSP, SAVEPREVSSP): needs a writable shadow-stack page.
    ShadowRead,
    /// A shadow-stack store (CALL, WRSS, SAVEPREVSSP, kernel signal tokens).
    ShadowWrite,
}

impl Access {
    pub fn is_write(self) -> bool {
        matches!(self, Access::Write | Access::ShadowWrite)
    }
    pub fn is_shadow(self) -> bool {
        matches!(self, Access::ShadowRead | Access::ShadowWrite)
    }
}
