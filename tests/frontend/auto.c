/* No libc: exits 1 if shadow stacks are on at the first instruction (RDSSP nonzero), else 0. */
__asm__(".globl _start\n_start:\n xor %eax, %eax\n rdsspq %rax\n xor %edi, %edi\n test %rax, %rax\n"
        " setnz %dil\n mov $60, %eax\n syscall\n");
