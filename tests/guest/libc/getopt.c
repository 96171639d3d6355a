//! args: -a -b value -cfoo --long=3 --flag rest1 -- -notopt rest2
#include <getopt.h>
#include <stdio.h>
int main(int argc, char **argv) {
    static struct option lo[] = {{"long", required_argument, 0, 'L'}, {"flag", no_argument, 0, 'F'}, {0, 0, 0, 0}};
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "ab:c:", lo, NULL)) != -1) {
        switch (c) {
        case 'a': printf("opt a\n"); break;
        case 'b': printf("opt b=%s\n", optarg); break;
        case 'c': printf("opt c=%s\n", optarg); break;
        case 'L': printf("long=%s\n", optarg); break;
        case 'F': printf("flag\n"); break;
        default: printf("unknown %c\n", optopt); break;
        }
    }
    for (int i = optind; i < argc; i++) printf("operand %s\n", argv[i]);
    return argc;
}
