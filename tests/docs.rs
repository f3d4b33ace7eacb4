//! The documentation agrees with the binary, so the two cannot drift apart.
//!
//! `withlock --help`, run for real, is the one flag table. The man page's OPTIONS and the
//! README's option table must list exactly its options, both ways; the man page names the
//! version the binary reports; and every withlock command line the README, the man page's
//! EXAMPLES and the help's examples show is accepted by the real binary (run with its LOCK
//! moved into a private directory and its command replaced by `true`).
//!
//! Elsewhere: the README's shell blocks are run whole by `ci/test-readme.sh`, the
//! completions are checked in bash, zsh and fish by `ci/test-completions.sh` (against the
//! same `--help`), and the man page is rendered without warnings by `ci/test-man.sh`.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// The binary under test: `$WITHLOCK_BIN` (make test points it at the static build), else
/// the one Cargo built.
fn bin() -> PathBuf {
    match std::env::var_os("WITHLOCK_BIN") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(env!("CARGO_BIN_EXE_withlock")),
    }
}

fn repo_file(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(name);
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn run_withlock(args: &[&str]) -> std::process::Output {
    Command::new(bin())
        .args(args)
        .env("PATH", "/usr/bin:/bin")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin().display()))
}

fn help() -> String {
    let out = run_withlock(&["--help"]);
    assert!(out.status.success(), "withlock --help failed: {:?}", out.status);
    String::from_utf8(out.stdout).expect("--help is UTF-8")
}

// ---------------------------------------------------------------------------------------------
// Reading each document's options.

/// Is `word` an option name: `-x` or `--long-name` (not a lone `-` or `--`)?
fn is_option(word: &str) -> bool {
    let name = word.strip_prefix("--").or_else(|| word.strip_prefix('-')).unwrap_or("");
    name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && (word.starts_with("--") || name.len() == 1)
}

/// One line of the help's "Options:" list: its names, and whether it takes a value.
#[derive(Debug, PartialEq)]
struct HelpOption {
    names: Vec<String>,
    takes_value: bool,
}

/// The help's options: the lines of its "Options:" section indented 2 to 6 spaces and
/// starting with `-`, up to the description (two spaces or more). A word in capitals
/// after the names (`DURATION`, `--wait=N`) means the option takes a value; an optional
/// one (`--syslog[=FACILITY]`) is given only inline, so for reading a command line the
/// option takes none.
fn help_options(help: &str) -> Vec<HelpOption> {
    let section = help.lines().skip_while(|l| l.trim_end() != "Options:").skip(1);
    let mut options = Vec::new();
    for line in section.take_while(|l| !l.trim().is_empty()) {
        let rest = line.trim_start();
        let indent = line.len() - rest.len();
        if !(2..=6).contains(&indent) || !rest.starts_with('-') {
            continue; // a description's continuation
        }
        let head = rest.split("  ").next().unwrap_or("");
        let mut names = Vec::new();
        let mut takes_value = false;
        for word in head.split([',', ' ', '/']).filter(|w| !w.is_empty()) {
            let (name, value) = match word.find(['=', '[']) {
                Some(at) => (&word[..at], Some(&word[at..])),
                None => (word, None),
            };
            if is_option(name) {
                names.push(name.to_string());
                takes_value |= value.is_some_and(|v| !v.starts_with('['));
            } else if word.chars().any(|c| c.is_ascii_uppercase()) {
                takes_value = true;
            }
        }
        assert!(!names.is_empty(), "cannot read the option line {line:?} of --help");
        options.push(HelpOption { names, takes_value });
    }
    options
}

fn names(options: &[HelpOption]) -> BTreeSet<String> {
    options.iter().flat_map(|o| o.names.iter().cloned()).collect()
}

