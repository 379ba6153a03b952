//! Archives other tools made, restored as GNU tar restores them: pax sparse files in every
//! GNU sparse version, pax times with nanoseconds, old-style (v7) directories, and owners by
//! name. Each archive is made in the test by GNU tar or bsdtar.

use crate::common::*;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Puts `archive` (made by another tool in the sandbox) in place as `backups/<name>.tar`.
fn adopt(sb: &Sandbox, name: &str, archive: &Path) {
    fs::create_dir_all(sb.join("backups")).unwrap();
    fs::rename(archive, sb.join(format!("backups/{name}.tar"))).unwrap();
}

/// `tar ARGS` in the sandbox; must succeed.
fn gnu_tar(sb: &Sandbox, args: &[&str]) {
    let out = tool("tar")
        .args(args)
        .current_dir(sb.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "tar {args:?}: {}", stderr(&out));
}

/// `d/f`: 1 MiB of hole, then three bytes.
fn sparse_fixture(sb: &Sandbox) {
    use std::io::{Seek, SeekFrom, Write};
    fs::create_dir(sb.join("d")).unwrap();
    let mut sparse = fs::File::create(sb.join("d/f")).unwrap();
    sparse.seek(SeekFrom::Start(1 << 20)).unwrap();
    sparse.write_all(b"END").unwrap();
}

#[test]
fn f1_pax_sparse_files_of_every_gnu_version_restore_with_their_name_size_and_holes() {
    let sb = Sandbox::new();
    sparse_fixture(&sb);
    let bytes = fs::read(sb.join("d/f")).unwrap();
    let source = fs::metadata(sb.join("d/f")).unwrap();
    assert!(source.blocks() * 512 < 1 << 20, "the fixture has a hole");

    for version in ["0.0", "0.1", "1.0"] {
        let archive = format!("s{}.tar", version.replace('.', ""));
        gnu_tar(
            &sb,
            &[
                "--format=posix",
                "--sparse",
                &format!("--sparse-version={version}"),
                "-cf",
                &archive,
                "d",
            ],
        );
        let name = format!("s{}", version.replace('.', ""));
        adopt(&sb, &name, &sb.join(&archive));
        let to = sb.join(format!("restored-{name}"));
        sb.manager(&["restore", &name, "--to", to.to_str().unwrap()])
            .ok();
        let restored = fs::metadata(to.join("d/f")).unwrap();
        assert_eq!(restored.len(), 1_048_579, "{version}");
        assert!(restored.blocks() * 512 < 1 << 20, "{version}: holes kept");
        assert_eq!(fs::read(to.join("d/f")).unwrap(), bytes, "{version}");
        let names: Vec<_> = fs::read_dir(to.join("d"))
            .unwrap()
            .flatten()
            .map(|entry| entry.file_name())
            .collect();
        assert_eq!(names, ["f"], "{version}: no GNUSparseFile.N folder");
        let listing = stdout(&sb.manager(&["contents", &name, "--long"]));
        assert!(listing.contains(" 1048579 "), "{version}: {listing}");
        assert!(listing.trim_end().ends_with(" d/f"), "{version}: {listing}");
    }

    // --against compares the whole file, holes included, not the packed regions. Members
    // named as backupbox names them: the folder's path without its leading `/`.
    let folder = sb.join("d");
    let relative = folder.strip_prefix("/").unwrap().to_str().unwrap();
    gnu_tar(
        &sb,
        &[
            "--format=posix",
            "--sparse",
            "--sparse-version=1.0",
            "-cf",
            "against.tar",
            "-C",
            "/",
            relative,
        ],
    );
    adopt(&sb, "s10", &sb.join("against.tar"));
    sb.write(
        "backup_schedules.txt",
        format!("{};03:00;s10\n", folder.display()),
    );
    sb.manager(&["verify", "s10", "--against"]).ok();
    for (at, byte) in [(1usize << 20, b'X'), (4096, b'h')] {
        use std::os::unix::fs::FileExt;
        let live = fs::OpenOptions::new()
            .write(true)
            .open(sb.join("d/f"))
            .unwrap();
        live.write_all_at(&[byte], at as u64).unwrap();
        let out = sb.manager(&["verify", "s10", "--against"]);
        out.fails(1)
            .stdout_contains(&format!("{relative}/f: contents differ"));
        live.write_all_at(&bytes[at..=at], at as u64).unwrap();
        touch(&sb.join("d/f"), &format!("@{}", source.mtime()));
    }
    sb.manager(&["verify", "s10", "--against"]).ok();
}

