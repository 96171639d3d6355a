//! userfaultfd for guests (crates/linux/src/syscalls/uffd.rs): missing-page faults raised by
//! each kind of guest access, resolved by another guest thread with UFFDIO_COPY.
//! tests/shstk/uffd.c runs one access kind per mode. Ordinary loads, stores and syscalls are
//! compared with native runs byte for byte (and checked against the values the program
//! implies); the shadow-stack accesses (no CET hardware here) are checked against the spec:
//! the upstream selftest's test_userfaultfd steps (tools/testing/selftests/x86/
//! test_shadow_stack.c), and a CALL's push, a RET's pop, INCSSP's read and signal delivery's
//! token write each block on a missing shadow-stack page until UFFDIO_COPY, then complete as if
//! the page had been there (the right return address popped, SSP back at the top).
//! These need userfaultfd on the host for the test's user (root here, or
//! vm.unprivileged_userfaultfd=1): natively as under cetbox.

mod common;

use common::{run, Spec, Status};
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

fn prog() -> &'static PathBuf {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("uffd");
        std::fs::create_dir_all(&dir).unwrap();
        let exe = dir.join("uffd");
        let st = Command::new("gcc")
            .args([
                "-O1",
                "-g",
                "-static",
                "-pthread",
                "-mno-red-zone",
                "-fcf-protection=none",
                "-o",
            ])
            .arg(&exe)
            .arg(common::repo_root().join("tests/shstk/uffd.c"))
            .status()
            .expect("gcc must be installed");
        assert!(st.success(), "building uffd.c failed");
        exe
    })
}

