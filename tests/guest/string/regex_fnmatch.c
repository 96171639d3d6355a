//! link: static-pie
#include <fnmatch.h>
#include <regex.h>
#include <stdio.h>
#include <string.h>
int main(void) {
    const char *pats[] = {"^[a-z]+[0-9]*$", "(ab|cd)+e", "^([0-9]{3})-([0-9]{4})$", "x*y+z?", "[[:upper:]][[:alpha:]]+", "a.c", "^$"};
    const char *subjects[] = {"hello42", "ababcde", "555-1234", "xxyyy", "Words here", "abc a-c", "", "no match!"};
    for (unsigned p = 0; p < sizeof pats / sizeof *pats; p++) {
        regex_t re;
        int rc = regcomp(&re, pats[p], REG_EXTENDED);
        if (rc) { char eb[100]; regerror(rc, &re, eb, sizeof eb); printf("regcomp %s: %s\n", pats[p], eb); continue; }
        for (unsigned s = 0; s < sizeof subjects / sizeof *subjects; s++) {
            regmatch_t m[4];
            if (regexec(&re, subjects[s], 4, m, 0) == 0) {
                printf("/%s/ ~ \"%s\":", pats[p], subjects[s]);
                for (int i = 0; i < 4 && m[i].rm_so >= 0; i++) printf(" [%d,%d)", (int)m[i].rm_so, (int)m[i].rm_eo);
                printf("\n");
            }
        }
        regfree(&re);
    }
    regex_t bad;
    int rc = regcomp(&bad, "a(b", REG_EXTENDED);
    char eb[100];
    regerror(rc, &bad, eb, sizeof eb);
    printf("bad regex: %d %s\n", rc != 0, eb);
    const char *gl[] = {"*.c", "a?c", "[a-c]*", "*/*", "\\*", "[!x]yz", "**"};
    const char *names[] = {"main.c", "abc", "b.txt", "dir/file", "*", "ayz", ".hidden"};
    for (unsigned g = 0; g < sizeof gl / sizeof *gl; g++) {
        printf("fnmatch %-7s:", gl[g]);
        for (unsigned n = 0; n < sizeof names / sizeof *names; n++) printf(" %d", fnmatch(gl[g], names[n], FNM_PATHNAME | FNM_PERIOD) == 0);
        printf("\n");
    }
    return 0;
}
