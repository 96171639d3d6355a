//! Linux x86-64 signal frames (struct rt_sigframe: the return address, ucontext with the
//! sigcontext in kernel register order, the FXSAVE-format FPU state, siginfo) and rt_sigreturn.
