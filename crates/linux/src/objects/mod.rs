//! Facts about ELF objects that matter for shadow stacks: their GNU property notes, and the
//! shared libraries a dynamically linked program loads, resolved as ld.so resolves them. Used by
//! `--shstk=auto` and by `cetbox check`.

pub mod properties;
pub mod resolve;

pub use properties::{read_file_properties, read_properties, Properties};
pub use resolve::{resolve_closure, Resolved, Resolver};
