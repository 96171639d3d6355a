//! link: static-pie
//! opt: -O0
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
int main(void) {
    char dir[] = "/tmp/cetbox-stdio-XXXXXX";
    if (!mkdtemp(dir)) return 1;
    char path[256];
    snprintf(path, sizeof path, "%s/data.txt", dir);
    FILE *f = fopen(path, "w+");
    for (int i = 0; i < 500; i++) fprintf(f, "%d %s %.3f\n", i, i % 3 ? "odd" : "even", i / 7.0);
    printf("ftell after write %ld\n", ftell(f));
    rewind(f);
    int a; char w[16]; double d; double sum = 0; int lines = 0;
    while (fscanf(f, "%d %15s %lf", &a, w, &d) == 3) { sum += d * a; lines++; }
    printf("read %d lines sum %.3f eof %d\n", lines, sum, feof(f));
    clearerr(f);
    fseek(f, 10, SEEK_SET);
    char line[64];
    fgets(line, sizeof line, f);
    printf("line at 10: [%s", line);
    fclose(f);
    f = fopen(path, "a");
    fputs("appended\n", f);
    fclose(f);
    f = fopen(path, "rb");
    fseek(f, -9, SEEK_END);
    size_t n = fread(line, 1, sizeof line, f);
    printf("tail %zu [%.*s]\n", n, (int)n - 1, line);
    fclose(f);
    FILE *t = tmpfile();
    double arr[100];
    for (int i = 0; i < 100; i++) arr[i] = i * 1.5;
    printf("fwrite %zu\n", fwrite(arr, sizeof(double), 100, t));
    rewind(t);
    double back[100];
    n = fread(back, sizeof(double), 100, t);
    printf("fread %zu equal %d\n", n, memcmp(arr, back, sizeof arr) == 0);
    n = fread(back, 1, 1, t);
    printf("fread at eof %zu eof %d\n", n, feof(t));
    fclose(t);
    printf("fopen missing: %d\n", fopen("/nonexistent/x", "r") == NULL);
    perror("fopen");
    FILE *r = freopen(path, "r", stdin);
    printf("freopen stdin %d, first: ", r != NULL);
    int c;
    while ((c = getchar()) != '\n' && c != EOF) putchar(c);
    putchar('\n');
    int rm = remove(path);
    printf("remove: %d rmdir: %d\n", rm, rmdir(dir));
    return 0;
}
