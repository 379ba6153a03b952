//! Restoring a backup of /etc as GNU tar does: links that point outside restored as they are,
//! hard links stored and restored as links, and `contents --long` equal to `tar -tvf`.

use crate::common::*;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};

// 1. Links that point outside the target.

#[test]
fn l1_a_backup_of_etc_restores_links_that_point_outside_as_they_are() {
    let sb = Sandbox::new();
    sb.write("etc/X11/rgb.real", "255 250 250 snow\n");
    fs::create_dir_all(sb.join("etc/alternatives")).unwrap();
    symlink("/etc/X11/rgb.txt", sb.join("etc/X11/rgb.txt")).unwrap();
    symlink("../../../usr/bin/vi", sb.join("etc/alternatives/vi")).unwrap();
    symlink("rgb.real", sb.join("etc/X11/inside")).unwrap();
    sb.write("backup_schedules.txt", "etc;03:30;etc\n");
    sb.manager(&["run", "0"]).ok();

    let to = sb.join("restored");
    let out = sb.manager(&["restore", "etc", "--to", to.to_str().unwrap()]);
    out.ok();
    let note = format!(
        "backups/etc.tar: 2 restored symlinks point outside {} (restored as stored; --refuse-outside-links refuses them)",
        to.display()
    );
    out.stdout_contains(&note);
    assert_eq!(sb.manager_log().last().unwrap(), &note);
    for (link, target) in [
        ("etc/X11/rgb.txt", "/etc/X11/rgb.txt"),
        ("etc/alternatives/vi", "../../../usr/bin/vi"),
        ("etc/X11/inside", "rgb.real"),
    ] {
        assert_eq!(
            fs::read_link(to.join(link)).unwrap().to_str(),
            Some(target),
            "{link}"
        );
    }
    // The strict mode of before: the whole restore is refused, nothing written.
    let strict = sb.join("strict");
    sb.manager(&[
        "restore",
        "etc",
        "--to",
        strict.to_str().unwrap(),
        "--refuse-outside-links",
    ])
    .fails(1)
    .stderr_contains(
        "etc/X11/rgb.txt: symlink points outside the restore folder (/etc/X11/rgb.txt)",
    );
    assert!(!strict.exists(), "{}", sb.explain());
    sb.manager(&[
        "restore",
        "etc",
        "--refuse-outside-links",
        "--outside-links",
    ])
    .fails(2)
    .stderr_contains("contradict");
}

// 2. Hard links are stored as links.

#[test]
fn l2_a_file_with_101_names_is_stored_once_and_restored_as_one_inode() {
    let sb = Sandbox::new();
    sb.write_large("home/u/big", 20);
    for i in 0..100 {
        fs::hard_link(sb.join("home/u/big"), sb.join(format!("home/u/l{i}"))).unwrap();
    }
    sb.write("backup_schedules.txt", "home;03:30;home\n");
    sb.manager(&["run", "0"]).ok();

    let archive = sb.join("backups/home.tar");
    let size = fs::metadata(&archive).unwrap().len();
    assert!(
        size < 21 << 20,
        "{size} bytes: the data once, not 101 times"
    );
    assert_gnu_tar_compare_clean(&archive, sb.path());
    let listing = gnu_tar_list(&archive);
    assert_eq!(
        listing
            .iter()
            .filter(|line| line.contains(" link to home/u/"))
            .count(),
        100,
        "{listing:?}"
    );
    sb.manager(&["verify", "home"]).ok();

    let to = sb.join("restored");
    sb.manager(&["restore", "home", "--to", to.to_str().unwrap()])
        .ok()
        .stdout_contains("103 members restored");
    let big = fs::metadata(to.join("home/u/big")).unwrap();
    assert_eq!(big.nlink(), 101);
    for i in 0..100 {
        let link = fs::metadata(to.join(format!("home/u/l{i}"))).unwrap();
        assert_eq!((link.ino(), link.dev()), (big.ino(), big.dev()), "l{i}");
    }
    assert_eq!(
        fs::read(to.join("home/u/l42")).unwrap(),
        fs::read(sb.join("home/u/big")).unwrap()
    );

    // One link alone: the data comes with it, under its own name (GNU tar fails here).
    let just_l7 = sb.join("just-l7");
    sb.manager(&[
        "restore",
        "home",
        "home/u/l7",
        "--to",
        just_l7.to_str().unwrap(),
    ])
    .ok()
    .stdout_contains("1 members restored");
    assert_eq!(
        fs::read(just_l7.join("home/u/l7")).unwrap(),
        fs::read(sb.join("home/u/big")).unwrap()
    );
    // Two links chosen: the first gets the data, the second links to it.
    let alone = sb.join("alone");
    sb.manager(&[
        "restore",
        "home",
        "home/u/l7",
        "home/u/l8",
        "--to",
        alone.to_str().unwrap(),
    ])
    .ok();
    let l7 = fs::metadata(alone.join("home/u/l7")).unwrap();
    assert_eq!(l7.len(), 20 << 20);
    assert_eq!(l7.nlink(), 2, "l8 links to the data l7 got");
    assert_eq!(
        fs::metadata(alone.join("home/u/l8")).unwrap().ino(),
        l7.ino()
    );
    assert!(!alone.join("home/u/big").exists(), "not asked for");
    assert_eq!(
        fs::read(alone.join("home/u/l7")).unwrap(),
        fs::read(sb.join("home/u/big")).unwrap()
    );
}

