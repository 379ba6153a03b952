//! What a fleet of hosts needs of the command line: `run` by archive name and `--all` with a
//! JSON line per job, and `check` before a rollout trusts a plan.

use crate::common::*;
use std::fs;

/// A plan of two lines writing `docs` and one writing `pics`.
fn fleet_sandbox() -> Sandbox {
    let sb = Sandbox::new();
    sb.write("docs/a", "a\n");
    sb.write("more-docs/b", "b\n");
    sb.write("pics/c", "c\n");
    sb.write(
        "backup_schedules.txt",
        "docs;03:00;docs\npics;04:00;pics\nmore-docs;05:00;docs\n",
    );
    sb
}

#[test]
fn run_by_name_runs_every_line_that_writes_the_archive_and_all_runs_them_in_order() {
    let sb = fleet_sandbox();
    sb.manager(&["run", "docs"]).ok();
    assert_eq!(
        sb.manager_log(),
        [
            "Backup done for docs in backups/docs.tar",
            "Backup done for more-docs in backups/docs.tar"
        ]
    );
    assert!(!sb.join("backups/pics.tar").exists());
    // A number is an index, as it always was.
    sb.manager(&["run", "1"]).ok();
    assert!(sb.join("backups/pics.tar").exists());
    sb.manager(&["run", "nosuch"])
        .fails(1)
        .stderr_contains("can't find schedule at index or with archive name nosuch");
    sb.manager(&["run", "0", "--all"])
        .fails(2)
        .stderr_contains("run takes an index, a name or --all, not both");

    let out = sb.manager(&["run", "--all", "--json"]).ok().stdout_text();
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|err| panic!("{err}: {line}")))
        .collect();
    assert_eq!(lines.len(), 3, "{out}");
    let names: Vec<&str> = lines.iter().map(|l| l["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["docs", "pics", "docs"]);
    for line in &lines {
        assert_eq!(line["outcome"], "ok", "{line}");
        let archive = line["archive"].as_str().unwrap();
        let size = fs::metadata(sb.join(archive)).unwrap().len();
        assert!(line["size"].as_u64().unwrap() > 0 && archive.starts_with("backups/"));
        assert!(size > 0);
        assert!(line["seconds"].as_f64().unwrap() >= 0.0);
    }
}

#[test]
fn run_all_goes_on_past_a_failure_and_exits_1() {
    let sb = fleet_sandbox();
    fs::remove_dir_all(sb.join("pics")).unwrap();
    sb.write(
        "backup_schedules.txt",
        "docs;03:00;docs\npics;04:00;pics\nbad;3:00;bad\nmore-docs;05:00;docs\n",
    );
    let run = sb.manager(&["run", "--all", "--json"]);
    run.fails(1).stderr_contains("2 of 4 backups failed");
    let out = stdout(run.output());
    let outcomes: Vec<String> = out
        .lines()
        .map(|line| {
            let line: serde_json::Value = serde_json::from_str(line).unwrap();
            line["outcome"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(outcomes, ["ok", "failed", "failed", "ok"], "{out}");
    assert!(out.contains("folder not found"), "{out}");
    assert!(sb.join("backups/docs.tar").exists());
}

#[test]
fn check_names_every_problem_and_what_is_wrong_in_each_plan_line() {
    let sb = fleet_sandbox();
    sb.manager(&["check"]).ok().stdout_is("check: ok\n");
    fs::remove_dir_all(sb.join("pics")).unwrap();
    sb.write(
        "backup_schedules.txt",
        "docs;03:00;docs\npics;04:00;pics\nx;3:00;x\ny;03:00\nz;03:00;a/b\n",
    );
    sb.write("backupbox.toml", "keep = 0\n");
    let check = sb.manager(&["check"]);
    check.fails(1).stderr_contains("check: 5 problems");
    let out = stdout(check.output());
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[..4],
        [
            "plan line 2: malformed schedule: x;3:00;x: the time \"3:00\" is not hh:mm from 00:00 to 23:59",
            "plan line 3: malformed schedule: y;03:00: 2 fields where folder;hh:mm;name has 3",
            "plan line 4: malformed schedule: z;03:00;a/b: the name \"a/b\" is empty, \".\" or \"..\", holds '/', or is longer than 251 bytes",
            "plan line 1: folder pics can't be read (No such file or directory (os error 2))",
        ],
        "{out}"
    );
    assert!(lines[4].starts_with("settings: "), "{out}");
    assert!(
        sb.manager_log().contains(&"Check: 5 problems".to_owned()),
        "{}",
        sb.explain()
    );
}

#[test]
fn check_finds_an_offsite_remote_rclone_does_not_know() {
    assert_installed("rclone");
    let sb = fleet_sandbox();
    sb.write("rclone.conf", "");
    sb.write(
        "backupbox.toml",
        "offsite = \"nowhere:bucket\"\noffsite_prefix = \"h\"\n",
    );
    let check = sb
        .command("backup_manager", &["check"])
        .env("RCLONE_CONFIG", sb.join("rclone.conf"))
        .output()
        .unwrap();
    assert_eq!(code(&check), 1, "{}", stderr(&check));
    assert!(
        stdout(&check).contains("offsite nowhere:bucket/h: rclone has no remote nowhere:"),
        "{}",
        stdout(&check)
    );
    let known = sb
        .command("backup_manager", &["check"])
        .env("RCLONE_CONFIG", sb.join("rclone.conf"))
        .env("RCLONE_CONFIG_NOWHERE_TYPE", "local")
        .output()
        .unwrap();
    assert_eq!(stdout(&known), "check: ok\n", "{}", stderr(&known));
}

#[test]
fn status_refuses_json_and_prometheus_together() {
    let sb = fleet_sandbox();
    sb.manager(&["status", "--json", "--prometheus"])
        .fails(2)
        .stderr_contains("status takes --json or --prometheus, not both");
}

#[test]
fn run_writes_the_metrics_file_as_the_service_does() {
    let sb = fleet_sandbox();
    sb.write("backupbox.toml", "metrics = \"backupbox.prom\"\n");
    sb.manager(&["run", "pics"]).ok();
    let metrics = String::from_utf8(sb.read("backupbox.prom")).unwrap();
    assert!(
        metrics
            .contains("backupbox_last_run_success{name=\"pics\",folder=\"pics\",time=\"04:00\"} 1"),
        "{metrics}"
    );
    assert!(
        !metrics
            .lines()
            .any(|line| line.starts_with("backupbox_service_start_time_seconds ")),
        "no service runs: {metrics}"
    );
}

#[test]
fn the_base_directory_comes_from_dir_then_backupbox_dir_then_the_current_one() {
    let sb = fleet_sandbox();
    let elsewhere = tempfile::tempdir().unwrap();
    // --dir after the command, as people type it.
    let out = std::process::Command::new(sb.join("backup_manager"))
        .args(["list", "--dir"])
        .arg(sb.path())
        .current_dir(elsewhere.path())
        .output()
        .unwrap();
    assert_eq!(
        stdout(&out),
        "0: docs;03:00;docs\n1: pics;04:00;pics\n2: more-docs;05:00;docs\n",
        "{}",
        stderr(&out)
    );
    let out = std::process::Command::new(sb.join("backup_manager"))
        .arg("list")
        .env("BACKUPBOX_DIR", sb.path())
        .current_dir(elsewhere.path())
        .output()
        .unwrap();
    assert!(
        stdout(&out).starts_with("0: docs;03:00;docs\n"),
        "{}",
        stderr(&out)
    );
    assert!(
        !elsewhere.path().join("logs").exists(),
        "nothing made in the current directory"
    );
    // --dir wins over the variable.
    let out = std::process::Command::new(sb.join("backup_manager"))
        .args(["--dir"])
        .arg(elsewhere.path())
        .arg("list")
        .env("BACKUPBOX_DIR", sb.path())
        .output()
        .unwrap();
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("can't find backup_schedules.txt"),
        "{}",
        stderr(&out)
    );
}

/// `backupbox ARGS`' stdout, written to `file` in the sandbox.
fn generated(sb: &Sandbox, args: &[&str], file: &str) -> std::path::PathBuf {
    let out = std::process::Command::new(BIN).args(args).output().unwrap();
    assert!(out.status.success(), "backupbox {args:?}: {}", stderr(&out));
    let path = sb.join(file);
    fs::write(&path, &out.stdout).unwrap();
    path
}

/// What the bash completion offers for the words `line` (the last one being completed), run
/// in the sandbox with its `backup_manager` on PATH.
fn bash_completes(sb: &Sandbox, script: &std::path::Path, line: &[&str]) -> Vec<String> {
    let words: Vec<String> = line.iter().map(|word| format!("'{word}'")).collect();
    let program = format!(
        "source '{}'; COMP_WORDS=({}); COMP_CWORD={}; _backup_manager; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        script.display(),
        words.join(" "),
        line.len() - 1
    );
    let path = format!(
        "{}:{}",
        sb.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = tool("bash")
        .args(["-c", &program])
        .current_dir(sb.path())
        .env("PATH", path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out)
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_bash_completion_completes_commands_options_and_archive_names() {
    let sb = fleet_sandbox();
    let script = generated(&sb, &["completions", "bash"], "completion.bash");
    let out = tool("bash")
        .arg("-c")
        .arg(format!(
            "source '{}'; complete -p backup_manager",
            script.display()
        ))
        .output()
        .unwrap();
    assert_eq!(
        stdout(&out),
        "complete -F _backup_manager backup_manager\n",
        "{}",
        stderr(&out)
    );
    assert_eq!(
        bash_completes(&sb, &script, &["backup_manager", "ve"]),
        ["verify"]
    );
    assert_eq!(
        bash_completes(&sb, &script, &["backup_manager", "restore", ""]),
        ["docs", "pics"]
    );
    assert_eq!(
        bash_completes(&sb, &script, &["backup_manager", "restore", "--fo"]),
        ["--force"]
    );
    assert_eq!(
        bash_completes(&sb, &script, &["backup_manager", "run", "--a"]),
        ["--all"]
    );
    assert_eq!(
        bash_completes(&sb, &script, &["backup_manager", "run", "--keep", ""]),
        Vec::<String>::new(),
        "a value is not completed with names"
    );
}

#[test]
fn the_zsh_and_fish_completions_parse_and_the_man_page_renders_without_warnings() {
    let sb = fleet_sandbox();
    let zsh = generated(&sb, &["completions", "zsh"], "_backup_manager");
    let out = tool("zsh").arg("-n").arg(&zsh).output().unwrap();
    assert!(out.status.success(), "zsh -n: {}", stderr(&out));
    let fish = generated(&sb, &["completions", "fish"], "backup_manager.fish");
    let out = tool("fish")
        .arg("--no-execute")
        .arg(&fish)
        .output()
        .unwrap();
    assert!(out.status.success(), "fish --no-execute: {}", stderr(&out));
    let page = generated(&sb, &["man"], "backupbox.1");
    let out = tool("man")
        .args(["--warnings", "-l"])
        .arg(&page)
        .env("MANWIDTH", "80")
        .env("MANPAGER", "cat")
        .output()
        .unwrap();
    assert!(out.status.success(), "man -l: {}", stderr(&out));
    assert_eq!(stderr(&out), "", "man --warnings -l");
    let text = stdout(&out);
    for word in ["COMMANDS", "restore", "--as-of", "BACKUPBOX_DIR", "check"] {
        assert!(text.contains(word), "{word} missing from:\n{text}");
    }
    std::process::Command::new(BIN)
        .args(["completions", "tcsh"])
        .output()
        .map(|out| assert_eq!(code(&out), 2, "{}", stderr(&out)))
        .unwrap();
}

#[test]
fn install_sh_puts_the_completions_and_the_man_page_under_the_prefix() {
    let prefix = tempfile::tempdir().unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/install.sh");
    let out = tool("bash")
        .arg(script)
        .args(["--bin", BIN, "--prefix"])
        .arg(prefix.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    for file in [
        "share/bash-completion/completions/backup_manager",
        "share/zsh/site-functions/_backup_manager",
        "share/fish/vendor_completions.d/backup_manager.fish",
        "share/man/man1/backupbox.1",
        "share/man/man1/backup_manager.1",
    ] {
        let text = fs::read_to_string(prefix.path().join(file))
            .unwrap_or_else(|err| panic!("{file}: {err}"));
        assert!(!text.is_empty(), "{file}");
    }
}

#[test]
fn nice_and_io_class_reach_the_job_and_its_hooks() {
    let sb = fleet_sandbox();
    sb.write(
        "backupbox.toml",
        "nice = 10\nio_class = \"idle\"\nbefore = \"cut -d' ' -f19 /proc/self/stat > nice.txt; ionice -p $$ > io.txt\"\n",
    );
    sb.manager(&["run", "pics"]).ok();
    assert_eq!(String::from_utf8(sb.read("nice.txt")).unwrap().trim(), "10");
    assert_eq!(String::from_utf8(sb.read("io.txt")).unwrap().trim(), "idle");
    // The manager's own thread is not lowered: a second job at the default priority.
    sb.write(
        "backupbox.toml",
        "before = \"cut -d' ' -f19 /proc/self/stat > nice.txt; ionice -p $$ > io.txt\"\n",
    );
    sb.manager(&["run", "pics"]).ok();
    assert_eq!(String::from_utf8(sb.read("nice.txt")).unwrap().trim(), "0");
}

/// `date -d ARG +FORMAT`.
fn date(arg: &str, format: &str) -> String {
    let out = std::process::Command::new("date")
        .args(["-d", arg, &format!("+{format}")])
        .output()
        .unwrap();
    stdout(&out).trim().to_owned()
}

#[test]
fn status_and_the_metrics_show_the_next_run_on_the_days_the_settings_give() {
    let sb = fleet_sandbox();
    let weekday = date("+3 days", "%a").to_lowercase();
    sb.write(
        "backupbox.toml",
        format!("[name.pics]\ndays = [\"{weekday}\"]\n[name.docs]\nmonthdays = [31]\n"),
    );
    let status = sb.manager(&["status"]).stdout_text();
    let expected = format!("next run: {} 04:00", date("+3 days", "%Y-%m-%d"));
    assert!(status.contains(&expected), "{expected}\n{status}");
    // The 31st, or the last day of a month without one: the next last day of a month.
    let month_start = date("now", "%Y-%m-01");
    let this_month = date(&format!("{month_start} +1 month -1 day 03:00"), "%Y-%m-%d");
    let passed = date(&format!("{this_month} 03:00"), "%s")
        .parse::<i64>()
        .unwrap()
        <= date("now", "%s").parse::<i64>().unwrap();
    let docs_next = if passed {
        date(&format!("{month_start} +2 month -1 day"), "%Y-%m-%d")
    } else {
        this_month
    };
    assert!(
        status.contains(&format!("next run: {docs_next} 03:00")),
        "{docs_next}\n{status}"
    );
}

#[test]
fn a_splay_moves_the_start_by_a_stable_offset_below_it() {
    let sb = fleet_sandbox();
    sb.write("backupbox.toml", "splay = 600\n");
    let first = sb.manager(&["status"]).stdout_text();
    let again = sb.manager(&["status"]).stdout_text();
    let next_of = |status: &str, line: &str| -> String {
        let at = status
            .find(line)
            .unwrap_or_else(|| panic!("{line}: {status}"));
        let rest = &status[at..];
        let next = rest.find("next run: ").unwrap();
        rest[next + 21..next + 26].to_owned()
    };
    let pics = next_of(&first, "pics;04:00;pics");
    assert_eq!(pics, next_of(&again, "pics;04:00;pics"), "stable");
    assert!(("04:00".."04:10").contains(&pics.as_str()), "{pics}");
}

/// stdout of `backup_manager ARGS` parsed as one JSON document.
fn json_of(sb: &Sandbox, args: &[&str]) -> serde_json::Value {
    let out = sb.manager(args).stdout_text();
    serde_json::from_str(&out).unwrap_or_else(|err| panic!("{err}: {out}"))
}

#[test]
fn list_backups_verify_and_contents_speak_json_for_fleet_tools() {
    let sb = fleet_sandbox();
    sb.write(
        "backup_schedules.txt",
        "docs;03:00;docs\npics;04:00;pics\nbad;3:00;bad\n",
    );
    sb.write("backupbox.toml", "keep = 2\n");
    let list = json_of(&sb, &["list", "--json"]);
    assert_eq!(list["schedules"][0]["folder"], "docs");
    assert_eq!(list["schedules"][0]["time"], "03:00");
    assert_eq!(list["schedules"][1]["name"], "pics");
    assert_eq!(list["schedules"][2]["index"], 2);
    assert!(
        list["schedules"][2]["malformed"]
            .as_str()
            .unwrap()
            .starts_with("the time")
    );

    sb.manager(&["run", "docs"]).ok();
    sb.manager(&["run", "docs"]).ok();
    let backups = json_of(&sb, &["backups", "--json"]);
    let archives = backups["archives"].as_array().unwrap();
    assert_eq!(archives.len(), 2, "{backups}");
    let current = archives.iter().find(|a| a["file"] == "docs.tar").unwrap();
    assert_eq!(current["kept"][0], "newest");
    assert_eq!(current["level"], 0);
    assert_eq!(
        current["size"].as_u64().unwrap(),
        fs::metadata(sb.join("backups/docs.tar")).unwrap().len()
    );
    assert!(current["mtime"].as_i64().unwrap() > 0 && current["encrypted_to"].is_null());

    let verified = json_of(&sb, &["verify", "docs", "--against", "--json"]);
    assert_eq!(verified["ok"], true, "{verified}");
    assert_eq!(
        verified["verified"][0],
        "backups/docs.tar: sound, 2 members, same as docs"
    );
    sb.write("docs/a", "changed\n");
    let run = sb.manager(&["verify", "docs", "--against", "--json"]);
    run.fails(1);
    let failed: serde_json::Value = serde_json::from_str(&run.stdout_text()).unwrap();
    assert_eq!(failed["ok"], false);
    assert!(
        failed["differences"][0]
            .as_str()
            .unwrap()
            .starts_with("docs/a: "),
        "{failed}"
    );
    assert!(
        failed["error"]
            .as_str()
            .unwrap()
            .contains("differs from docs in")
    );

    let members: Vec<serde_json::Value> = sb
        .manager(&["contents", "docs", "--json"])
        .ok()
        .stdout_text()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(members.len(), 2);
    assert_eq!(members[0]["name"], "docs/");
    assert_eq!(members[0]["type"], "directory");
    assert_eq!(members[1]["type"], "file");
    assert_eq!(members[1]["size"], 2);
    assert!(members[1]["mode"].as_str().unwrap().starts_with('0'));
}

/// A manifest of docs/fleet/, parsed.
fn manifest(file: &str) -> serde_yaml::Value {
    let path = format!("{}/docs/fleet/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = fs::read_to_string(&path).unwrap_or_else(|err| panic!("{path}: {err}"));
    serde_yaml::from_str(&text).unwrap_or_else(|err| panic!("{path}: {err}"))
}

/// The pod spec's containers each mount only volumes the pod has, and name an image.
fn assert_pod_sound(pod: &serde_yaml::Value, what: &str) {
    let volumes: Vec<&str> = pod["volumes"]
        .as_sequence()
        .unwrap_or_else(|| panic!("{what}: no volumes"))
        .iter()
        .map(|volume| volume["name"].as_str().unwrap())
        .collect();
    let containers = pod["containers"].as_sequence().unwrap();
    let init = pod["initContainers"]
        .as_sequence()
        .cloned()
        .unwrap_or_default();
    for container in containers.iter().chain(init.iter()) {
        assert!(
            container["name"].is_string() && container["image"].is_string(),
            "{what}"
        );
        for mount in container["volumeMounts"].as_sequence().unwrap() {
            let name = mount["name"].as_str().unwrap();
            assert!(
                volumes.contains(&name),
                "{what}: mounts {name}, which it lacks"
            );
            assert!(
                mount["mountPath"].as_str().unwrap().starts_with('/'),
                "{what}"
            );
        }
    }
}

#[test]
fn the_kubernetes_manifests_have_their_required_fields_and_a_plan_that_checks() {
    for (file, kind, version) in [
        ("configmap.yaml", "ConfigMap", "v1"),
        ("daemonset.yaml", "DaemonSet", "apps/v1"),
        ("cronjob.yaml", "CronJob", "batch/v1"),
    ] {
        let doc = manifest(file);
        assert_eq!(doc["apiVersion"], version, "{file}");
        assert_eq!(doc["kind"], kind, "{file}");
        assert!(doc["metadata"]["name"].is_string(), "{file}");
    }
    let daemonset = manifest("daemonset.yaml");
    let template = &daemonset["spec"]["template"];
    assert_eq!(
        daemonset["spec"]["selector"]["matchLabels"], template["metadata"]["labels"],
        "the selector must match the pods"
    );
    assert_pod_sound(&template["spec"], "daemonset");
    assert_eq!(template["spec"]["containers"][0]["args"][0], "service");
    let cronjob = manifest("cronjob.yaml");
    assert_eq!(
        cronjob["spec"]["schedule"]
            .as_str()
            .unwrap()
            .split(' ')
            .count(),
        5,
        "a five-field cron schedule"
    );
    let pod = &cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"];
    assert_eq!(pod["restartPolicy"], "Never");
    assert_pod_sound(pod, "cronjob");
    let args: Vec<&str> = pod["containers"][0]["args"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|arg| arg.as_str().unwrap())
        .collect();
    assert_eq!(args, ["manager", "--dir", "/data", "run", "app", "--json"]);

    // The ConfigMap's plan and settings are ones backupbox takes.
    let configmap = manifest("configmap.yaml");
    let sb = Sandbox::new();
    sb.write(
        "backup_schedules.txt",
        configmap["data"]["backup_schedules.txt"].as_str().unwrap(),
    );
    sb.write(
        "backupbox.toml",
        configmap["data"]["backupbox.toml"].as_str().unwrap(),
    );
    let list: serde_json::Value =
        serde_json::from_str(&sb.manager(&["list", "--json"]).ok().stdout_text()).unwrap();
    let schedules = list["schedules"].as_array().unwrap();
    assert_eq!(schedules.len(), 2);
    assert!(
        schedules
            .iter()
            .all(|schedule| schedule["malformed"].is_null()),
        "{list}"
    );
    sb.manager(&["settings", "app"])
        .ok()
        .stdout_contains("splay = 1800  # file");
    // Names the plan has are what the CronJob runs.
    assert!(schedules.iter().any(|schedule| schedule["name"] == "app"));
}

#[test]
fn the_service_runs_a_schedule_only_on_its_days() {
    let sb = fleet_sandbox();
    let now = current_minute();
    sb.write(
        "backup_schedules.txt",
        format!("docs;{now};docs\npics;{now};pics\n"),
    );
    let today = date("now", "%a").to_lowercase();
    let tomorrow = date("+1 day", "%a").to_lowercase();
    sb.write(
        "backupbox.toml",
        format!("[name.docs]\ndays = [\"{today}\"]\n[name.pics]\ndays = [\"{tomorrow}\"]\n"),
    );
    let service = sb.spawn_service();
    // Both are decided in the same check of the minute: once docs is done, pics was not due.
    sb.await_service_log(30, |log| {
        log.contains(&"Backup done for docs in backups/docs.tar".to_owned())
    });
    stop_foreground(service);
    assert!(!sb.join("backups/pics.tar").exists(), "{}", sb.explain());
    assert_eq!(
        sb.service_log(),
        ["Backup done for docs in backups/docs.tar"],
        "{}",
        sb.explain()
    );
}
