//! The ioctl requests whose argument cetbox knows, by request number, and what the kernel does
//! with it. Every entry is a layout without pointers or descriptors inside (those are in
//! `nested.rs`): the host then touches nothing but the argument itself, which it sees through a
//! guarded copy (see `mod.rs`). Sizes are the x86-64 `sizeof` of the kernel's structure or of
//! the integer the handler copies (`put_user` of an int for several requests whose _IOC size
//! says otherwise, e.g. FS_IOC_GETFLAGS and BLKBSZGET), numbers as Linux's uapi headers
//! define them (include/uapi/asm-generic/ioctls.h, linux/fs.h, linux/loop.h, linux/sockios.h,
//! linux/perf_event.h, linux/random.h, linux/nsfs.h, linux/timerfd.h, linux/eventpoll.h).

/// How a request uses its argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Arg {
    /// An integer (or ignored).
    Int,
    /// A pointer to `n` bytes the kernel reads.
    In(u64),
    /// A pointer to `n` bytes the kernel writes.
    Out(u64),
    /// A pointer to `n` bytes read and written.
    InOut(u64),
    /// A descriptor number.
    Fd,
}

const TERMIOS: u64 = 60;
const TERMIO: u64 = 18;
const TERMIOS2: u64 = 44;
/// struct ifreq.
const IFREQ: u64 = 40;

