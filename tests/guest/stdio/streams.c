//! link: static-pie
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
int main(void) {
    char *mem = NULL; size_t sz = 0;
    FILE *m = open_memstream(&mem, &sz);
    for (int i = 0; i < 1000; i++) fprintf(m, "%d,", i * 3);
    fflush(m);
    printf("memstream size after flush %zu\n", sz);
    fputs("END", m);
    fclose(m);
    printf("memstream size %zu tail [%s]\n", sz, mem + sz - 10);
    free(mem);
    char data[] = "line one\nline two is longer\n\nlast without newline";
    FILE *f = fmemopen(data, strlen(data), "r");
    char *line = NULL; size_t cap = 0; ssize_t n;
    while ((n = getline(&line, &cap, f)) != -1) printf("getline %zd [%.*s]\n", n, (int)(n && line[n - 1] == '\n' ? n - 1 : n), line);
    printf("feof=%d ferror=%d\n", feof(f), ferror(f));
    rewind(f);
    int c1 = fgetc(f); ungetc('X', f); int c2 = fgetc(f); int c3 = fgetc(f);
    printf("fgetc %c ungetc %c then %c\n", c1, c2, c3);
    fseek(f, -6, SEEK_END);
    char tmp[16];
    printf("fgets after seek: [%s] ftell=%ld\n", fgets(tmp, sizeof tmp, f), ftell(f));
    fclose(f);
    free(line);
    char wbuf[64];
    FILE *w = fmemopen(wbuf, sizeof wbuf, "w");
    fprintf(w, "%s=%05.1f", "pi", 3.14159);
    fclose(w);
    printf("fmemopen write [%s]\n", wbuf);
    static char big[8192];
    setvbuf(stdout, big, _IOFBF, sizeof big);
    for (int i = 0; i < 300; i++) printf("%04d%c", i, i % 16 == 15 ? '\n' : ' ');
    printf("\n");
    fflush(stdout);
    setvbuf(stdout, NULL, _IOLBF, 0);
    fprintf(stderr, "to stderr %d\n", 1);
    fputs("puts to stdout\n", stdout);
    fprintf(stderr, "to stderr %d\n", 2);
    putchar('A'); putchar('\n');
    fwrite("fwrite\n", 1, 7, stdout);
    puts("puts adds newline");
    perror("perror with errno 0");
    return 3;
}