// 3. `contents --long` is `tar -tvf`, byte for byte.

#[test]
fn l3_contents_long_is_gnu_tar_tvf_for_every_member_type() {
    let sb = Sandbox::new();
    sb.write("t/suid", "x");
    fs::set_permissions(sb.join("t/suid"), fs::Permissions::from_mode(0o4755)).unwrap();
    sb.write("t/suid-noexec", "x");
    fs::set_permissions(sb.join("t/suid-noexec"), fs::Permissions::from_mode(0o4644)).unwrap();
    fs::create_dir(sb.join("t/shared")).unwrap();
    fs::set_permissions(sb.join("t/shared"), fs::Permissions::from_mode(0o2750)).unwrap();
    fs::create_dir(sb.join("t/tmp")).unwrap();
    fs::set_permissions(sb.join("t/tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
    nix::unistd::mkfifo(
        &sb.join("t/fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o640),
    )
    .unwrap();
    symlink("suid", sb.join("t/link")).unwrap();
    fs::hard_link(sb.join("t/suid"), sb.join("t/hard")).unwrap();
    sb.write_large("t/big", 12);
    sb.write("t/old", "1960");
    touch(&sb.join("t/old"), "1960-06-01 12:00:00");
    sb.write("backup_schedules.txt", "t;03:30;t\n");
    sb.manager(&["run", "0"]).ok();
    let (ours, theirs) = long_listings(&sb, "t", &sb.join("backups/t.tar"));
    assert_eq!(ours, theirs);

    // Devices, a long owner name that widens the columns, and a year GNU tar prints with five
    // digits, in an archive made header by header.
    let mut bytes = Vec::new();
    let mut add = |name: &str, kind: tar::EntryType, user: &str, mtime: u64, device: (u32, u32)| {
        let mut header = tar::Header::new_gnu();
        header.set_path(name).unwrap();
        header.set_entry_type(kind);
        header.set_mode(0o660);
        header.set_size(0);
        header.set_mtime(mtime);
        header.set_username(user).unwrap();
        header.set_groupname("disk").unwrap();
        header.set_device_major(device.0).unwrap();
        header.set_device_minor(device.1).unwrap();
        header.set_cksum();
        bytes.extend_from_slice(header.as_bytes());
    };
    add("dev/null", tar::EntryType::Char, "root", 0, (1, 3));
    add(
        "dev/sda",
        tar::EntryType::Block,
        "root",
        1_700_000_000,
        (8, 0),
    );
    add(
        "dev/far",
        tar::EntryType::Regular,
        "averyveryverylongusername",
        1_000_000_000_000,
        (0, 0),
    );
    add("dev/after", tar::EntryType::Char, "root", 60, (254, 1023));
    bytes.extend_from_slice(&[0u8; 1024]);
    fs::write(sb.join("backups/dev.tar"), &bytes).unwrap();
    let (ours, theirs) = long_listings(&sb, "dev", &sb.join("backups/dev.tar"));
    assert_eq!(ours, theirs);
    // The columns widened after the long name and the five-digit year, as GNU tar's do.
    assert!(
        theirs.contains(" 254,1023 1970-01-01 00:01  dev/after\n"),
        "{theirs}"
    );
}
