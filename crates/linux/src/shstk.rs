//! The kernel side of user shadow stacks (linux-abi.md): allocation, enabling, the signal
//! frame tokens, and thread/fork/exec rules.
