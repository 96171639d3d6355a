//! Starting a guest program: the first process and its leader thread.

use crate::loader;
use crate::options::Options;
use crate::process::{Process, Thread};
use crate::run::run_thread;
use crate::signals;
use std::sync::Arc;

/// Starts `path` with `argv` and `envp` in a new guest process and runs it to the end;
/// `before` is called once the program is loaded, before its first instruction, with the
/// process and the first thread's tid (a debugger attaches there).
pub fn run_program(
    opts: Options,
    observer: Option<Arc<dyn crate::events::Observer>>,
    path: &str,
    argv: Vec<Vec<u8>>,
    envp: Vec<Vec<u8>>,
    before: impl FnOnce(&Arc<Process>, i32),
) -> Result<std::convert::Infallible, loader::LoadError> {
    cetbox_jit::profile::configure(opts.translation_cache.clone());
    let proc = Process::new(Arc::new(opts), observer).map_err(|e| loader::LoadError {
        errno: e.raw_os_error().unwrap_or(libc::ENOMEM),
        message: format!("cannot set up the guest address space: {e}"),
    })?;
    let mut t = Thread::new(proc.clone(), proc.pid);
    loader::load(&mut t, path, &argv, &envp)?;
    // The view and this thread's slot before the host set-up below, whose waits (a join)
    // are not the guest's (`procview::Waiting`).
    crate::procview::refresh(&t, true);
    signals::host::install(&mut t);
    crate::thread_group::register_main(&t);
    before(&proc, t.tid);
    let how = run_thread(&mut t);
    // Returns only if the leader exited alone while other threads run on.
    crate::thread::finish_thread(&mut t, how);
    crate::thread_group::park_forever()
}
