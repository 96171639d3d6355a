//! link: static-pie
//! env: CETBOX_TEST_VAR=hello world
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
extern char **environ;
static int cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }
static void dump(const char *tag) {
    int n = 0;
    for (char **e = environ; *e; e++) n++;
    char **copy = malloc(sizeof(char *) * (n + 1));
    for (int i = 0; i < n; i++) copy[i] = environ[i];
    qsort(copy, n, sizeof(char *), cmp);
    printf("%s: %d entries\n", tag, n);
    for (int i = 0; i < n; i++) printf("  [%s]\n", copy[i]);
    free(copy);
}
int main(void) {
    dump("initial");
    const char *names[] = {"PATH", "HOME", "TZ", "LANG", "CETBOX_TEST_VAR", "NOPE", ""};
    for (unsigned i = 0; i < sizeof names / sizeof *names; i++) {
        const char *v = getenv(names[i]);
        printf("getenv(%s) = %s\n", names[i], v ? v : "(null)");
    }
    printf("setenv new: %d\n", setenv("NEWVAR", "1", 0));
    int rc = setenv("NEWVAR", "2", 0);
    printf("setenv keep: %d -> %s\n", rc, getenv("NEWVAR"));
    rc = setenv("NEWVAR", "3", 1);
    printf("setenv overwrite: %d -> %s\n", rc, getenv("NEWVAR"));
    printf("setenv bad name: %d\n", setenv("A=B", "x", 1));
    static char pe[] = "PUTVAR=put";
    rc = putenv(pe);
    printf("putenv: %d -> %s\n", rc, getenv("PUTVAR"));
    pe[7] = 'P';
    printf("putenv alias -> %s\n", getenv("PUTVAR"));
    rc = unsetenv("HOME");
    printf("unsetenv: %d -> %s\n", rc, getenv("HOME") ? "still" : "gone");
    for (int i = 0; i < 200; i++) {
        char k[32], v[32];
        snprintf(k, sizeof k, "K%03d", i);
        snprintf(v, sizeof v, "v%d", i * i);
        setenv(k, v, 1);
    }
    long sum = 0;
    for (int i = 0; i < 200; i += 7) {
        char k[32];
        snprintf(k, sizeof k, "K%03d", i);
        sum += atol(getenv(k) + 1);
    }
    printf("sum of every 7th: %ld\n", sum);
    for (int i = 0; i < 200; i += 2) {
        char k[32];
        snprintf(k, sizeof k, "K%03d", i);
        unsetenv(k);
    }
    dump("final");
    clearenv();
    printf("after clearenv: %s\n", environ == NULL || *environ == NULL ? "empty" : "not empty");
    return 0;
}
