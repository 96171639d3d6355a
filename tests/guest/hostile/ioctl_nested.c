/* ioctls whose argument holds more than its _IOC size says, pointers or descriptors, made while
 * a second thread exists (so cetbox copies what the host writes through checked buffers):
 * - FIDEDUPERANGE: a 24-byte header followed by dest_count 32-byte records the kernel reads
 *   (descriptors inside) and writes back (status, bytes_deduped); fs/ioctl.c
 *   `ioctl_file_dedupe_range`. A descriptor that is not open gets status -EBADF, a
 *   directory -EISDIR; more than a page of records ENOMEM; a header at an unmapped address
 *   EFAULT.
 * - FS_IOC_FIEMAP: a 32-byte header followed by fm_extent_count 56-byte extents the kernel
 *   fills (fs/ioctl.c `ioctl_fiemap`): this program's own file (on a file system with FIEMAP
 *   its extents are printed), and files without FIEMAP (a memfd, a pipe): EOPNOTSUPP before
 *   the argument is read, whatever it points at.
 * - SG_IO on descriptors without it (/dev/null, a pipe, a memfd), with valid nested buffers,
 *   nested pointers to unmapped and read-only memory, and an unmapped header: ENOTTY each time
 *   (the driver never reads the header).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <pthread.h>
#include <scsi/sg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

static int wake[2];

static void *waiter(void *arg) {
    char c;
    (void)arg;
    return (void *)(long)read(wake[0], &c, 1);
}

static const char *res(long r) {
    static char b[64];
    if (r >= 0) {
        snprintf(b, sizeof b, "%ld", r);
        return b;
    }
    return strerrorname_np(errno);
}

static unsigned char *unmapped, *readonly;

static void dedupe(int src, int n, const int *fds) {
    size_t size = sizeof(struct file_dedupe_range) + n * sizeof(struct file_dedupe_range_info);
    struct file_dedupe_range *r = calloc(1, size);
    r->src_offset = 0;
    r->src_length = 4096;
    r->dest_count = n;
    for (int i = 0; i < n; i++) {
        r->info[i].dest_fd = fds[i];
        r->info[i].status = 12345;
        r->info[i].bytes_deduped = 777;
    }
    long ret = ioctl(src, FIDEDUPERANGE, r);
    printf("FIDEDUPERANGE x%d: %s", n, res(ret));
    for (int i = 0; i < n && i < 3; i++)
        printf(" [fd %s status %d deduped %llu]", r->info[i].dest_fd == fds[i] ? "kept" : "CHANGED",
               r->info[i].status, (unsigned long long)r->info[i].bytes_deduped);
    printf("\n");
    free(r);
}

static void sg(const char *what, int fd, void *hdr_at, void *data, void *cmd, void *sense,
               int dir) {
    unsigned char cdb[6] = {0x12, 0, 0, 0, 96, 0};
    sg_io_hdr_t h;
    memset(&h, 0, sizeof h);
    h.interface_id = 'S';
    h.dxfer_direction = dir;
    h.cmd_len = 6;
    h.mx_sb_len = 32;
    h.dxfer_len = 96;
    h.dxferp = data;
    h.cmdp = cmd ? cmd : cdb;
    h.sbp = sense;
    h.timeout = 1000;
    void *at = hdr_at ? hdr_at : &h;
    long r = ioctl(fd, SG_IO, at);
    printf("SG_IO %s: %s status %d\n", what, res(r), h.status);
}

int main(void) {
    if (pipe(wake)) return 1;
    pthread_t th;
    pthread_create(&th, 0, waiter, 0);

    readonly = mmap(0, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    unmapped = mmap(0, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    munmap(unmapped, 4096);

    int src = memfd_create("src", 0);
    char block[4096];
    memset(block, 'x', sizeof block);
    write(src, block, sizeof block);
    int dir = open("/", O_RDONLY | O_DIRECTORY);
    int fds[3] = {-1, 999, dir};
    dedupe(src, 3, fds);
    dedupe(src, 1, fds);
    dedupe(src, 200, fds);
    errno = 0;
    printf("FIDEDUPERANGE unmapped: %s\n", res(ioctl(src, FIDEDUPERANGE, unmapped)));

    int p[2];
    pipe(p);
    struct {
        struct fiemap f;
        struct fiemap_extent e[4];
    } fm;
    memset(&fm, 0, sizeof fm);
    fm.f.fm_length = ~0ULL;
    fm.f.fm_extent_count = 4;
    /* This program's own file, synced first (FIEMAP_FLAG_SYNC): its extents, as many as fit. */
    int self = open("/proc/self/exe", O_RDONLY);
    memset(&fm, 0, sizeof fm);
    fm.f.fm_length = ~0ULL;
    fm.f.fm_flags = FIEMAP_FLAG_SYNC;
    fm.f.fm_extent_count = 4;
    long fr = ioctl(self, FS_IOC_FIEMAP, &fm);
    printf("FIEMAP self: %s", res(fr));
    if (fr == 0) {
        printf(" mapped %u", fm.f.fm_mapped_extents);
        for (unsigned i = 0; i < fm.f.fm_mapped_extents && i < 4; i++)
            printf(" [%llu+%llu flags %#x]", (unsigned long long)fm.e[i].fe_logical,
                   (unsigned long long)fm.e[i].fe_length, fm.e[i].fe_flags);
    }
    printf("\n");
    printf("FIEMAP memfd: %s\n", res(ioctl(src, FS_IOC_FIEMAP, &fm)));
    printf("FIEMAP pipe: %s\n", res(ioctl(p[0], FS_IOC_FIEMAP, &fm)));
    printf("FIEMAP pipe unmapped: %s\n", res(ioctl(p[0], FS_IOC_FIEMAP, unmapped)));

    int null = open("/dev/null", O_RDWR);
    unsigned char data[96], sense[32];
    int targets[3] = {null, p[0], src};
    const char *names[3] = {"/dev/null", "pipe", "memfd"};
    for (int i = 0; i < 3; i++) {
        char what[96];
        snprintf(what, sizeof what, "%s valid", names[i]);
        sg(what, targets[i], 0, data, 0, sense, SG_DXFER_FROM_DEV);
        snprintf(what, sizeof what, "%s data unmapped", names[i]);
        sg(what, targets[i], 0, unmapped, 0, sense, SG_DXFER_FROM_DEV);
        snprintf(what, sizeof what, "%s data read-only", names[i]);
        sg(what, targets[i], 0, readonly, 0, sense, SG_DXFER_FROM_DEV);
        snprintf(what, sizeof what, "%s cmd unmapped", names[i]);
        sg(what, targets[i], 0, data, unmapped, sense, SG_DXFER_TO_DEV);
        snprintf(what, sizeof what, "%s sense read-only", names[i]);
        sg(what, targets[i], 0, data, 0, readonly, SG_DXFER_NONE);
        snprintf(what, sizeof what, "%s header unmapped", names[i]);
        sg(what, targets[i], unmapped, data, 0, sense, SG_DXFER_FROM_DEV);
    }
    printf("read-only page untouched: %s\n", readonly[0] == 0 ? "yes" : "no");

    write(wake[1], "x", 1);
    pthread_join(th, 0);
    return 0;
}
