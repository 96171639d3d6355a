//! Guest threads: each runs on its own host thread with its own CPU state, sharing the
//! process's address space, signal dispositions and file descriptors.