pub(super) fn known(req: u32) -> Option<Arg> {
    use Arg::*;
    Some(match req {
        // ttys (drivers/tty/tty_io.c `tty_ioctl`, tty_ioctl.c `tty_mode_ioctl`)
        0x5401 => Out(TERMIOS),                    // TCGETS
        0x5402..=0x5404 => In(TERMIOS),            // TCSETS, TCSETSW, TCSETSF
        0x5405 => Out(TERMIO),                     // TCGETA
        0x5406..=0x5408 => In(TERMIO),             // TCSETA, TCSETAW, TCSETAF
        0x5409..=0x540b => Int,                    // TCSBRK, TCXONC, TCFLSH
        0x540c..=0x540e => Int,                    // TIOCEXCL, TIOCNXCL, TIOCSCTTY
        0x540f => Out(4),                          // TIOCGPGRP
        0x5410 => In(4),                           // TIOCSPGRP
        0x5411 => Out(4),                          // TIOCOUTQ
        0x5412 => In(1),                           // TIOCSTI
        0x5413 => Out(8),                          // TIOCGWINSZ
        0x5414 => In(8),                           // TIOCSWINSZ
        0x5415 => Out(4),                          // TIOCMGET
        0x5416..=0x5418 => In(4),                  // TIOCMBIS, TIOCMBIC, TIOCMSET
        0x5419 => Out(4),                          // TIOCGSOFTCAR
        0x541a => In(4),                           // TIOCSSOFTCAR
        0x541b => Out(4),                          // FIONREAD / TIOCINQ
        0x541d => Int,                             // TIOCCONS
        0x541e => Out(72),                         // TIOCGSERIAL (iomem_base only a value)
        0x541f => In(72),                          // TIOCSSERIAL
        0x5420 => In(4),                           // TIOCPKT
        0x5421 => In(4),                           // FIONBIO
        0x5422 => Int,                             // TIOCNOTTY
        0x5423 => In(4),                           // TIOCSETD
        0x5424 => Out(4),                          // TIOCGETD
        0x5425 => Int,                             // TCSBRKP
        0x5427 | 0x5428 => Int,                    // TIOCSBRK, TIOCCBRK
        0x5429 => Out(4),                          // TIOCGSID
        0x802c_542a => Out(TERMIOS2),              // TCGETS2
        0x402c_542b..=0x402c_542d => In(TERMIOS2), // TCSETS2, TCSETSW2, TCSETSF2
        0x542e => Out(32),                         // TIOCGRS485
        0x542f => InOut(32),                       // TIOCSRS485
        0x8004_5430 => Out(4),                     // TIOCGPTN
        0x4004_5431 => In(4),                      // TIOCSPTLCK
        0x8004_5432 => Out(4),                     // TIOCGDEV
        0x4004_5436 => Int,                        // TIOCSIG (the signal number itself)
        0x5437 => Int,                             // TIOCVHANGUP
        0x8004_5438 => Out(4),                     // TIOCGPKT
        0x8004_5439 => Out(4),                     // TIOCGPTLCK
        0x8004_5440 => Out(4),                     // TIOCGEXCL
        0x5441 => Int,                             // TIOCGPTPEER (flags)
        0x5450 | 0x5451 => Int,                    // FIONCLEX, FIOCLEX
        0x5452 => In(4),                           // FIOASYNC
        0x5456 => Out(TERMIOS),                    // TIOCGLCKTRMIOS
        0x5457 => In(TERMIOS),                     // TIOCSLCKTRMIOS
        0x5459 => Out(4),                          // TIOCSERGETLSR
        0x545c => Int,                             // TIOCMIWAIT
        0x545d => Out(80),                         // TIOCGICOUNT
        0x5460 => Out(8),                          // FIOQSIZE
        0x4008_5400 => In(8),                      // TFD_IOC_SET_TICKS
        // epoll (fs/eventpoll.c `ep_eventpoll_ioctl`; struct epoll_params, 8 bytes)
        0x4008_8a01 => In(8),  // EPIOCSPARAMS
        0x8008_8a02 => Out(8), // EPIOCGPARAMS
        // sockets (net/socket.c `sock_ioctl`, net/core/dev_ioctl.c, net/ipv4/arp.c)
        0x8901 | 0x8902 => In(4),                 // FIOSETOWN, SIOCSPGRP
        0x8903..=0x8905 => Out(4),                // FIOGETOWN, SIOCGPGRP, SIOCATMARK
        0x8906 | 0x8907 => Out(16),               // SIOCGSTAMP, SIOCGSTAMPNS
        0x8010_8906 | 0x8010_8907 => Out(16),     // SIOCGSTAMP_NEW, SIOCGSTAMPNS_NEW
        0x8912 => return None,                    // SIOCGIFCONF: nested.rs
        0x8910..=0x8938 => InOut(IFREQ),          // SIOCxIF* (struct ifreq)
        0x8942 | 0x8943 => InOut(IFREQ),          // SIOCGIFTXQLEN, SIOCSIFTXQLEN
        0x8947..=0x8949 => InOut(IFREQ),          // SIOCGMIIPHY, SIOCGMIIREG, SIOCSMIIREG
        0x894b => Out(4),                         // SIOCOUTQNSD
        0x894c => Int,                            // SIOCGSKNS
        0x8950..=0x8955 => InOut(68),             // SIOCDARP..SIOCSRARP (struct arpreq)
        0x8970 | 0x8971 => InOut(IFREQ),          // SIOCGIFMAP, SIOCSIFMAP
        0x8990..=0x8992 | 0x8995 => InOut(IFREQ), // bonding (ifreq only)
        0x89a2 | 0x89a3 => InOut(IFREQ),          // SIOCBRADDIF, SIOCBRDELIF
        // file systems (fs/ioctl.c `do_vfs_ioctl`, fs/file_attr.c)
        0x1 => InOut(4),                     // FIBMAP
        0x2 => Out(4),                       // FIGETBSZ
        0xc004_5877 | 0xc004_5878 => Int,    // FIFREEZE, FITHAW (argument ignored)
        0xc018_5879 => InOut(24),            // FITRIM (struct fstrim_range)
        0x4004_9409 => Fd,                   // FICLONE
        0x8008_6601 | 0x8004_6601 => Out(4), // FS_IOC_GETFLAGS, FS_IOC32_GETFLAGS (an int)
        0x4008_6602 | 0x4004_6602 => In(4),  // FS_IOC_SETFLAGS, FS_IOC32_SETFLAGS
        0x8008_7601 | 0x8004_7601 => Out(4), // FS_IOC_GETVERSION, FS_IOC32_GETVERSION
        0x4008_7602 | 0x4004_7602 => In(4),  // FS_IOC_SETVERSION, FS_IOC32_SETVERSION
        0x801c_581f => Out(28),              // FS_IOC_FSGETXATTR
        0x401c_5820 => In(28),               // FS_IOC_FSSETXATTR
        0x8100_9431 => Out(256),             // FS_IOC_GETFSLABEL
        0x4100_9432 => In(256),              // FS_IOC_SETFSLABEL
        0x8011_1500 => Out(17),              // FS_IOC_GETFSUUID
        0x8081_1501 => Out(129),             // FS_IOC_GETFSSYSFSPATH
        // block devices (block/ioctl.c `blkdev_ioctl`)
        0x125d => In(4),                     // BLKROSET
        0x125e => Out(4),                    // BLKROGET
        0x125f | 0x1261 => Int,              // BLKRRPART, BLKFLSBUF
        0x1260 => Out(8),                    // BLKGETSIZE
        0x1262 | 0x1264 => Int,              // BLKRASET, BLKFRASET
        0x1263 | 0x1265 => Out(8),           // BLKRAGET, BLKFRAGET
        0x1267 => Out(2),                    // BLKSECTGET
        0x1268 => Out(4),                    // BLKSSZGET
        0x1277 | 0x127d | 0x127f => In(16),  // BLKDISCARD, BLKSECDISCARD, BLKZEROOUT
        0x1278..=0x127c => Out(4), // BLKIOMIN, BLKIOOPT, BLKALIGNOFF, BLKPBSZGET, BLKDISCARDZEROES
        0x127e => Out(2),          // BLKROTATIONAL
        0x8008_1270 => Out(4),     // BLKBSZGET (an int)
        0x4008_1271 => In(4),      // BLKBSZSET (an int)
        0x8008_1272 => Out(8),     // BLKGETSIZE64
        0x8008_1280 => Out(8),     // BLKGETDISKSEQ
        0x8004_1284 | 0x8004_1285 => Out(4), // BLKGETZONESZ, BLKGETNRZONES
        // loop devices (drivers/block/loop.c `lo_ioctl`, `loop_control_ioctl`)
        0x4c00 | 0x4c06 => Fd,           // LOOP_SET_FD, LOOP_CHANGE_FD
        0x4c01 | 0x4c07..=0x4c09 => Int, // LOOP_CLR_FD, SET_CAPACITY, SET_DIRECT_IO, SET_BLOCK_SIZE
        0x4c02 => In(168),               // LOOP_SET_STATUS (struct loop_info)
        0x4c03 => Out(168),              // LOOP_GET_STATUS
        0x4c04 => In(232),               // LOOP_SET_STATUS64 (struct loop_info64)
        0x4c05 => Out(232),              // LOOP_GET_STATUS64
        0x4c80..=0x4c82 => Int,          // LOOP_CTL_ADD, LOOP_CTL_REMOVE, LOOP_CTL_GET_FREE
        // /dev/random (drivers/char/random.c `random_ioctl`)
        0x8004_5200 => Out(4),           // RNDGETENTCNT
        0x4004_5201 => In(4),            // RNDADDTOENTCNT
        0x5204 | 0x5206 | 0x5207 => Int, // RNDZAPENTCNT, RNDCLEARPOOL, RNDRESEEDCRNG
        // perf events (kernel/events/core.c `_perf_ioctl`)
        0x2400..=0x2403 => Int, // ENABLE, DISABLE, REFRESH, RESET
        0x4008_2404 => In(8),   // PERF_EVENT_IOC_PERIOD
        0x2405 => Fd,           // PERF_EVENT_IOC_SET_OUTPUT
        0x8008_2407 => Out(8),  // PERF_EVENT_IOC_ID
        0x4004_2408 => Fd,      // PERF_EVENT_IOC_SET_BPF
        0x4004_2409 => Int,     // PERF_EVENT_IOC_PAUSE_OUTPUT (the value itself)
        // namespaces (fs/nsfs.c `ns_ioctl`)
        0xb701..=0xb703 => Int, // NS_GET_USERNS, NS_GET_PARENT, NS_GET_NSTYPE
        0xb704 => Out(4),       // NS_GET_OWNER_UID
        _ => return None,
    })
}