/// roff source to plain text: escapes resolved, font changes dropped, the request name of
/// a macro line (`.BI`, `.TP`) and its quotes removed.
fn deroff(line: &str) -> String {
    let body = match line.strip_prefix('.') {
        Some(request) => request.split_once(' ').map_or("", |(_, args)| args),
        None => line,
    };
    let mut out = String::new();
    let mut chars = body.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            if !(line.starts_with('.') && c == '"') {
                out.push(c);
            }
            continue;
        }
        match chars.next() {
            Some('-') => out.push('-'),
            Some('e') => out.push('\\'),
            Some('&' | '%') => {}
            Some('f') => {
                // \fB, \fR, \f(CW, \f[B]
                match chars.next() {
                    Some('(') => {
                        chars.next();
                        chars.next();
                    }
                    Some('[') => while chars.next().is_some_and(|c| c != ']') {},
                    _ => {}
                }
            }
            Some('(') => {
                let name: String = [chars.next(), chars.next()].into_iter().flatten().collect();
                out.push_str(match name.as_str() {
                    "aq" => "'",
                    "dq" | "lq" | "rq" => "\"",
                    "em" | "en" => "-",
                    _ => "?",
                });
            }
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

/// The lines of the man page section `.SH NAME`, up to the next `.SH`.
fn man_section<'a>(man: &'a str, name: &str) -> Vec<&'a str> {
    let heading = format!(".SH {name}");
    let mut lines = man.lines().skip_while(|l| l.trim_end() != heading);
    assert!(lines.next().is_some(), "the man page has no {name} section");
    lines.take_while(|l| !l.starts_with(".SH")).collect()
}

/// The man page's options: the option words in the tag line after each `.TP` of OPTIONS.
fn man_options(man: &str) -> BTreeSet<String> {
    let section = man_section(man, "OPTIONS");
    let mut options = BTreeSet::new();
    for pair in section.windows(2) {
        if pair[0].trim_end() == ".TP" {
            let tag = deroff(pair[1]);
            for word in tag.split(|c: char| c.is_whitespace() || c == ',' || c == '"') {
                if is_option(word) {
                    options.insert(word.to_string());
                }
            }
        }
    }
    options
}

/// The README's option table: the rows whose first cell starts with an option in
/// backticks; every option that begins a backticked span in that cell.
fn readme_options(readme: &str) -> BTreeSet<String> {
    let mut options = BTreeSet::new();
    for line in readme.lines() {
        let Some(first_cell) = line.strip_prefix('|').and_then(|l| l.split('|').next()) else {
            continue;
        };
        if !first_cell.trim_start().starts_with("`-") {
            continue;
        }
        for (i, span) in first_cell.split('`').enumerate() {
            if let Some(word) = span.split([' ', '=']).next().filter(|_| i % 2 == 1)
                && is_option(word)
            {
                options.insert(word.to_string());
            }
        }
    }
    options
}

/// "in A but not in B: ...; in B but not in A: ...", or None if the sets are equal.
fn difference(a_name: &str, a: &BTreeSet<String>, b_name: &str, b: &BTreeSet<String>) -> Option<String> {
    let only_a: Vec<_> = a.difference(b).cloned().collect();
    let only_b: Vec<_> = b.difference(a).cloned().collect();
    if only_a.is_empty() && only_b.is_empty() {
        return None;
    }
    let mut message = String::new();
    if !only_a.is_empty() {
        message += &format!("\n  in {a_name} but not in {b_name}: {}", only_a.join(" "));
    }
    if !only_b.is_empty() {
        message += &format!("\n  in {b_name} but not in {a_name}: {}", only_b.join(" "));
    }
    Some(message)
}

// ---------------------------------------------------------------------------------------------
// Checking a documented command line against the real binary.

/// Split a shell command line into simple commands (at unquoted `;`, `&`, `|`, `&&`, `||`),
/// each a list of words with quotes and backslashes resolved. Enough for documentation
/// snippets: no expansions, no redirections, `#` starts a comment.
fn shell_split(line: &str) -> Vec<Vec<String>> {
    let mut commands = vec![Vec::new()];
    let mut word: Option<String> = None;
    let mut chars = line.chars();
    let end_word = |word: &mut Option<String>, commands: &mut Vec<Vec<String>>| {
        if let Some(w) = word.take() {
            commands.last_mut().expect("one command at least").push(w);
        }
    };
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\n' => end_word(&mut word, &mut commands),
            ';' | '&' | '|' => {
                end_word(&mut word, &mut commands);
                if !commands.last().expect("one command at least").is_empty() {
                    commands.push(Vec::new());
                }
            }
            '#' if word.is_none() => break,
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                w.extend(chars.by_ref().take_while(|&c| c != '\''));
            }
            '"' => {
                let w = word.get_or_insert_with(String::new);
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => w.extend(chars.next()),
                        c => w.push(c),
                    }
                }
            }
            '\\' => match chars.next() {
                Some('\n') | None => {} // a continued line
                Some(c) => word.get_or_insert_with(String::new).push(c),
            },
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    end_word(&mut word, &mut commands);
    commands.retain(|c| !c.is_empty());
    commands
}