#[test]
fn f1_a_10_gib_pax_sparse_file_restores_in_moments() {
    let sb = Sandbox::new();
    fs::create_dir(sb.join("d")).unwrap();
    let file = fs::File::create(sb.join("d/big")).unwrap();
    file.set_len(10 << 30).unwrap();
    drop(file);
    gnu_tar(
        &sb,
        &[
            "--format=posix",
            "--sparse",
            "--sparse-version=1.0",
            "-cf",
            "b.tar",
            "d",
        ],
    );
    adopt(&sb, "big", &sb.join("b.tar"));
    let out = output_within(
        sb.command("backup_manager", &["restore", "big"]),
        std::time::Duration::from_secs(60),
    );
    out.ok();
    let restored = fs::metadata(sb.join("restore/big/d/big")).unwrap();
    assert_eq!(restored.len(), 10 << 30);
    assert!(restored.blocks() < 64, "{} blocks", restored.blocks());
}

#[test]
fn f1_pax_times_keep_their_year_and_nanoseconds() {
    let sb = Sandbox::new();
    sb.write("d/old", "1960");
    sb.write("d/far", "2300");
    touch(&sb.join("d/old"), "1960-06-01 12:00:00.123456789");
    touch(&sb.join("d/far"), "2300-01-01 00:00:00.5");
    for (maker, name) in [("tar", "gnupax"), ("bsdtar", "bsdpax")] {
        let archive = sb.join(format!("{name}.tar"));
        let out = tool(maker)
            .args(["--format=pax", "-cf"])
            .arg(&archive)
            .arg("d")
            .current_dir(sb.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "{maker}: {}", stderr(&out));
        adopt(&sb, name, &archive);
        let to = sb.join(format!("restored-{name}"));
        sb.manager(&["restore", name, "--to", to.to_str().unwrap()])
            .ok();
        let gnu = sb.join(format!("gnu-{name}"));
        fs::create_dir(&gnu).unwrap();
        let out = tool("tar")
            .arg("-xf")
            .arg(sb.join(format!("backups/{name}.tar")))
            .current_dir(&gnu)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        for file in ["d/old", "d/far"] {
            let ours = fs::metadata(to.join(file)).unwrap();
            let theirs = fs::metadata(gnu.join(file)).unwrap();
            assert_eq!(
                (ours.mtime(), ours.mtime_nsec()),
                (theirs.mtime(), theirs.mtime_nsec()),
                "{name} {file}"
            );
        }
        let far = fs::metadata(to.join("d/far")).unwrap();
        assert_eq!(
            (far.mtime(), far.mtime_nsec()),
            (10_413_792_000, 500_000_000),
            "{name}: year 2300, half a second"
        );
        let (ours, theirs) = long_listings(&sb, name, &sb.join(format!("backups/{name}.tar")));
        assert_eq!(ours, theirs, "{name}");
    }
}

