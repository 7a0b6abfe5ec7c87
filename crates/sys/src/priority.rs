//! The calling thread's I/O scheduling class (Linux).
//!
//! Linux keeps it per thread: `ioprio_set(IOPRIO_WHO_PROCESS, 0, …)` changes
//! only the thread that calls it, not the rest of the process.
//!
//! Which schedulers honour the I/O class: BFQ uses both the class and the
//! level; mq-deadline (Linux 5.14 and later) dispatches the real-time class
//! before best-effort before idle, and ignores the level within a class;
//! `none` and kyber ignore both. The class applies to the I/O the thread
//! submits itself: its reads, and writeback it starts (fsync,
//! `fadvise(DONTNEED)`); pages it dirties and leaves to the kernel's flusher
//! threads are written at their priority.

use std::io;

/// An I/O scheduling class (`IOPRIO_CLASS_*` in `linux/ioprio.h`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoClass {
    /// `IOPRIO_CLASS_BE` at a level from 0 (highest) to 7 (lowest).
    BestEffort(u8),
    /// `IOPRIO_CLASS_IDLE`: served only when no other class has I/O waiting
    /// (mq-deadline still serves it after `prio_aging_expire`, 10 s by default).
    Idle,
}

const IOPRIO_CLASS_SHIFT: u32 = 13;
const IOPRIO_CLASS_BE: u32 = 2;
const IOPRIO_CLASS_IDLE: u32 = 3;
const IOPRIO_WHO_PROCESS: libc::c_int = 1;
/// The highest best-effort level number (the lowest priority).
pub const BEST_EFFORT_LOWEST: u8 = 7;

impl IoClass {
    /// The `ioprio` value the kernel takes: class in the top bits, level below.
    fn ioprio(self) -> u32 {
        match self {
            IoClass::BestEffort(level) => {
                (IOPRIO_CLASS_BE << IOPRIO_CLASS_SHIFT) | u32::from(level.min(BEST_EFFORT_LOWEST))
            }
            IoClass::Idle => IOPRIO_CLASS_IDLE << IOPRIO_CLASS_SHIFT,
        }
    }
}

/// Sets the I/O scheduling class of the calling thread.
pub fn set_current_thread_io_class(class: IoClass) -> io::Result<()> {
    let ioprio = libc::c_long::from(class.ioprio());
    // SAFETY: ioprio_set takes three integers and touches no memory of ours;
    // `who` 0 names the calling thread. Any failure comes back as -1 + errno.
    #[allow(unsafe_code)]
    let rc = unsafe {
        libc::syscall(libc::SYS_ioprio_set, libc::c_long::from(IOPRIO_WHO_PROCESS), 0 as libc::c_long, ioprio)
    };
    if rc == -1 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

/// The I/O scheduling class of the calling thread, as the kernel reports it
/// (`None` for a thread that never set one: it follows its CPU nice value).
pub fn current_thread_io_class() -> io::Result<Option<IoClass>> {
    // SAFETY: as above; ioprio_get only reads the thread's priority.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::syscall(libc::SYS_ioprio_get, libc::c_long::from(IOPRIO_WHO_PROCESS), 0 as libc::c_long) };
    if rc == -1 {
        return Err(io::Error::last_os_error());
    }
    let value = rc as u32;
    let level = (value & ((1 << IOPRIO_CLASS_SHIFT) - 1)) as u8;
    Ok(match value >> IOPRIO_CLASS_SHIFT {
        IOPRIO_CLASS_BE => Some(IoClass::BestEffort(level)),
        IOPRIO_CLASS_IDLE => Some(IoClass::Idle),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_classes_encode_as_linux_defines_them() {
        assert_eq!(IoClass::BestEffort(7).ioprio(), (2 << 13) | 7);
        assert_eq!(IoClass::BestEffort(200).ioprio(), (2 << 13) | 7, "levels past 7 are clamped");
        assert_eq!(IoClass::Idle.ioprio(), 3 << 13);
    }

    #[test]
    fn a_thread_lowers_its_own_io_class_and_no_other_threads() {
        let before = current_thread_io_class().expect("get");
        let lowered = std::thread::spawn(|| {
            set_current_thread_io_class(IoClass::BestEffort(BEST_EFFORT_LOWEST)).expect("set best effort");
            let best_effort = current_thread_io_class().expect("get");
            set_current_thread_io_class(IoClass::Idle).expect("set idle");
            (best_effort, current_thread_io_class().expect("get"))
        })
        .join()
        .expect("thread");
        assert_eq!(lowered, (Some(IoClass::BestEffort(7)), Some(IoClass::Idle)));
        assert_eq!(current_thread_io_class().expect("get"), before, "the calling thread is unchanged");
    }
}
