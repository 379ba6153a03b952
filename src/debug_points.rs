//! Pause and fault points that integration tests reach through the environment, so races and
//! bugs can be staged deterministically. Compiled into debug builds only: the release binary
//! carries none of it.

/// Waits at `point` when `BACKUPBOX_TEST_PAUSE` names it as `point:FILE` (several such pairs
/// may be given, separated by commas): creates FILE, then waits (at most 60 s) until the test
/// removes it.
pub fn pause(point: &str) {
    #[cfg(debug_assertions)]
    {
        let Some(setting) = std::env::var_os("BACKUPBOX_TEST_PAUSE") else {
            return;
        };
        let setting = setting.to_string_lossy().into_owned();
        let Some(file) = setting.split(',').find_map(|pair| {
            pair.strip_prefix(point)
                .and_then(|rest| rest.strip_prefix(':'))
        }) else {
            return;
        };
        if std::fs::write(file, point).is_err() {
            return;
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while std::path::Path::new(file).exists() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
    #[cfg(not(debug_assertions))]
    let _ = point;
}

/// Panics at `point` when `BACKUPBOX_TEST_PANIC` is `point`: a stand-in for a bug.
pub fn fault(point: &str) {
    #[cfg(debug_assertions)]
    if std::env::var_os("BACKUPBOX_TEST_PANIC").is_some_and(|value| value == point) {
        panic!("test hook {point}");
    }
    #[cfg(not(debug_assertions))]
    let _ = point;
}

/// Appends `event` as a line to the file `BACKUPBOX_TEST_COUNT` names, so a test can count
/// how often something happens (metrics writes, plan reads) instead of timing it.
pub fn count(event: &str) {
    #[cfg(debug_assertions)]
    if let Some(file) = std::env::var_os("BACKUPBOX_TEST_COUNT") {
        use std::io::Write;
        let _ = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(file)
            .and_then(|mut file| file.write_all(format!("{event}\n").as_bytes()));
    }
    #[cfg(not(debug_assertions))]
    let _ = event;
}

/// Days added to the clock when a job chooses its incremental level, from
/// `BACKUPBOX_TEST_DAYS_LATER`: a test of `full_every` does not wait for a week.
pub fn days_later() -> i64 {
    #[cfg(debug_assertions)]
    if let Some(days) = std::env::var_os("BACKUPBOX_TEST_DAYS_LATER") {
        return days.to_string_lossy().parse().unwrap_or(0);
    }
    0
}
