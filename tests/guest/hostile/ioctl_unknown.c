/* An ioctl whose request does not encode its argument's size (SIOCOUTQNSD, 0x894B: the bytes
 * not yet sent of a TCP socket, an int the kernel writes with put_user) aimed at a read-only
 * page: the kernel's write faults, the call fails with EFAULT and the page keeps its bytes.
 * cetbox hands the host a checked window instead of the guest pointer, so the host's write
 * cannot modify a page the guest may not write (read-only, or a shadow stack). The same call
 * on a writable int works. */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#define SIOCOUTQNSD_ 0x894B

int main(void) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    if (s < 0) {
        puts("socket failed");
        return 1;
    }
    int n = -1;
    int r = ioctl(s, SIOCOUTQNSD_, &n);
    printf("writable int: ioctl %d, value %d\n", r, n);
    unsigned char *p = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    memset(p, 0xa5, 4096);
    mprotect(p, 4096, PROT_READ);
    errno = 0;
    r = ioctl(s, SIOCOUTQNSD_, p + 100);
    printf("read-only page: ioctl %d%s, bytes %02x %02x %02x %02x\n", r,
           r < 0 && errno == EFAULT ? " EFAULT" : "", p[100], p[101], p[102], p[103]);
    return 0;
}
