#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
int main(void) {
    char buf[256];
    strcpy(buf, "Hello");
    strcat(buf, ", ");
    strncat(buf, "world!!!", 7);
    printf("[%s] len=%zu\n", buf, strlen(buf));
    printf("strchr o: %ld, strrchr o: %ld, strchrnul z: %ld\n", strchr(buf, 'o') - buf, strrchr(buf, 'o') - buf, strchrnul(buf, 'z') - buf);
    printf("strstr: %ld, strcasestr: %ld, null: %d\n", strstr(buf, "wor") - buf, strcasestr(buf, "WORLD") - buf, strstr(buf, "xyz") == NULL);
    printf("strspn=%zu strcspn=%zu strpbrk=%s\n", strspn("aaabbbccc", "ab"), strcspn("hello world", " w"), strpbrk("hello world", "wr"));
    const char *cmps[][2] = {{"abc", "abd"}, {"abc", "abc"}, {"abc", "ab"}, {"", ""}, {"\xff", "a"}, {"ABC", "abc"}, {"a\x80", "a\x7f"}};
    for (unsigned i = 0; i < sizeof cmps / sizeof *cmps; i++) {
        int a = strcmp(cmps[i][0], cmps[i][1]), b = strncmp(cmps[i][0], cmps[i][1], 2), c = strcasecmp(cmps[i][0], cmps[i][1]);
        printf("cmp %u: strcmp %d strncmp2 %d strcasecmp %d memcmp %d strverscmp %d\n", i, (a > 0) - (a < 0), (b > 0) - (b < 0), (c > 0) - (c < 0),
               memcmp(cmps[i][0], cmps[i][1], 1) > 0 ? 1 : memcmp(cmps[i][0], cmps[i][1], 1) < 0 ? -1 : 0, strverscmp(cmps[i][0], cmps[i][1]) > 0);
    }
    printf("strverscmp: %d %d %d\n", strverscmp("file9", "file10") < 0, strverscmp("1.2.10", "1.2.9") > 0, strverscmp("a01", "a1") < 0);
    char tok[] = "  alpha, beta;;gamma ,delta  ";
    char *save, *t = strtok_r(tok, " ,;", &save);
    while (t) { printf("tok [%s]\n", t); t = strtok_r(NULL, " ,;", &save); }
    char tok2[] = "a:b::c";
    char *p = tok2, *s;
    while ((s = strsep(&p, ":")) != NULL) printf("sep [%s]\n", s);
    char *d = strdup("duplicate me"), *dn = strndup("truncate", 4);
    printf("strdup [%s] strndup [%s]\n", d, dn);
    free(d); free(dn);
    char mb[] = "memory block with bytes";
    printf("memchr: %ld memrchr: %ld rawmemchr: %ld memmem: %ld\n", (char *)memchr(mb, 'b', sizeof mb) - mb, (char *)memrchr(mb, 'b', sizeof mb) - mb,
           (char *)rawmemchr(mb, 'w') - mb, (char *)memmem(mb, sizeof mb, "with", 4) - mb);
    for (int e = 0; e < 40; e++) printf("strerror(%d) = %s\n", e, strerror(e));
    printf("strerror(9999) = %s\n", strerror(9999));
    char eb[64];
    printf("strerror_r: %s\n", strerror_r(ENOENT, eb, sizeof eb));
    printf("strsignal(11) = %s, strsignal(2) = %s\n", strsignal(11), strsignal(2));
    printf("ffs: %d %d %d, index %s\n", ffs(0), ffs(8), ffsll(1LL << 40), index("xyz", 'y'));
    char rev[] = "abcdef";
    strfry(rev); /* random permutation: only print a sorted-independent property */
    printf("strfry keeps length %zu\n", strlen(rev));
    /* every length and alignment, near a protected page so overreads would fault natively too */
    long pg = 4096;
    char *map = mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    mprotect(map + pg, pg, PROT_NONE);
    unsigned long h = 0;
    for (int len = 0; len < 200; len++) {
        char *str = map + pg - len - 1;
        memset(str, 'a' + len % 26, len);
        str[len] = 0;
        h = h * 31 + strlen(str);
        h = h * 31 + (strchr(str, 'q') ? (unsigned long)(strchr(str, 'q') - str) : 999);
        h = h * 31 + (unsigned long)(strrchr(str, str[0]) ? strrchr(str, str[0]) - str : 0);
        h = h * 31 + strnlen(str, 50);
        char *copy = malloc(len + 1);
        strcpy(copy, str);
        h = h * 31 + (unsigned)(strcmp(copy, str) == 0);
        h = h * 31 + (unsigned)(stpcpy(copy, str) - copy);
        free(copy);
    }
    printf("page-end string hash %lu\n", h);
    return 0;
}