/// Joins lines that end in a backslash with the next one.
fn logical_lines(text: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        match line.strip_suffix('\\') {
            Some(start) => current += start,
            None => {
                current += line;
                lines.push(std::mem::take(&mut current));
            }
        }
    }
    if !current.is_empty() {
        lines.push(current);
    }
    lines
}

/// A private (0700) directory for the lock files of the checks, removed on drop.
struct LockDir(PathBuf);

impl LockDir {
    fn new() -> LockDir {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "withlock-docs-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        fs::DirBuilder::new().mode(0o700).create(&path).expect("create a private lock directory");
        LockDir(path)
    }
}

impl Drop for LockDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Every withlock command in `line` (a word `withlock`, or a path or `Key=` value ending
/// in `/withlock`), run for real: its options as written, its LOCK moved into `dir`, its
/// command replaced by `true`. It must exit 0. Returns how many commands were checked.
fn check_command_line(line: &str, options: &[HelpOption], dir: &LockDir) -> Result<usize, String> {
    let known = names(options);
    let valued: BTreeSet<String> =
        options.iter().filter(|o| o.takes_value).flat_map(|o| o.names.iter().cloned()).collect();
    let mut checked = 0;
    for words in shell_split(line) {
        let Some(at) = words.iter().position(|w| w == "withlock" || w.ends_with("/withlock")) else {
            continue;
        };
        let args = &words[at + 1..];
        let mut i = 0;
        let mut info_only = false; // --help or --version: no LOCK needed
        let mut status = false; // --status: LOCKs, no COMMAND
        let mut shell = false; // -c STRING: LOCK, no COMMAND
        let mut named = false; // --name NAME: no LOCK
        while i < args.len() {
            let arg = args[i].as_str();
            if arg == "--" {
                i += 1;
                break;
            }
            if let Some(long) = arg.strip_prefix("--") {
                let name = format!("--{}", long.split('=').next().unwrap_or(""));
                if !known.contains(&name) {
                    return Err(format!("{name} is not an option of withlock --help"));
                }
                info_only |= name == "--help" || name == "--version";
                status |= name == "--status";
                shell |= name == "--command";
                named |= name == "--name";
                if valued.contains(&name) && !long.contains('=') {
                    i += 1;
                }
            } else if arg.len() > 1 && arg.starts_with('-') {
                for (j, letter) in arg.char_indices().skip(1) {
                    let name = format!("-{letter}");
                    if !known.contains(&name) {
                        return Err(format!("{name} (in {arg}) is not an option of withlock --help"));
                    }
                    info_only |= name == "-h" || name == "-V";
                    shell |= name == "-c";
                    if valued.contains(&name) {
                        if j + 1 == arg.len() {
                            i += 1; // the value is the next word
                        }
                        break;
                    }
                }
            } else {
                break;
            }
            i += 1;
        }
        let mut run: Vec<String> = args[..i.min(args.len())].to_vec();
        // A random sleep of up to minutes is not what a check should wait for.
        replace_jitter(&mut run);
        // An etcd address: no server here, so point it at a closed port on
        // loopback. The options must still be accepted: 69 (etcd cannot be
        // reached) says the command line was understood; 64 would not.
        let etcd = args.get(i).is_some_and(|lock| lock.starts_with("etcd://"));
        if shell {
            // The snippet is the command: replace it by `true`, as commands are.
            replace_shell_snippet(&mut run, &valued);
        }
        // With --name the lock is the check's own name, so runs never collide.
        let unique = format!("withlock-docs-{}-{checked}", std::process::id());
        if named {
            replace_name(&mut run, &unique);
        }
        if named {
            if !status && !shell {
                if i >= args.len() {
                    return Err(format!("no COMMAND after --name NAME in {words:?}"));
                }
                run.push("true".to_string());
            }
        } else if shell && i < args.len() {
            run.push(dir.0.join(format!("check-{checked}.lock")).display().to_string());
        } else if etcd {
            run.push("etcd://127.0.0.1:1/withlock-docs-check".to_string());
            if !status && !shell {
                run.push("true".to_string());
            }
        } else if status && i < args.len() {
            // A lock that does not exist: free, so --status exits 0.
            run.push(dir.0.join(format!("check-{checked}.lock")).display().to_string());
        } else if i + 1 < args.len() {
            run.push(dir.0.join(format!("check-{checked}.lock")).display().to_string());
            run.push("true".to_string());
        } else if !info_only {
            return Err(format!(
                "no LOCK and COMMAND after the options in {words:?} (a mode without a COMMAND? \
                 teach tests/docs.rs about it)"
            ));
        }
        let out = run_withlock(&run.iter().map(String::as_str).collect::<Vec<_>>());
        if named {
            remove_named_lock(&unique);
        }
        let unreachable_etcd = etcd && out.status.code() == Some(69);
        if !out.status.success() && !unreachable_etcd {
            return Err(format!(
                "withlock {} (from {:?}) exited with {:?}: {}",
                run.join(" "),
                words.join(" "),
                out.status.code(),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        checked += 1;
    }
    Ok(checked)
}

/// In the option words `run`, make the value of `--jitter` 0.
fn replace_jitter(run: &mut [String]) {
    let mut k = 0;
    while k < run.len() {
        if run[k] == "--jitter" && k + 1 < run.len() {
            run[k + 1] = "0".to_string();
            k += 1;
        } else if run[k].starts_with("--jitter=") {
            run[k] = "--jitter=0".to_string();
        }
        k += 1;
    }
}

/// In the option words `run`, make the value of `--name` `unique`.
fn replace_name(run: &mut [String], unique: &str) {
    let mut k = 0;
    while k < run.len() {
        if run[k] == "--name" && k + 1 < run.len() {
            run[k + 1] = unique.to_string();
            k += 1;
        } else if run[k].starts_with("--name=") {
            run[k] = format!("--name={unique}");
        }
        k += 1;
    }
}

/// Remove the lock file a check made with `--name unique`, wherever withlock put it.
fn remove_named_lock(unique: &str) {
    // SAFETY: geteuid(2) cannot fail and has no arguments.
    let uid = unsafe { libc::geteuid() };
    let mut dirs = vec![PathBuf::from("/run/withlock"), PathBuf::from(format!("/tmp/withlock-{uid}"))];
    if let Some(runtime) = std::env::var_os("XDG_RUNTIME_DIR") {
        dirs.push(PathBuf::from(runtime).join("withlock"));
    }
    for dir in dirs {
        let _ = std::fs::remove_file(dir.join(unique));
    }
}

/// In the option words `run`, make the value of `-c`/`--command` `true`.
fn replace_shell_snippet(run: &mut [String], valued: &BTreeSet<String>) {
    let mut k = 0;
    while k < run.len() {
        let word = run[k].clone();
        if word == "--command" && k + 1 < run.len() {
            run[k + 1] = "true".to_string();
            k += 1;
        } else if word.starts_with("--command=") {
            run[k] = "--command=true".to_string();
        } else if word.len() > 1 && word.starts_with('-') && !word.starts_with("--") {
            // The first letter of a bundle that takes a value takes the rest.
            if let Some((j, letter)) =
                word.char_indices().skip(1).find(|(_, l)| valued.contains(&format!("-{l}")))
            {
                if letter == 'c' {
                    if j + 1 == word.len() {
                        if k + 1 < run.len() {
                            run[k + 1] = "true".to_string();
                        }
                        k += 1;
                    } else {
                        run[k] = format!("{}true", &word[..=j]);
                    }
                } else if j + 1 == word.len() {
                    k += 1; // the next word is another option's value
                }
            }
        }
        k += 1;
    }
}

/// Checks every line, and collects the failures with where they come from.
fn check_all(lines: &[(String, String)], options: &[HelpOption]) -> (usize, Vec<String>) {
    let dir = LockDir::new();
    let mut checked = 0;
    let mut failures = Vec::new();
    for (place, line) in lines {
        match check_command_line(line, options, &dir) {
            Ok(n) => checked += n,
            Err(e) => failures.push(format!("{place}: {line}\n    {e}")),
        }
    }
    (checked, failures)
}

/// Fenced code blocks of a Markdown text: (info string, first line number, body).
fn fenced_blocks(markdown: &str) -> Vec<(String, usize, String)> {
    let mut blocks = Vec::new();
    let mut open: Option<(String, usize, String)> = None;
    for (n, line) in markdown.lines().enumerate() {
        match (&mut open, line.strip_prefix("```")) {
            (None, Some(info)) => open = Some((info.trim().to_string(), n + 2, String::new())),
            (Some(_), Some(_)) => blocks.extend(open.take()),
            (Some((_, _, body)), None) => {
                body.push_str(line);
                body.push('\n');
            }
            (None, None) => {}
        }
    }
    blocks
}

// ---------------------------------------------------------------------------------------------
// The tests.

#[test]
fn help_lists_options_the_readers_can_see() {
    let options = help_options(&help());
    let all = names(&options);
    for must in ["-w", "--wait", "-q", "--quiet", "-h", "--help", "-V", "--version"] {
        assert!(all.contains(must), "help_options found no {must} in --help: {all:?}");
    }
    let wait = options.iter().find(|o| o.names.iter().any(|n| n == "--wait")).expect("--wait");
    assert!(wait.takes_value, "--wait takes a DURATION");
    let quiet = options.iter().find(|o| o.names.iter().any(|n| n == "--quiet")).expect("--quiet");
    assert!(!quiet.takes_value, "--quiet takes no value");
}

#[test]
fn man_page_lists_exactly_the_options_of_help() {
    let help = names(&help_options(&help()));
    let man = man_options(&repo_file("man/withlock.1"));
    if let Some(diff) = difference("withlock --help", &help, "man/withlock.1 (OPTIONS)", &man) {
        panic!("the man page and --help disagree:{diff}");
    }
}

#[test]
fn readme_lists_exactly_the_options_of_help() {
    let help = names(&help_options(&help()));
    let readme = readme_options(&repo_file("README.md"));
    if let Some(diff) = difference("withlock --help", &help, "README.md (option table)", &readme) {
        panic!("the README's option table and --help disagree:{diff}");
    }
}

#[test]
fn man_page_names_the_version_the_binary_reports() {
    let out = run_withlock(&["--version"]);
    let version = String::from_utf8(out.stdout).expect("UTF-8");
    assert_eq!(version.trim(), format!("withlock {}", env!("CARGO_PKG_VERSION")));
    let man = repo_file("man/withlock.1");
    let th = man.lines().find(|l| l.starts_with(".TH ")).expect("a .TH line");
    assert!(th.contains(&format!("\"{}\"", version.trim())), "{th:?} does not name {:?}", version.trim());
    for line in man.lines() {
        let text = deroff(line);
        if let Some(at) = text.find("withlock ")
            && text[at + 9..].starts_with(|c: char| c.is_ascii_digit())
        {
            assert!(text.contains(version.trim()), "the man page names another version: {line:?}");
        }
    }
}

#[test]
fn readme_command_lines_are_accepted() {
    let readme = repo_file("README.md");
    let mut lines = Vec::new();
    // Every fenced block (crontab lines, systemd units, shell), but the synopsis and
    // sample output (```text).
    for (info, first, body) in fenced_blocks(&readme) {
        if info == "text" {
            continue;
        }
        for line in logical_lines(&body) {
            if !line.contains("[OPTIONS]") {
                lines.push((format!("README.md block at line {first} ({info})"), line));
            }
        }
    }
    // Inline code that is a withlock command line, as in the migration notes.
    for (n, text) in readme.lines().enumerate() {
        for span in text.split('`').skip(1).step_by(2) {
            if span.starts_with("withlock ") && !span.contains("[OPTIONS]") {
                lines.push((format!("README.md line {}", n + 1), span.to_string()));
            }
        }
    }
    let (checked, failures) = check_all(&lines, &help_options(&help()));
    assert!(failures.is_empty(), "README command lines withlock refuses:\n{}", failures.join("\n"));
    assert!(checked >= 10, "only {checked} withlock command lines found in the README");
}

#[test]
fn man_page_examples_are_accepted() {
    let man = repo_file("man/withlock.1");
    let section = man_section(&man, "EXAMPLES");
    let mut text = String::new();
    let mut in_example = false;
    for line in section {
        match line.trim_end() {
            ".EX" => in_example = true,
            ".EE" => in_example = false,
            _ if in_example => {
                text += &deroff(line);
                text.push('\n');
            }
            _ => {}
        }
    }
    let lines: Vec<_> =
        logical_lines(&text).into_iter().map(|l| ("man/withlock.1 EXAMPLES".to_string(), l)).collect();
    let (checked, failures) = check_all(&lines, &help_options(&help()));
    assert!(failures.is_empty(), "man page examples withlock refuses:\n{}", failures.join("\n"));
    assert!(checked >= 4, "only {checked} withlock command lines found in the man page's EXAMPLES");
}

#[test]
fn help_examples_are_accepted() {
    let help = help();
    let examples = help.lines().skip_while(|l| l.trim_end() != "Examples:").skip(1);
    let lines: Vec<_> = examples
        .take_while(|l| !l.trim().is_empty())
        .map(|l| ("withlock --help".to_string(), l.to_string()))
        .collect();
    let (checked, failures) = check_all(&lines, &help_options(&help));
    assert!(failures.is_empty(), "--help examples withlock refuses:\n{}", failures.join("\n"));
    assert!(checked >= 1, "no examples found in --help");
}

// The checks above must be able to fail: their parts, on inputs that should not pass.

#[test]
fn the_checks_catch_what_they_should() {
    let options = help_options(&help());
    let dir = LockDir::new();
    let check = |line: &str| check_command_line(line, &options, &dir);
    assert_eq!(check("*/5 * * * * withlock -q -w 5m /run/lock/x.lock job --flag"), Ok(1));
    assert_eq!(check("ExecStart=/usr/local/bin/withlock -qw5 /run/x.lock \\\n job"), Ok(1));
    assert_eq!(check("withlock L a && withlock -E 3 L b; echo done"), Ok(2));
    assert_eq!(check("withlock --version"), Ok(1));
    assert!(check("withlock --no-such-option L job").is_err());
    assert!(check("withlock -qx L job").is_err());
    assert!(check("withlock -w soon L job").unwrap_err().contains("exited with Some(64)"));
    assert!(check("withlock -q L").is_err(), "no COMMAND");
    // An optional value is inline only: after `--syslog` comes LOCK.
    assert_eq!(check("withlock -q --syslog L job && withlock --syslog=daemon L job"), Ok(2));
    assert!(check("withlock --syslog=nosuch L job").unwrap_err().contains("exited with Some(64)"));
    let mut words: Vec<String> = ["-q", "--jitter", "5m", "--jitter=1h", "-w", "5"].map(String::from).into();
    replace_jitter(&mut words);
    assert_eq!(words, ["-q", "--jitter", "0", "--jitter=0", "-w", "5"]);

    let man = ".SH OPTIONS\n.TP\n.BI \\-w \" N\\fR, \" \"\\fB\\-\\-wait\\fR \" N\n.TP\n.B \\-\\-insecure\nText \\-x.\n.SH NEXT\n.TP\n.B \\-z\n";
    assert_eq!(man_options(man), ["--insecure", "--wait", "-w"].map(String::from).into());
    let readme = "| option | meaning |\n|---|---|\n| `-q`, `--quiet` | x |\n| `--kill-after DURATION` | `-z` |\n| 75 | `-y` |\n";
    assert_eq!(readme_options(readme), ["--kill-after", "--quiet", "-q"].map(String::from).into());
    let help = "Options:\n  -w, --wait DURATION   wait\n                        -x continued\n      --json            json\n  -E N                  code\n      --log[=F]         log\n\nOther:\n  -y\n";
    assert_eq!(
        help_options(help),
        vec![
            HelpOption { names: vec!["-w".into(), "--wait".into()], takes_value: true },
            HelpOption { names: vec!["--json".into()], takes_value: false },
            HelpOption { names: vec!["-E".into()], takes_value: true },
            HelpOption { names: vec!["--log".into()], takes_value: false },
        ]
    );
    let a: BTreeSet<String> = ["-a", "-b"].map(String::from).into();
    let b: BTreeSet<String> = ["-b", "-c"].map(String::from).into();
    assert_eq!(difference("A", &a, "B", &b).unwrap(), "\n  in A but not in B: -a\n  in B but not in A: -c");
}
