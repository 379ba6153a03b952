//! Name service lookups in the static build: user and group names from `/etc/passwd` and
//! `/etc/group` only. A statically linked glibc would otherwise load the host's NSS modules
//! (LDAP, SSSD, systemd) for the other sources, built for another glibc, into this process.
//! The dynamic build keeps the host's `nsswitch.conf` as it is.

/// Restricts `passwd` and `group` lookups to files, in a static build; nothing otherwise.
pub fn files_only_when_static() {
    #[cfg(target_feature = "crt-static")]
    {
        unsafe extern "C" {
            fn __nss_configure_lookup(
                database: *const std::ffi::c_char,
                service: *const std::ffi::c_char,
            ) -> std::ffi::c_int;
        }
        for database in [c"passwd", c"group"] {
            // SAFETY: both arguments are NUL-terminated constants; glibc copies what it keeps,
            // and this runs first in main, before any other thread or lookup.
            unsafe {
                __nss_configure_lookup(database.as_ptr(), c"files".as_ptr());
            }
        }
    }
}
