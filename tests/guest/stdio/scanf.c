//! stdin: scanf.stdin
#include <stdio.h>
int main(void) {
    int a, b, c, d, e;
    int r = scanf("%d %i %i %i %o", &a, &b, &c, &d, &e);
    printf("r=%d a=%d b=%d c=%d d=%d e=%d\n", r, a, b, c, d, e);
    float f; double g, h, inf;
    r = scanf("%f %lf %lf %lf", &f, &g, &h, &inf);
    printf("r=%d f=%a g=%a h=%a inf=%f\n", r, (double)f, g, h, inf);
    long double ld;
    r = scanf("%Lf", &ld);
    printf("r=%d ld=%La\n", r, ld);
    char s1[32], s2[32], s3[32];
    int n1, n2;
    r = scanf("%31s %n%31[a-z_0-9]%n [%31[^]]]", s1, &n1, s2, &n2, s3);
    printf("r=%d s1=%s s2=%s s3=%s n1=%d n2=%d\n", r, s1, s2, s3, n1, n2);
    char c3[4] = {0};
    int v; char tail[16];
    r = scanf(" %3c%*[a-z] %d%15s", c3, &v, tail);
    printf("r=%d c3=%s v=%d tail=%s\n", r, c3, v, tail);
    char ch; int num; char line[64];
    r = scanf(" %c %d %63[^\n]", &ch, &num, line);
    printf("r=%d ch=%c num=%d line=[%s]\n", r, ch, num, line);
    int endv = -1;
    r = scanf(" end: %d", &endv);
    printf("r=%d end=%d\n", r, endv);
    r = scanf("%d", &endv);
    printf("at eof r=%d\n", r);
    int x, y; unsigned u; char sb[8]; double dd;
    r = sscanf("12:34 ff 1.5e+2xyz", "%d:%d %x %lf%7s", &x, &y, &u, &dd, sb);
    printf("sscanf r=%d %d %d %u %g %s\n", r, x, y, u, dd, sb);
    r = sscanf("0x", "%i", &x);
    printf("sscanf 0x r=%d x=%d\n", r, x);
    r = sscanf("   ", "%d", &x);
    printf("sscanf blank r=%d\n", r);
    r = sscanf("-12345678901234567890", "%lld", (long long *)&dd);
    printf("sscanf overflow r=%d\n", r);
    return 0;
}
