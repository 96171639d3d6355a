//! cetbox's own short-lived host descriptors, kept out of the guest's listings of its
//! descriptor directory.
//!
//! The guest's descriptors are the host process's, so cetbox's own appear in the host's
//! /proc/self/fd and fdinfo too. Those it keeps are registered (`cetbox_linux::private_fds`)
//! and left out of a listing; many more live only for a moment: the O_PATH descriptor of each
//! path resolution, the host files read to make a /proc file, a profile file, a pidfd used for
//! one check. Another guest thread's listing made in that moment would name a descriptor the
//! guest never had (and one that is closed when it looks at it: glibc's support_descriptors
//! fstats each one). So every such descriptor is opened and closed under a [`hold`], and a
//! listing is made with no hold in place ([`without_holds`]): holders and listers exclude each
//! other by two counters (each side announces itself, then checks the other, as in Dekker's
//! algorithm, with sequentially consistent atomics), a lister waits for the holds in place to
//! end and new holds wait for the listing. Both sides last as long as a few host calls, and a
//! thread that lists takes no hold meanwhile (its own holds are free: a thread-local mark), so
//! neither waits long.
//!
//! Per host process, as the descriptor table it describes; a fork child starts with none of
//! either ([`after_fork_child`]): only the forking thread goes on there.

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

static HOLDERS: AtomicUsize = AtomicUsize::new(0);
static LISTERS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// Set while this thread lists (its holds then do not count and do not wait).
    static LISTING: Cell<bool> = const { Cell::new(false) };
    /// How many holds this thread has in place. Only the outermost counts in `HOLDERS`: a
    /// thread that takes a second hold inside one (private_fds::make_private_fd under
    /// fork's or remote_mem's hold, a /proc file that opens another process's memory file)
    /// must not wait for a listing that itself waits for this thread's first hold.
    static HELD: Cell<usize> = const { Cell::new(0) };
}

/// A hold in place: no listing is made until it ends.
pub struct Hold(Kind);

enum Kind {
    /// Taken while this thread lists: counts for nothing.
    Listing,
    /// Inside another hold of this thread.
    Nested,
    /// This thread's outermost hold, counted in `HOLDERS`.
    Outer,
}

/// Takes a hold for the descriptors this thread is about to open and close (waits while a
/// listing is being made, unless this thread has a hold in place already).
pub fn hold() -> Hold {
    if LISTING.try_with(Cell::get).unwrap_or(false) {
        return Hold(Kind::Listing);
    }
    let held = HELD.try_with(Cell::get).unwrap_or(0);
    if held > 0 {
        let _ = HELD.try_with(|h| h.set(held + 1));
        return Hold(Kind::Nested);
    }
    loop {
        while LISTERS.load(SeqCst) != 0 {
            std::thread::yield_now();
        }
        HOLDERS.fetch_add(1, SeqCst);
        if LISTERS.load(SeqCst) == 0 {
            let _ = HELD.try_with(|h| h.set(1));
            return Hold(Kind::Outer);
        }
        HOLDERS.fetch_sub(1, SeqCst);
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        match self.0 {
            Kind::Listing => {}
            Kind::Nested => {
                let _ = HELD.try_with(|h| h.set(h.get().saturating_sub(1)));
            }
            Kind::Outer => {
                let _ = HELD.try_with(|h| h.set(0));
                HOLDERS.fetch_sub(1, SeqCst);
            }
        }
    }
}

/// Runs `f` (a listing of the descriptor directory) once no hold is in place, keeping new ones
/// from starting until it returns.
pub fn without_holds<T>(f: impl FnOnce() -> T) -> T {
    struct Listing;
    impl Drop for Listing {
        fn drop(&mut self) {
            let _ = LISTING.try_with(|l| l.set(false));
            LISTERS.fetch_sub(1, SeqCst);
        }
    }
    LISTERS.fetch_add(1, SeqCst);
    let _listing = Listing;
    let _ = LISTING.try_with(|l| l.set(true));
    while HOLDERS.load(SeqCst) != 0 {
        std::thread::yield_now();
    }
    f()
}

/// In a fork child: the other threads, and whatever holds or listings they had, stay in the
/// parent.
pub fn after_fork_child() {
    let listing = LISTING.try_with(Cell::get).unwrap_or(false);
    // The forking thread's own outermost hold, if it forked inside one, is still to be
    // dropped here.
    let held = HELD.try_with(Cell::get).unwrap_or(0) > 0 && !listing;
    HOLDERS.store(usize::from(held), SeqCst);
    LISTERS.store(usize::from(listing), SeqCst);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The counters are process-wide: the tests take turns.
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

    /// A hold taken inside another hold of the same thread does not wait for a listing that
    /// waits for the outer one (which deadlocked both threads).
    #[test]
    fn nested_hold_does_not_wait_for_a_waiting_listing() {
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let outer = hold();
        let (tx, rx) = std::sync::mpsc::channel();
        let lister = std::thread::spawn(move || {
            without_holds(|| tx.send(()).unwrap());
        });
        // The lister has announced itself (or is about to): a new outer hold would now wait.
        while LISTERS.load(SeqCst) == 0 {
            std::thread::yield_now();
        }
        let inner = hold();
        drop(inner);
        assert!(
            rx.try_recv().is_err(),
            "the listing ran while a hold was in place"
        );
        drop(outer);
        rx.recv().unwrap();
        lister.join().unwrap();
    }

    /// A listing never runs while a hold is in place, and the listing thread's own holds do
    /// not wait for it.
    #[test]
    fn holds_and_listings_exclude_each_other() {
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let inside = std::sync::Arc::new(AtomicUsize::new(0));
        let holders: Vec<_> = (0..3)
            .map(|_| {
                let (stop, inside) = (stop.clone(), inside.clone());
                std::thread::spawn(move || {
                    while !stop.load(SeqCst) {
                        let _h = hold();
                        inside.fetch_add(1, SeqCst);
                        std::thread::yield_now();
                        inside.fetch_sub(1, SeqCst);
                    }
                })
            })
            .collect();
        for _ in 0..2000 {
            without_holds(|| {
                assert_eq!(inside.load(SeqCst), 0);
                let _own = hold();
            });
        }
        stop.store(true, SeqCst);
        for h in holders {
            h.join().unwrap();
        }
    }
}
