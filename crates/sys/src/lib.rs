//! Operating-system calls that no safe wrapper in the workspace covers,
//! behind safe functions. The workspace forbids `unsafe`; this crate alone
//! may use it, one system call per function, each with its safety argument.
//!
//! Today: the scheduling priority of the calling thread ([`priority`]), which
//! the log cleaner lowers so its disk and CPU use yield to produce requests.

pub mod priority;
