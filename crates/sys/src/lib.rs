//! Operating-system calls that no safe wrapper in the workspace covers,
//! behind safe functions. The workspace forbids `unsafe`; this crate alone
//! may use it, one system call per function, each with its safety argument.
//!
//! Today: the I/O scheduling class of the calling thread ([`priority`]), which
//! the log cleaner lowers so its disk use yields to produce requests.

pub mod priority;
