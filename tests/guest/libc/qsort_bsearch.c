#include <stdio.h>
#include <stdlib.h>
#include <string.h>
static unsigned long long st = 88172645463325252ULL;
static unsigned long long xs(void) { st ^= st << 13; st ^= st >> 7; st ^= st << 17; return st; }
static int cmp_int(const void *a, const void *b) { int x = *(const int *)a, y = *(const int *)b; return (x > y) - (x < y); }
static int cmp_int_desc(const void *a, const void *b) { return cmp_int(b, a); }
static int cmp_dbl(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return (x > y) - (x < y); }
struct rec { int key; int seq; char name[12]; };
static int cmp_rec(const void *a, const void *b) {
    const struct rec *x = a, *y = b;
    if (x->key != y->key) return x->key - y->key;
    return x->seq - y->seq;
}
int main(void) {
    int sizes[] = {0, 1, 2, 3, 7, 16, 100, 1000, 20000};
    for (unsigned s = 0; s < sizeof sizes / sizeof *sizes; s++) {
        int n = sizes[s];
        int *a = malloc(sizeof(int) * (n + 1));
        for (int i = 0; i < n; i++) a[i] = (int)(xs() % 2001) - 1000;
        qsort(a, n, sizeof(int), cmp_int);
        int ok = 1;
        unsigned long long h = 1469598103934665603ULL;
        for (int i = 0; i < n; i++) { if (i && a[i - 1] > a[i]) ok = 0; h = (h ^ (unsigned)a[i]) * 1099511628211ULL; }
        int found = 0;
        for (int k = -1005; k <= 1005; k += 5) if (bsearch(&k, a, n, sizeof(int), cmp_int)) found++;
        printf("n=%d sorted=%d hash=%016llx found=%d", n, ok, h, found);
        if (n >= 3) printf(" min=%d mid=%d max=%d", a[0], a[n / 2], a[n - 1]);
        printf("\n");
        qsort(a, n, sizeof(int), cmp_int_desc);
        ok = 1;
        for (int i = 1; i < n; i++) if (a[i - 1] < a[i]) ok = 0;
        printf("  desc sorted=%d\n", ok);
        free(a);
    }
    double d[50];
    for (int i = 0; i < 50; i++) d[i] = (double)(long long)(xs() % 100000) / 7.0 - 5000.0;
    qsort(d, 50, sizeof(double), cmp_dbl);
    for (int i = 0; i < 50; i += 5) printf("d[%d]=%.10g\n", i, d[i]);
    /* stability is not promised by qsort; sort on (key, seq) so the order is total */
    struct rec r[300];
    for (int i = 0; i < 300; i++) { r[i].key = (int)(xs() % 10); r[i].seq = i; snprintf(r[i].name, sizeof r[i].name, "r%d", i); }
    qsort(r, 300, sizeof(struct rec), cmp_rec);
    for (int i = 0; i < 300; i += 23) printf("rec %d: key=%d seq=%d %s\n", i, r[i].key, r[i].seq, r[i].name);
    struct rec probe = {5, 150, ""};
    struct rec *hit = bsearch(&probe, r, 300, sizeof(struct rec), cmp_rec);
    printf("bsearch rec: %s\n", hit ? hit->name : "none");
    /* large elements */
    struct big { char pad[100]; int k; } *bg = malloc(sizeof(struct big) * 500);
    for (int i = 0; i < 500; i++) { memset(bg[i].pad, i & 0xff, sizeof bg[i].pad); bg[i].k = (int)(xs() % 100000); }
    int cmp_big(const void *a, const void *b) { return ((const struct big *)a)->k - ((const struct big *)b)->k; }
    qsort(bg, 500, sizeof(struct big), cmp_big);
    int ok = 1; long sum = 0;
    for (int i = 0; i < 500; i++) { if (i && bg[i - 1].k > bg[i].k) ok = 0; sum += bg[i].pad[37] * (long)i; }
    printf("big sorted=%d sum=%ld\n", ok, sum);
    free(bg);
    return 0;
}