#[test]
fn f1_old_style_directories_of_a_v7_archive_are_directories() {
    let sb = Sandbox::new();
    sb.write("d/sub/f", "x");
    sb.write("d/g", "y");
    let out = tool("bsdtar")
        .args(["--format=v7", "-cf", "v7.tar", "d"])
        .current_dir(sb.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    adopt(&sb, "v7", &sb.join("v7.tar"));
    sb.manager(&["verify", "v7"]).ok();
    sb.manager(&["restore", "v7"]).ok();
    assert!(sb.join("restore/v7/d/sub").is_dir(), "{}", sb.explain());
    assert_eq!(fs::read(sb.join("restore/v7/d/sub/f")).unwrap(), b"x");
    let listing = stdout(&sb.manager(&["contents", "v7", "--long"]));
    let theirs = gnu_tar_list(&sb.join("backups/v7.tar"));
    assert_eq!(listing.lines().collect::<Vec<_>>(), theirs);
}

#[test]
#[ignore = "needs root: restores owners"]
fn f1_owners_are_restored_by_name_as_gnu_tar_does_unless_numeric_owner() {
    assert_root("chown");
    let sb = Sandbox::new();
    sb.write("d/f", "x");
    nix::unistd::chown(
        &sb.join("d/f"),
        Some(nix::unistd::Uid::from_raw(4242)),
        Some(nix::unistd::Gid::from_raw(4243)),
    )
    .unwrap();
    // The stored names say nobody/nogroup, the stored ids 4242/4243.
    gnu_tar(
        &sb,
        &[
            "--owner=nobody:4242",
            "--group=nogroup:4243",
            "-cf",
            "o.tar",
            "d",
        ],
    );
    adopt(&sb, "o", &sb.join("o.tar"));
    let nobody = nix::unistd::User::from_name("nobody").unwrap().unwrap();
    let nogroup = nix::unistd::Group::from_name("nogroup").unwrap().unwrap();
    sb.manager(&["restore", "o"]).ok();
    let by_name = fs::metadata(sb.join("restore/o/d/f")).unwrap();
    assert_eq!(
        (by_name.uid(), by_name.gid()),
        (nobody.uid.as_raw(), nogroup.gid.as_raw())
    );
    let numeric = sb.join("numeric");
    sb.manager(&[
        "restore",
        "o",
        "--numeric-owner",
        "--to",
        numeric.to_str().unwrap(),
    ])
    .ok();
    let by_id = fs::metadata(numeric.join("d/f")).unwrap();
    assert_eq!((by_id.uid(), by_id.gid()), (4242, 4243));
}

// 2. Benign archives GNU tar reads.

#[test]
fn f2_volume_labels_dumpdirs_and_solaris_acls_read_as_gnu_tar_reads_them() {
    let sb = Sandbox::new();
    sb.write("d/f", "x");
    sb.write("d/sub/g", "y");
    gnu_tar(&sb, &["-V", "MYLABEL", "-cf", "label.tar", "d"]);
    gnu_tar(&sb, &["-g", "snapshot", "-cf", "inc.tar", "d"]);
    for name in ["label", "inc"] {
        adopt(&sb, name, &sb.join(format!("{name}.tar")));
        sb.manager(&["verify", name]).ok();
        let (ours, theirs) = long_listings(&sb, name, &sb.join(format!("backups/{name}.tar")));
        assert_eq!(ours, theirs, "{name}");
        sb.manager(&["restore", name]).ok();
        let restored = sb.join(format!("restore/{name}"));
        assert_eq!(fs::read(restored.join("d/sub/g")).unwrap(), b"y", "{name}");
        let top: Vec<_> = fs::read_dir(&restored)
            .unwrap()
            .flatten()
            .map(|entry| entry.file_name())
            .collect();
        assert_eq!(top, ["d"], "{name}: the label is not a file");
    }

    // A Solaris ACL member ahead of a file: skipped with a warning, the file restored.
    let mut bytes = Vec::new();
    for (name, kind, data) in [
        ("acl", tar::EntryType::new(b'A'), &b"user::rw-"[..]),
        ("file", tar::EntryType::Regular, b"data"),
    ] {
        let mut header = tar::Header::new_ustar();
        header.set_path(name).unwrap();
        header.set_entry_type(kind);
        header.set_mode(0o644);
        header.set_size(data.len() as u64);
        header.set_cksum();
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend_from_slice(data);
        bytes.resize(bytes.len().div_ceil(512) * 512, 0);
    }
    bytes.extend_from_slice(&[0; 1024]);
    fs::write(sb.join("backups/acl.tar"), bytes).unwrap();
    sb.manager(&["restore", "acl"])
        .ok()
        .stderr_contains("Warning: acl: a Solaris ACL member, not restored");
    assert_eq!(fs::read(sb.join("restore/acl/file")).unwrap(), b"data");
    assert!(!sb.join("restore/acl/acl").exists(), "{}", sb.explain());
}

#[test]
fn f2_zero_padding_after_a_gzip_stream_is_accepted_and_anything_else_is_damage() {
    let sb = Sandbox::new();
    sb.write("d/f", "x");
    gnu_tar(&sb, &["-czf", "padded.tar.gz", "d"]);
    let mut padded = fs::read(sb.join("padded.tar.gz")).unwrap();
    padded.extend_from_slice(&[0; 10_240]);
    fs::create_dir_all(sb.join("backups")).unwrap();
    fs::write(sb.join("backups/padded.tar.gz"), &padded).unwrap();
    sb.manager(&["verify", "padded"]).ok();
    sb.manager(&["restore", "padded"]).ok();
    assert_eq!(fs::read(sb.join("restore/padded/d/f")).unwrap(), b"x");
    padded.extend_from_slice(b"junk");
    fs::write(sb.join("backups/padded.tar.gz"), &padded).unwrap();
    sb.manager(&["verify", "padded"])
        .fails(1)
        .stderr_contains("bytes that are not zeros after the zero padding");
}

/// A pax record `LEN key=value\n`, LEN counting the whole record.
fn pax_record(key: &str, value: &str) -> Vec<u8> {
    let body = format!(" {key}={value}\n");
    let mut length = body.len() + 1;
    while format!("{length}{body}").len() != length {
        length += 1;
    }
    format!("{length}{body}").into_bytes()
}

/// An archive name, its pax records, the member's data, and the refusal expected.
type DamagedMap<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a [u8], &'a str);

#[test]
fn f1_a_damaged_pax_sparse_map_is_refused_before_anything_is_written() {
    let sb = Sandbox::new();
    fs::create_dir_all(sb.join("backups")).unwrap();
    let cases: [DamagedMap; 3] = [
        (
            "unpaired",
            &[("GNU.sparse.map", "0,3,7"), ("GNU.sparse.realsize", "10")],
            b"abc",
            "its last region has no length",
        ),
        (
            "past_the_end",
            &[
                ("GNU.sparse.map", "9223372036854775000,3"),
                ("GNU.sparse.realsize", "10"),
            ],
            b"abc",
            "a region ends past the file's size",
        ),
        (
            "unreadable_map",
            &[
                ("GNU.sparse.major", "1"),
                ("GNU.sparse.minor", "0"),
                ("GNU.sparse.realsize", "100"),
            ],
            b"999999999999999999\n0\n",
            "its map is not readable",
        ),
    ];
    for (name, records, data, why) in cases {
        let mut pax: Vec<u8> = records
            .iter()
            .flat_map(|(key, value)| pax_record(key, value))
            .collect();
        pax.extend(pax_record("GNU.sparse.name", "d/f"));
        let archive = RawArchive::new()
            .member(b"d/PaxHeaders/f", tar::EntryType::XHeader, b"", &pax)
            .member(b"d/GNUSparseFile.1/f", tar::EntryType::Regular, b"", data)
            .finish();
        fs::write(sb.join(format!("backups/{name}.tar")), archive).unwrap();
        sb.manager(&["restore", name])
            .fails(1)
            .stderr_contains(&format!("d/f: damaged sparse map: {why}"));
        assert!(
            !sb.join(format!("restore/{name}")).exists(),
            "{name}: nothing written"
        );
        // verify finds what restore refuses.
        sb.manager(&["verify", name])
            .fails(1)
            .stderr_contains(&format!("d/f: damaged sparse map: {why}"));
    }
}

#[test]
fn f2_records_that_describe_nothing_or_do_not_parse_are_damage_to_every_command() {
    let sb = Sandbox::new();
    fs::create_dir_all(sb.join("backups")).unwrap();
    let cases: [(&str, Vec<u8>, &str); 2] = [
        (
            "dangling",
            RawArchive::new()
                .member(b"f", tar::EntryType::Regular, b"", b"data")
                .member(
                    b"././@LongLink",
                    tar::EntryType::GNULongName,
                    b"",
                    b"name\0",
                )
                .finish(),
            "a long-name or pax record at byte 1024 describes a member that is not there",
        ),
        (
            "badpax",
            RawArchive::new()
                .member(
                    b"PaxHeaders/f",
                    tar::EntryType::XHeader,
                    b"",
                    b"99 mtime=1\n",
                )
                .member(b"f", tar::EntryType::Regular, b"", b"data")
                .finish(),
            "damaged pax record at byte 0",
        ),
    ];
    for (name, archive, why) in cases {
        fs::write(sb.join(format!("backups/{name}.tar")), archive).unwrap();
        sb.manager(&["verify", name]).fails(1).stderr_contains(why);
        sb.manager(&["restore", name]).fails(1).stderr_contains(why);
        assert_ne!(
            code(&sb.manager(&["contents", name]).output),
            0,
            "{name}: contents lists what verify calls damaged"
        );
    }
}

/// Rewrites the header of the member named `name` in `archive` with `change`, then sums its
/// checksum again, as a writer that put those bytes there would have.
fn patch_header(archive: &Path, name: &[u8], change: impl Fn(&mut [u8])) {
    let mut bytes = fs::read(archive).unwrap();
    let at = bytes
        .chunks(512)
        .position(|block| block.starts_with(name) && block[name.len()] == 0)
        .unwrap_or_else(|| panic!("no header named {}", String::from_utf8_lossy(name)))
        * 512;
    let block = &mut bytes[at..at + 512];
    change(block);
    block[148..156].fill(b' ');
    let sum: u32 = block.iter().map(|&b| u32::from(b)).sum();
    block[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    fs::write(archive, bytes).unwrap();
}

#[test]
fn f2_hard_links_that_carry_a_size_field_read_as_gnu_tar_reads_them() {
    let sb = Sandbox::new();
    sb.write("d/target", "the data, stored once\n");
    fs::hard_link(sb.join("d/target"), sb.join("d/link")).unwrap();
    sb.write("d/after", "a member after the link\n");
    for format in ["ustar", "gnu", "posix"] {
        let name = format!("links-{format}");
        let archive = sb.join(format!("{name}.tar"));
        gnu_tar(
            &sb,
            &[
                &format!("--format={format}"),
                "-cf",
                &format!("{name}.tar"),
                "d",
            ],
        );
        // Some writers put the target's size in the link's header, with no data after it.
        patch_header(&archive, b"d/link", |block| {
            block[124..136].copy_from_slice(b"00000000026\0");
        });
        adopt(&sb, &name, &archive);
        sb.manager(&["verify", &name]).ok();
        let (ours, theirs) = long_listings(&sb, &name, &sb.join(format!("backups/{name}.tar")));
        assert_eq!(ours, theirs, "{format}: contents --long against tar -tvf");
        sb.manager(&["restore", &name]).ok();
        let restored = sb.join(format!("restore/{name}/d"));
        let target = fs::metadata(restored.join("target")).unwrap();
        let link = fs::metadata(restored.join("link")).unwrap();
        assert_eq!(
            target.ino(),
            link.ino(),
            "{format}: one inode for both names"
        );
        assert_eq!(
            fs::read(restored.join("after")).unwrap(),
            b"a member after the link\n",
            "{format}: the member after the link is read where it is"
        );
    }
}

#[test]
fn f2_a_second_long_name_record_is_refused_alike_by_verify_contents_and_restore() {
    let sb = Sandbox::new();
    let long = format!("d/{}", "n".repeat(120));
    sb.write(&long, "x");
    gnu_tar(&sb, &["--format=gnu", "-cf", "twice.tar", "d"]);
    // GNU tar keeps the last of two `L` records; the tar crate refuses the member. Put a
    // record naming a decoy before the real one.
    let mut bytes = fs::read(sb.join("twice.tar")).unwrap();
    let at = bytes
        .chunks(512)
        .position(|block| block.starts_with(b"././@LongLink") && block[156] == b'L')
        .expect("GNU tar wrote an L record")
        * 512;
    let mut decoy = bytes[at..at + 1024].to_vec();
    decoy[512..512 + long.len()].copy_from_slice(format!("d/{}", "o".repeat(120)).as_bytes());
    bytes.splice(at..at, decoy);
    fs::create_dir_all(sb.join("backups")).unwrap();
    fs::write(sb.join("backups/twice.tar"), &bytes).unwrap();
    let names = gnu_tar_names(&sb.join("backups/twice.tar"));
    assert!(
        names.iter().any(|name| name.ends_with(&b"nnnn"[..])),
        "GNU tar reads the last name"
    );
    let reason = "a second long-name record for one member at byte 1536";
    sb.manager(&["verify", "twice"])
        .fails(1)
        .stderr_contains(reason);
    sb.manager(&["restore", "twice"])
        .fails(1)
        .stderr_contains(reason);
    assert!(!sb.join("restore/twice").exists(), "{}", sb.explain());
    let contents = sb.manager(&["contents", "twice"]);
    assert_ne!(
        code(&contents.output),
        0,
        "contents must not list what the others refuse"
    );
}

/// A libarchive test archive from tests/data/libarchive, uudecoded (and uncompressed from
/// `.Z` by gzip), put in place as `backups/<name>.tar`.
fn adopt_libarchive_archive(sb: &Sandbox, name: &str, file: &str) -> std::path::PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/libarchive")
        .join(file);
    let mut bytes = uudecode(&fs::read_to_string(&path).unwrap());
    if file.ends_with(".Z.uu") {
        use std::io::Write;
        let mut gzip = tool("gzip")
            .arg("-dc")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        gzip.stdin.take().unwrap().write_all(&bytes).unwrap();
        let out = gzip.wait_with_output().unwrap();
        assert!(out.status.success(), "gzip -dc {file}: {}", stderr(&out));
        bytes = out.stdout;
    }
    let archive = sb.join(format!("backups/{name}.tar"));
    fs::create_dir_all(sb.join("backups")).unwrap();
    fs::write(&archive, bytes).unwrap();
    archive
}

/// The body of a uuencoded file (`begin …` to `end`).
fn uudecode(text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for line in text
        .lines()
        .skip_while(|line| !line.starts_with("begin "))
        .skip(1)
    {
        if line == "end" {
            break;
        }
        let bytes: Vec<u8> = line.bytes().map(|b| b.wrapping_sub(b' ') & 0x3f).collect();
        let Some((&length, quads)) = bytes.split_first() else {
            continue;
        };
        let mut decoded = Vec::new();
        for quad in quads.chunks(4).filter(|quad| quad.len() == 4) {
            decoded.push(quad[0] << 2 | quad[1] >> 4);
            decoded.push(quad[1] << 4 | quad[2] >> 2);
            decoded.push(quad[2] << 6 | quad[3]);
        }
        decoded.truncate(usize::from(length));
        out.extend(decoded);
    }
    out
}

/// `tar -xf` of `archive` into a new folder `into`.
fn gnu_extract(archive: &Path, into: &Path) {
    fs::create_dir_all(into).unwrap();
    let out = tool("tar")
        .arg("-xf")
        .arg(archive)
        .current_dir(into)
        .output()
        .unwrap();
    assert!(out.status.success(), "tar -xf: {}", stderr(&out));
}

#[test]
fn f2_libarchive_s_odd_tar_archives_read_as_gnu_tar_reads_them() {
    let sb = Sandbox::new();
    for (name, file, files) in [
        // A size field of NULs before the digits, and a 12-digit mtime (year 2450).
        (
            "overflow",
            "test_read_format_tar_timestamp_overflow.tar.uu",
            &["tmp/f.txt"][..],
        ),
        // Ends in one zero block: GNU tar warns "A lone zero block" and reads it.
        (
            "lone-zero",
            "test_read_format_gtar_sparse_length.tar.Z.uu",
            &["dir/GNUSparseFile.0/file1"][..],
        ),
        // Only a volume label.
        (
            "label-only",
            "test_read_format_tar_empty_with_gnulabel.tar.uu",
            &[][..],
        ),
    ] {
        let archive = adopt_libarchive_archive(&sb, name, file);
        sb.manager(&["verify", name]).ok();
        let (ours, theirs) = long_listings(&sb, name, &archive);
        assert_eq!(ours, theirs, "{name}: contents --long against tar -tvf");
        sb.manager(&["restore", name]).ok();
        let gnu = sb.join(format!("gnu-{name}"));
        gnu_extract(&archive, &gnu);
        let ours = sb.join(format!("restore/{name}"));
        for file in files {
            let (a, b) = (
                fs::metadata(ours.join(file)).unwrap(),
                fs::metadata(gnu.join(file)).unwrap(),
            );
            assert_eq!(
                (a.len(), a.mode(), a.mtime()),
                (b.len(), b.mode(), b.mtime()),
                "{name}: {file} as GNU tar restores it"
            );
            assert_eq!(
                fs::read(ours.join(file)).unwrap(),
                fs::read(gnu.join(file)).unwrap()
            );
        }
    }
}

#[test]
fn f2_a_pax_size_overrides_the_header_s_in_every_reader() {
    // libarchive's sparse_skip_entry: a 10 GiB pax 1.0 sparse file whose ustar size field
    // says 4 while its pax `size` says 4612; then a second member.
    let sb = Sandbox::new();
    let archive = adopt_libarchive_archive(
        &sb,
        "skip",
        "test_read_format_gtar_sparse_skip_entry.tar.Z.uu",
    );
    sb.manager(&["verify", "skip"]).ok();
    let (ours, theirs) = long_listings(&sb, "skip", &archive);
    assert_eq!(ours, theirs, "contents --long against tar -tvf");
    sb.manager(&["restore", "skip"]).ok();
    let gnu = sb.join("gnu");
    gnu_extract(&archive, &gnu);
    let restored = sb.join("restore/skip");
    assert_eq!(
        fs::read(restored.join("b")).unwrap(),
        fs::read(gnu.join("b")).unwrap()
    );
    // The real size that the archive and `tar -tvf` give; GNU tar 1.34 itself stops its file
    // at the end of the last region, one byte short.
    let a = fs::metadata(restored.join("a")).unwrap();
    assert_eq!(a.len(), 10_737_418_244);
    assert!(a.blocks() < 64, "the hole is a hole: {} blocks", a.blocks());
    let region = |path: &Path, at: u64, len: usize| {
        use std::io::{Read, Seek, SeekFrom};
        let mut file = fs::File::open(path).unwrap();
        file.seek(SeekFrom::Start(at)).unwrap();
        let mut bytes = vec![0; len];
        file.read_exact(&mut bytes).unwrap();
        bytes
    };
    for (at, len) in [(0, 4096), (10_737_418_240, 3)] {
        assert_eq!(
            region(&restored.join("a"), at, len),
            region(&gnu.join("a"), at, len),
            "the region at {at}"
        );
    }
}

#[test]
fn f2_an_old_gnu_sparse_map_that_does_not_add_up_is_damage_to_every_command() {
    let sb = Sandbox::new();
    sparse_fixture(&sb);
    gnu_tar(&sb, &["--format=gnu", "--sparse", "-cf", "old.tar", "d"]);
    adopt(&sb, "old", &sb.join("old.tar"));
    sb.manager(&["verify", "old"]).ok();
    // The real size (GNU header bytes 483..495) no longer where the last region ends.
    patch_header(&sb.join("backups/old.tar"), b"d/f", |block| {
        block[483..495].copy_from_slice(b"00000000007\0");
    });
    let why = "d/f: damaged sparse map: its regions end elsewhere than its real size";
    sb.manager(&["verify", "old"]).fails(1).stderr_contains(why);
    sb.manager(&["restore", "old"])
        .fails(1)
        .stderr_contains(why);
    assert!(!sb.join("restore/old").exists(), "{}", sb.explain());
    assert_ne!(
        code(&sb.manager(&["contents", "old"]).output),
        0,
        "contents lists what verify calls damaged"
    );
}
