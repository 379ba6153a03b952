//! The C library's view of local time, so that TZ and /etc/localtime are honoured.

use nix::libc;

/// The local zone offset (seconds east of UTC) in force at `unix`; 0 if the C library
/// cannot tell.
///
/// The `time` crate refuses to read the local offset in a multi-threaded process; glibc's
/// `localtime_r` is safe there as long as nobody calls `setenv`, which backupbox never does.
pub fn local_offset_at(unix: i64) -> i32 {
    let t: libc::time_t = unix;
    // SAFETY: `tm` is plain C data of integers (and a pointer that localtime_r sets), for
    // which all-zero is a valid value.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are valid for the duration of the call.
    let filled = unsafe { libc::localtime_r(&t, &mut tm) };
    if filled.is_null() {
        0
    } else {
        i32::try_from(tm.tm_gmtoff).unwrap_or(0)
    }
}

/// Makes the C library read TZ and /etc/localtime again, so a running service follows a
/// time zone change after SIGHUP.
pub fn reread_time_zone() {
    unsafe extern "C" {
        fn tzset();
    }
    // SAFETY: tzset takes no arguments; backupbox never calls setenv, so TZ is not being
    // changed while the C library reads it.
    unsafe { tzset() }
}
