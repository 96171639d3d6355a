/* Which error comes first when a socket ioctl's nested pointer is bad, and what SIOCGIFCONF
 * does with a buffer that is short or partly unwritable (net/core/dev_ioctl.c dev_ifsioc,
 * dev_ifconf; net/ipv4/devinet.c inet_gifconf; net/ethtool/ioctl.c dev_ethtool):
 * - SIOCGHWTSTAMP and SIOCDEVPRIVATE look the interface up before they use ifr_data: ENODEV
 *   for an unknown name whatever the pointer; SIOCETHTOOL reads its command from ifr_data
 *   first: EFAULT;
 * - SIOCGIFCONF writes nothing into a buffer shorter than one struct ifreq (ifc_len 0,
 *   negative or 20: answer 0 bytes, the bad pointer never followed), and into a buffer whose
 *   tail is unmapped it writes the entries that fit before failing. */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

static int s;

static void ifreq_req(const char *what, unsigned long req, const char *dev, void *data) {
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    strcpy(ifr.ifr_name, dev);
    ifr.ifr_data = data;
    int r = ioctl(s, req, &ifr);
    printf("%s: %s\n", what, r == 0 ? "0" : strerrorname_np(errno));
}

static void ifconf_req(const char *what, int len, void *buf) {
    struct ifconf ifc;
    ifc.ifc_len = len;
    ifc.ifc_buf = buf;
    int r = ioctl(s, SIOCGIFCONF, &ifc);
    if (r == 0)
        printf("%s: 0, ifc_len %d\n", what, ifc.ifc_len);
    else
        printf("%s: %s, ifc_len %d\n", what, strerrorname_np(errno), ifc.ifc_len);
}

int main(void) {
    s = socket(AF_INET, SOCK_DGRAM, 0);
    char *pg = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    munmap(pg + 4096, 4096);
    char *bad = pg + 4096;

    ifreq_req("SIOCGHWTSTAMP unknown device, unmapped data", SIOCGHWTSTAMP, "nosuchdev0", bad);
    ifreq_req("SIOCDEVPRIVATE unknown device, unmapped data", SIOCDEVPRIVATE, "nosuchdev0", bad);
    ifreq_req("SIOCETHTOOL unknown device, unmapped data", SIOCETHTOOL, "nosuchdev0", bad);
    struct ethtool_value *v = (struct ethtool_value *)pg;
    v->cmd = ETHTOOL_GLINK;
    ifreq_req("SIOCETHTOOL unknown device, good data", SIOCETHTOOL, "nosuchdev0", v);
    ifreq_req("SIOCDEVPRIVATE lo, unmapped data", SIOCDEVPRIVATE, "lo", bad);

    /* How many bytes the interfaces with IPv4 addresses take (the same for both runs). */
    struct ifconf ifc = {0};
    ioctl(s, SIOCGIFCONF, &ifc);
    int need = ifc.ifc_len;
    printf("entries: %s\n", need >= (int)sizeof(struct ifreq) ? "some" : "none");

    ifconf_req("len 0, unmapped buffer", 0, bad);
    ifconf_req("len -5, unmapped buffer", -5, bad);
    ifconf_req("len 20, unmapped buffer", 20, bad);
    ifconf_req("len 20, NULL buffer (counts)", 20, NULL);
    /* One ifreq of room before the unmapped page, a length far larger. */
    char *one = bad - sizeof(struct ifreq);
    memset(one, 0, sizeof(struct ifreq));
    ifconf_req("len 4096, room for one entry", 4096, one);
    printf("  first entry: %s\n", one);
    /* Room for exactly what is needed, a larger length. */
    char *all = bad - need;
    memset(all, 0, need);
    ifconf_req("len 4096, room for all entries", 4096, all);
    return 0;
}
