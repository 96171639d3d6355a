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
}

/// A hold in place: no listing is made until it ends.
pub struct Hold(bool);

/// Takes a hold for the descriptors this thread is about to open and close (waits while a
/// listing is being made).
pub fn hold() -> Hold {
    if LISTING.try_with(Cell::get).unwrap_or(false) {
        return Hold(false);
    }
    loop {
        while LISTERS.load(SeqCst) != 0 {
            std::thread::yield_now();
        }
        HOLDERS.fetch_add(1, SeqCst);
        if LISTERS.load(SeqCst) == 0 {
            return Hold(true);
        }
        HOLDERS.fetch_sub(1, SeqCst);
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        if self.0 {
            HOLDERS.fetch_sub(1, SeqCst);
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
    let mine = LISTING.try_with(Cell::get).unwrap_or(false);
    HOLDERS.store(0, SeqCst);
    LISTERS.store(usize::from(mine), SeqCst);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A listing never runs while a hold is in place, and the listing thread's own holds do
    /// not wait for it.
    #[test]
    fn holds_and_listings_exclude_each_other() {
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
