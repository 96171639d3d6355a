// A critical section that never commits: rseq_spin(area, desc) stores `desc` in
// area->rseq_cs and spins at rseq_spin_start (the section is [rseq_spin_start,
// rseq_spin_end)) until the kernel aborts it; the abort handlers rseq_spin_abort (preceded by
// RSEQ_SIG) and rseq_spin_abort_badsig (preceded by another value) return to the caller.
#ifndef GUEST_COMMON_RSEQ_SPIN_H
#define GUEST_COMMON_RSEQ_SPIN_H
#include "rseq.h"

extern char rseq_spin_start[], rseq_spin_end[], rseq_spin_abort[], rseq_spin_abort_badsig[];
void rseq_spin(struct rseq_area *area, const struct rseq_cs_desc *desc);

__asm__(".text\n"
        ".globl rseq_spin\n"
        ".type rseq_spin, @function\n"
        "rseq_spin:\n"
        "  movq %rsi, 8(%rdi)\n"
        ".globl rseq_spin_start\n"
        "rseq_spin_start:\n"
        "  jmp rseq_spin_start\n"
        ".globl rseq_spin_end\n"
        "rseq_spin_end:\n"
        "  ud2\n"
        "  .byte 0x0f, 0xb9, 0x3d\n"
        "  .long 0x53053053\n"
        ".globl rseq_spin_abort\n"
        "rseq_spin_abort:\n"
        "  ret\n"
        "  .byte 0x0f, 0xb9, 0x3d\n"
        "  .long 0x12345678\n"
        ".globl rseq_spin_abort_badsig\n"
        "rseq_spin_abort_badsig:\n"
        "  ret\n"
        ".size rseq_spin, . - rseq_spin\n");

// The descriptor of that section with abort handler `abort_ip`.
static inline struct rseq_cs_desc rseq_spin_desc(const char *abort_ip) {
    struct rseq_cs_desc d = {0};
    d.start_ip = (uint64_t)rseq_spin_start;
    d.post_commit_offset = (uint64_t)(rseq_spin_end - rseq_spin_start);
    d.abort_ip = (uint64_t)abort_ip;
    return d;
}
#endif