fn spec(mode: &str) -> Spec {
    let mut s = Spec::new(prog()).args([mode]);
    s.timeout = std::time::Duration::from_secs(30);
    s
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Runs `mode` natively and under cetbox; both must agree and print `expected`.
fn same_as_native(mode: &str, expected: &str) {
    let native = run(&spec(mode));
    let emu = run(&spec(mode).under_cetbox(&[]));
    assert!(
        !text(&emu.stderr).contains("panicked"),
        "{}",
        text(&emu.stderr)
    );
    assert_eq!(
        native.status,
        Status::Exited(0),
        "native: {}",
        text(&native.stdout)
    );
    assert_eq!(text(&native.stdout), expected, "native run");
    if let Some(d) = common::compare("native", &native, "cetbox", &emu) {
        panic!("{mode}: {d}");
    }
}

/// Runs a shadow-stack `mode` under cetbox only.
fn cetbox(mode: &str) -> String {
    let o = run(&spec(mode).under_cetbox(&[]));
    let e = text(&o.stderr);
    assert!(!e.contains("panicked"), "{e}");
    assert_eq!(o.status, Status::Exited(0), "{}\n{e}", text(&o.stdout));
    text(&o.stdout)
}

const REGISTERED: &str = "register: copy 1 zeropage 1 wake 1\n";

#[test]
fn load_blocks_until_uffdio_copy() {
    // The page is filled with words 0x1111 * (i + 1): word 1 is 0x2222.
    same_as_native(
        "load",
        &format!(
            "{REGISTERED}load: value 0x2222\nload: resolver 0, events 1, at the page 1, write 0\n"
        ),
    );
}

#[test]
fn store_faults_as_a_write_and_lands_on_the_copied_page() {
    same_as_native(
        "store",
        &format!(
            "{REGISTERED}store: value 5, neighbour 0x3333\nstore: resolver 0, events 1, at the page 1, write 1\n"
        ),
    );
}

#[test]
fn syscall_into_a_missing_page_blocks_in_the_kernel() {
    same_as_native(
        "syscall",
        &format!(
            "{REGISTERED}syscall: read 8\nsyscall: bytes 12345678, next word 0x3333\nsyscall: resolver 0, events 1, at the page 1, write 1\n"
        ),
    );
}

#[test]
fn user_mode_only_makes_kernel_faults_efault() {
    same_as_native(
        "syscall-umo",
        &format!(
            "{REGISTERED}syscall-umo: read -1 EFAULT\nsyscall-umo: then a load reads 0x1111\nsyscall-umo: resolver 0, events 1, at the page 1, write 0\n"
        ),
    );
}

/// A syscall cetbox answers itself (uname) writing into a missing page blocks until the page
/// is resolved, as the kernel's copy_to_user does, then writes its answer; the fault is a
/// write fault.
#[test]
fn emulated_syscall_into_a_missing_page_blocks() {
    same_as_native(
        "emulated",
        &format!(
            "{REGISTERED}emulated: uname 0, sysname Linux\nemulated: resolver 0, events 1, at the page 1, write 1\n"
        ),
    );
}

/// With UFFD_USER_MODE_ONLY the kernel's own accesses fail instead (handle_userfault refuses
/// faults without FAULT_FLAG_USER): uname and rt_sigprocmask's old set, both answered by
/// cetbox itself, return EFAULT without an event.
#[test]
fn user_mode_only_makes_emulated_syscalls_efault() {
    same_as_native(
        "emulated-umo",
        &format!(
            "{REGISTERED}emulated-umo: uname -1 EFAULT, rt_sigprocmask -1 EFAULT\nemulated-umo: then a load reads 0x1111\nemulated-umo: resolver 0, events 1, at the page 1, write 0\n"
        ),
    );
}

/// futex(FUTEX_WAKE_OP) on a word in a missing page: the kernel's atomic update does not wait
/// for the page (kernel/futex: fault_in_user_writeable cannot retry a userfault): EFAULT, no
/// event. cetbox runs the host's update under the mapping lock with the word checked
/// writable, so this must stay a non-blocking EFAULT (no deadlock, no event).
#[test]
fn futex_wake_op_on_a_missing_page_is_efault_without_waiting() {
    same_as_native(
        "wake-op",
        &format!(
            "{REGISTERED}wake-op: futex -1 EFAULT, events so far 0\nwake-op: then a load reads the word 0x1111\nwake-op: resolver 0, events 1, at the page 1, write 0\n"
        ),
    );
}

#[test]
fn resolver_may_change_mappings_while_a_fault_is_pending() {
    same_as_native(
        "mprotect-in-resolver",
        &format!(
            "{REGISTERED}mprotect-in-resolver: value 0x2222\nmprotect-in-resolver: the resolver's mprotect 0\nmprotect-in-resolver: resolver 0, events 1, at the page 1, write 0\n"
        ),
    );
}

/// A page unmapped by another thread while an access waits on it, then woken: Linux retries
/// the fault, finds no mapping, and raises SIGSEGV (SEGV_MAPERR at the address) for a load or
/// store, or fails a syscall's copy with EFAULT leaving a pipe's data unread
/// (fs/userfaultfd.c handle_userfault returns VM_FAULT_RETRY). cetbox must neither crash,
/// hang, nor let the access land on a fresh page.
#[test]
fn unmapped_while_blocked_load_gets_sigsegv() {
    same_as_native(
        "unmap-load",
        &format!("{REGISTERED}unmap-load: resolver 0, events 1, at the page 1, write 0\nunmap-load: the resolver's munmap 0, wake 0\nunmap-load: SIGSEGV code 1 at the address 1\n"),
    );
}

#[test]
fn unmapped_while_blocked_store_gets_sigsegv() {
    same_as_native(
        "unmap-store",
        &format!("{REGISTERED}unmap-store: resolver 0, events 1, at the page 1, write 1\nunmap-store: the resolver's munmap 0, wake 0\nunmap-store: SIGSEGV code 1 at the address 1\n"),
    );
}

/// The same SIGSEGV is precise: RIP at the load or store and nothing changed, so a handler
/// that maps a fresh page there (word 1 = 0x4242) and returns makes the instruction run again:
/// the load reads 0x4242, the store leaves 5.
#[test]
fn unmapped_while_blocked_load_reexecutes_after_a_returning_handler() {
    same_as_native(
        "unmap-load-return",
        &format!("{REGISTERED}unmap-load-return: handler returned 1 times, the load read 0x4242\nunmap-load-return: resolver 0, events 1, at the page 1, write 0\nunmap-load-return: the resolver's munmap 0, wake 0\nunmap-load-return: SIGSEGV code 1 at the address 1\n"),
    );
}

#[test]
fn unmapped_while_blocked_store_reexecutes_after_a_returning_handler() {
    same_as_native(
        "unmap-store-return",
        &format!("{REGISTERED}unmap-store-return: handler returned 1 times, the word holds 0x5\nunmap-store-return: resolver 0, events 1, at the page 1, write 1\nunmap-store-return: the resolver's munmap 0, wake 0\nunmap-store-return: SIGSEGV code 1 at the address 1\n"),
    );
}

#[test]
fn unmapped_while_blocked_read_is_efault_and_keeps_the_data() {
    same_as_native(
        "unmap-read",
        &format!("{REGISTERED}unmap-read: resolver 0, events 1, at the page 1, write 1\nunmap-read: the resolver's munmap 0, wake 0\nunmap-read: read -1 EFAULT, then the pipe still holds 8 bytes \"12345678\"\n"),
    );
}

/// userfaultfd_register/unregister (fs/userfaultfd.c): the range needs one mapping in it and
/// may have holes between mappings; one entirely in a hole is EINVAL. The `ioctls` the
/// register answers (the range's UFFD_API_RANGE_IOCTLS) include COPY, ZEROPAGE and WAKE.
#[test]
fn register_range_with_holes_between_mappings() {
    same_as_native(
        "holes",
        "holes: register inside the hole -1 EINVAL\nholes: register across the hole 0, copy 1 zeropage 1 wake 1\nholes: the second mapping's load reads 0x2222\nholes: resolver 0, events 1, at the page 1, write 0\nholes: unregister across the hole 0, inside the hole -1 EINVAL\nholes: after unregister the load reads 0\n",
    );
}

/// The upstream selftest's userfaultfd case (docs/acceptance.md 13.9; Linux
/// tools/testing/selftests/x86/test_shadow_stack.c, test_userfaultfd).
#[test]
fn selftest_wrss_blocks_until_resolved() {
    assert_eq!(
        cetbox("selftest"),
        "selftest: api 0 register 0 madvise 0 resolver 0 polled 1 events 1 write 1 value 1 after join 2\n"
    );
}

#[test]
fn call_push_on_a_missing_shadow_stack_page() {
    assert_eq!(
        cetbox("call"),
        format!("{REGISTERED}call: resolver 0, events 1, at the page 1, write 1\ncall: result 42, back on the new stack's top before pivoting back 1\n")
    );
}

#[test]
fn ret_pop_from_a_missing_shadow_stack_page() {
    // The resolver restores the page's contents: the RET then finds its return address and
    // returns normally (no #CP).
    assert_eq!(
        cetbox("ret"),
        format!("{REGISTERED}ret: resolver 0, events 1, at the page 1, write 0\nret: result 7, back on the new stack's top before pivoting back 1\n")
    );
}

#[test]
fn incssp_read_of_a_missing_shadow_stack_page() {
    assert_eq!(
        cetbox("incssp"),
        format!("{REGISTERED}incssp: resolver 0, events 1, at the page 1, write 0\nincssp: result 0, back on the new stack's top before pivoting back 1\n")
    );
}

#[test]
fn signal_token_write_to_a_missing_shadow_stack_page() {
    assert_eq!(
        cetbox("signal"),
        format!("{REGISTERED}signal: resolver 0, events 1, at the page 1, write 1\nsignal: result 0, back on the new stack's top before pivoting back 1\n")
    );
}

/// With UFFD_USER_MODE_ONLY the kernel's own stores of a signal frame are kernel accesses:
/// on a missing page of the alternate signal stack they fail (fs/userfaultfd.c
/// handle_userfault), x64_setup_rt_frame fails, and signal_setup_done forces SIGSEGV
/// (SI_KERNEL), which runs its handler on the ordinary stack; no fault event is queued.
#[test]
fn user_mode_only_signal_frame_write_fails_with_sigsegv() {
    same_as_native(
        "umo-frame",
        &format!("{REGISTERED}umo-frame: SIGUSR1 handler ran 0, SIGSEGV code 128, events 0\n"),
    );
}

/// userfaultfd_register checks every mapping of the range before it registers any, so a
/// request refused for a later mapping (a regular file mapping cannot take MISSING mode:
/// vma_can_userfault) changes nothing: what was registered stays registered (EBUSY for
/// another descriptor), what was not stays free.
#[test]
fn refused_register_leaves_earlier_registrations() {
    same_as_native(
        "register-refused",
        "register-refused: first page 0; whole range -1 EINVAL; first page on another descriptor -1 EBUSY; second page on another descriptor 0\n",
    );
}
