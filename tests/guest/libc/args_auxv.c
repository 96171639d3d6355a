//! args: one "" three-with-dash --flag=x -z 12345678901234567890
#include <elf.h>
#include <link.h>
#include <stdio.h>
#include <string.h>
#include <sys/auxv.h>
#include <unistd.h>
extern const ElfW(Ehdr) __ehdr_start;
extern void _start(void);
int main(int argc, char **argv) {
    printf("argc=%d\n", argc);
    for (int i = 1; i < argc; i++) printf("argv[%d]=[%s] len %zu\n", i, argv[i], strlen(argv[i]));
    printf("argv[argc]=%s\n", argv[argc] == NULL ? "NULL" : "non-null");
    const char *slash = strrchr(argv[0], '/');
    printf("argv0 basename=%s\n", slash ? slash + 1 : argv[0]);
    printf("AT_PAGESZ=%lu\n", getauxval(AT_PAGESZ));
    printf("sysconf pagesize=%ld\n", sysconf(_SC_PAGESIZE));
    printf("AT_CLKTCK=%lu\n", getauxval(AT_CLKTCK));
    printf("AT_PHENT=%lu\n", getauxval(AT_PHENT));
    printf("AT_PHNUM=%lu matches ehdr: %d\n", getauxval(AT_PHNUM),
           getauxval(AT_PHNUM) == __ehdr_start.e_phnum);
    printf("AT_PHDR matches: %d\n",
           getauxval(AT_PHDR) == (unsigned long)&__ehdr_start + __ehdr_start.e_phoff);
    printf("AT_ENTRY matches _start: %d\n", getauxval(AT_ENTRY) == (unsigned long)&_start);
    printf("AT_BASE=%lu\n", getauxval(AT_BASE));
    printf("AT_SECURE=%lu\n", getauxval(AT_SECURE));
    printf("AT_UID==getuid: %d\n", getauxval(AT_UID) == getuid());
    printf("AT_EUID==geteuid: %d\n", getauxval(AT_EUID) == geteuid());
    printf("AT_GID==getgid: %d\n", getauxval(AT_GID) == getgid());
    printf("AT_EGID==getegid: %d\n", getauxval(AT_EGID) == getegid());
    printf("AT_RANDOM present: %d\n", getauxval(AT_RANDOM) != 0);
    const char *plat = (const char *)getauxval(AT_PLATFORM);
    printf("AT_PLATFORM=%s\n", plat ? plat : "(none)");
    const char *fn = (const char *)getauxval(AT_EXECFN);
    const char *fs = fn ? strrchr(fn, '/') : NULL;
    printf("AT_EXECFN basename=%s\n", fs ? fs + 1 : (fn ? fn : "(none)"));
    printf("AT_EXECFN==argv0: %d\n", fn && strcmp(fn, argv[0]) == 0);
    printf("ELF class=%d machine=%d type=%d\n", __ehdr_start.e_ident[EI_CLASS],
           __ehdr_start.e_machine, __ehdr_start.e_type);
    /* the stack layout: argv, then envp, then auxv, contiguous */
    char **envp = argv + argc + 1;
    while (*envp) envp++;
    ElfW(auxv_t) *av = (ElfW(auxv_t) *)(envp + 1);
    int n = 0, seen_null = 0;
    for (; n < 64; n++) {
        if (av[n].a_type == AT_NULL) { seen_null = 1; break; }
    }
    printf("auxv terminated: %d\n", seen_null);
    int has_pagesz = 0;
    for (int i = 0; i < n; i++) if (av[i].a_type == AT_PAGESZ) has_pagesz = (av[i].a_un.a_val == 4096);
    printf("auxv on stack has AT_PAGESZ=4096: %d\n", has_pagesz);
    printf("stack 16-aligned in main: %d\n", ((unsigned long)__builtin_frame_address(0) & 15) == 0);
    return 0;
}
