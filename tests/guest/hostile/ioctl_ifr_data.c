/* Socket ioctls whose struct ifreq carries a pointer (ifr_data) to a request-specific
 * structure: SIOCETHTOOL with ETHTOOL_GLINK and ETHTOOL_GET_TS_INFO on the loopback device (the kernel reads the
 * command from ifr_data and writes the answer back there; net/ethtool/ioctl.c). Into a
 * writable buffer it succeeds; a read-only buffer, an unmapped one and a kernel address give
 * EFAULT with nothing written; an unknown device gives ENODEV before the pointer is used. */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

static int s;

static const char *try(const char *dev, void *data) {
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    strcpy(ifr.ifr_name, dev);
    ifr.ifr_data = data;
    if (ioctl(s, SIOCETHTOOL, &ifr) == 0) return "0";
    return strerrorname_np(errno);
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    s = socket(AF_INET, SOCK_DGRAM, 0);
    char *pg = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    struct ethtool_value *v = (struct ethtool_value *)pg;
    v->cmd = ETHTOOL_GLINK;
    v->data = 7;
    printf("writable (GLINK): %s\n", try("lo", v));
    struct ethtool_ts_info *ts = (struct ethtool_ts_info *)(pg + 64);
    memset(ts, 0x55, sizeof *ts);
    ts->cmd = ETHTOOL_GET_TS_INFO;
    const char *r = try("lo", ts);
    printf("writable (GET_TS_INFO): %s, so_timestamping %#x, phc_index %d\n", r, ts->so_timestamping,
           ts->phc_index);
    /* At the very end of the mapping: 8 bytes fit. */
    struct ethtool_value *end = (struct ethtool_value *)(pg + 8192 - sizeof *end);
    end->cmd = ETHTOOL_GLINK;
    end->data = 7;
    printf("end of mapping: %s\n", try("lo", end));
    v->data = 7;
    mprotect(pg, 4096, PROT_READ);
    printf("read-only: %s, data %u\n", try("lo", v), v->data);
    munmap(pg + 4096, 4096);
    printf("unmapped: %s\n", try("lo", pg + 4096));
    printf("kernel address: %s\n", try("lo", (void *)0xffff800000000000UL));
    printf("null: %s\n", try("lo", NULL));
    printf("no such device: %s\n", try("nosuchdev0", v));
    return 0;
}
