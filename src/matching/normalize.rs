//! Turns a tool's exact argv into the view rules match against: positional words and flags with
//! canonical names, wherever the flags stood and however their values were attached.
//!
//! The original argv is never changed or re-split; this view exists only for matching. The
//! normaliser is total (every word lands somewhere) and marks what it could not read with
//! certainty, so that `decision` can refuse to let such an invocation match an `allow` rule:
//! - a word that is not UTF-8 is matched in its lossy form but taints the invocation;
//! - before the operation words are complete, a flag the CLI's top-level parser does not know, or
//!   a short-option cluster, may be read differently by the CLI's subcommand search and by its
//!   flag parser, so the operation itself is in doubt; the invocation is marked ambiguous.
//!
//! For git, configuration settings before the command word (`-c key=value`,
//! `--config-env=key=VAR`) are read, not refused: each is recorded with its class
//! (`git_config`), and rules decide what each class may do.

use std::ffi::OsString;

use crate::tools::{ConfigSyntax, Syntax, ToolSpec};

/// One flag occurrence. `value` is `None` for a flag given without one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flag {
    pub name: String,
    pub value: Option<String>,
    /// Where the value is in argv: the word's index (in argv without argv[0]) and the byte offset
    /// of the value in it (`--filename=x`: after the `=`). Lets guardsh replace a file argument
    /// with its snapshot and nothing else (`snapshot`).
    pub at: Option<(usize, usize)>,
}

/// The matching view of one invocation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NormalizedArgv {
    /// Positional words in order; the first `verb_depth` have verb aliases resolved.
    pub positionals: Vec<String>,
    /// For each positional word, its index in argv (without argv[0]). Readings
    /// (`equivalents`) rebuild their words, and leave this empty.
    pub positional_at: Vec<usize>,
    /// Indices into `positionals` of words that may instead be an unknown flag's value (the word
    /// after `--unknown` past the command word). Rules see both readings: see `matching`.
    pub maybe_values: Vec<usize>,
    pub flags: Vec<Flag>,
    /// Some word was not valid UTF-8.
    pub non_utf8: bool,
    /// Why the verb could not be read with certainty, if it could not.
    pub ambiguity: Option<String>,
    /// For tools whose SQL guardsh reads: what that SQL does (set by the pipeline).
    pub sql: Option<crate::sql::SqlClass>,
    /// Configuration settings given on the command line (git's `-c`), in order, classified.
    pub config: Vec<crate::git_config::ConfigSetting>,
    /// Other commands this one also is, each decided on its own; the strictest verdict wins
    /// (`decision::decide`). One per resource of a comma list or `TYPE/NAME` list, the resource
    /// an API path names (`matching::resources`), and one per object of a manifest the command
    /// reads (`manifest`). Readings never have readings of their own.
    pub equivalents: Vec<NormalizedArgv>,
}

impl NormalizedArgv {
    /// All values given for `name` (a canonical flag name); `None` entries are value-less uses.
    pub fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = Option<&'a str>> + 'a {
        self.flags.iter().filter(move |f| f.name == name).map(|f| f.value.as_deref())
    }

    /// True when an `allow` rule must not be trusted to describe what the real tool will do.
    pub fn is_uncertain(&self) -> bool {
        self.non_utf8 || self.ambiguity.is_some()
    }
}

/// Normalises `args` (argv without argv[0]) using what guardsh knows about the tool.
pub fn normalize(args: &[OsString], spec: &ToolSpec) -> NormalizedArgv {
    let mut out = NormalizedArgv::default();
    let words: Vec<String> = args
        .iter()
        .map(|a| match a.to_str() {
            Some(s) => s.to_string(),
            None => {
                out.non_utf8 = true;
                a.to_string_lossy().into_owned()
            }
        })
        .collect();

    let mut i = 0;
    let mut options_ended = false;
    while i < words.len() {
        let word = &words[i];
        i += 1;
        if options_ended || word == "-" || !word.starts_with('-') {
            push_positional(&mut out, spec, word, i - 1);
        } else if word == "--" {
            options_ended = true;
        } else if spec.config == Some(ConfigSyntax::Git)
            && !verb_done(&out, spec)
            && let Some(used) = git_config_option(&mut out, word, words.get(i))
        {
            i += used;
        } else if out.positionals.is_empty()
            && let Some((_, verb)) = spec.verb_flags.iter().find(|(flag, _)| flag == word)
        {
            // `git --version` is `git version`, whatever follows; the option stays visible too.
            let verb = verb.clone();
            let at = i - 1;
            i += long_flag(&mut out, spec, word, words.get(i), at);
            push_positional(&mut out, spec, &verb, at);
        } else if word.starts_with("--") || spec.syntax == Syntax::Go {
            i += long_flag(&mut out, spec, word, words.get(i), i - 1);
        } else {
            i += short_cluster(&mut out, spec, word, words.get(i), i - 1);
        }
    }
    let verb_len = spec.verb_len(&out.positionals);
    out.equivalents = super::resources::readings(&mut out, &spec.resources, verb_len);
    out
}

/// git's own configuration options before the command word, read as git's `handle_options` does:
/// `-c key=value` (the first `=` ends the key; `-c key` alone is true) and `--config-env=key=VAR`
/// (the last `=` ends the key; the value comes from the environment, so it is unknown here).
/// Returns how many following words were used, or `None` for any other word.
fn git_config_option(out: &mut NormalizedArgv, word: &str, next: Option<&String>) -> Option<usize> {
    let (setting, used, from_env) = match word {
        "-c" => (next, 1, false),
        "--config-env" => (next, 1, true),
        _ => match word.strip_prefix("--config-env=") {
            Some(rest) => return Some(config_env(out, rest)),
            None => return None,
        },
    };
    let Some(setting) = setting else {
        mark_uncertain(out, || format!("{word} at the end of the command line has no setting"));
        return Some(0);
    };
    if from_env {
        config_env(out, setting);
    } else {
        let (key, value) = setting.split_once('=').unwrap_or((setting.as_str(), "true"));
        out.config.push(crate::git_config::classify(key, Some(value)));
    }
    Some(used)
}

fn config_env(out: &mut NormalizedArgv, setting: &str) -> usize {
    match setting.rsplit_once('=') {
        Some((key, _var)) if !key.is_empty() => out.config.push(crate::git_config::classify(key, None)),
        _ => mark_uncertain(out, || format!("--config-env={setting} does not name key=VARIABLE")),
    }
    0
}

impl NormalizedArgv {
    /// This reading and every equivalent one.
    pub fn all_readings(&self) -> impl Iterator<Item = &NormalizedArgv> {
        std::iter::once(self).chain(self.equivalents.iter())
    }
}

fn push_positional(out: &mut NormalizedArgv, spec: &ToolSpec, word: &str, at: usize) {
    out.positional_at.push(at);
    let word = if out.positionals.len() < spec.verb_depth {
        spec.aliases.get(&word.to_lowercase()).map_or_else(|| word.to_string(), str::to_string)
    } else {
        word.to_string()
    };
    out.positionals.push(word);
}

/// Has the operation (`get`, `s3 rb`, `config view`) been read completely?
fn verb_done(out: &NormalizedArgv, spec: &ToolSpec) -> bool {
    out.positionals.len() >= spec.verb_len(&out.positionals)
}

fn mark_uncertain(out: &mut NormalizedArgv, why: impl FnOnce() -> String) {
    out.ambiguity.get_or_insert_with(why);
}

/// Handles `--name`, `--name=value`, and for Go syntax `-name` too. Returns how many following
/// words it consumed.
fn long_flag(out: &mut NormalizedArgv, spec: &ToolSpec, word: &str, next: Option<&String>, here: usize) -> usize {
    let (written, inline) = match word.split_once('=') {
        Some((n, v)) => (n, Some(v.to_string())),
        None => (word, None),
    };
    // Go's flag package treats one and two leading dashes the same; tool files use one.
    let lookup_name = match spec.syntax {
        Syntax::Go => format!("-{}", written.trim_start_matches('-')),
        Syntax::Gnu => written.to_string(),
    };
    let known = match spec.lookup(&lookup_name) {
        Ok(known) => known,
        Err(candidates) => {
            mark_uncertain(out, || {
                format!("{written} is an abbreviation of several options: {}", candidates.join(", "))
            });
            None
        }
    };
    let name = known.as_ref().map_or(lookup_name, |k| k.canonical.to_string());
    // `--name=value` never takes the next word, whatever parser reads it.
    if inline.is_some() {
        out.flags.push(Flag { name, value: inline, at: Some((here, written.len() + 1)) });
        return 0;
    }
    // A runnable command with subcommands that takes this flag reads it as its own.
    let own = if verb_done(out, spec) { None } else { spec.command_flag(&out.positionals, written) };
    if let Some(takes_value) = own {
        return own_flag(out, name, takes_value, next, here);
    }
    if !verb_done(out, spec) && !known.as_ref().is_some_and(|k| spec.global.contains(k.canonical)) {
        // While looking for the subcommand, a CLI only knows its top-level options: cobra lets any
        // other `--flag` swallow the next word, argparse leaves it alone, and the subcommand's own
        // parser may then read it the other way. Either reading could name the operation.
        mark_uncertain(out, || {
            format!(
                "{written} before the command word is not a top-level option (write it after the command, or as {written}=VALUE)"
            )
        });
        out.flags.push(Flag { name, value: None, at: None });
        return 0;
    }
    match known {
        Some(k) if k.takes_value => {
            out.flags.push(Flag { name, value: next.cloned(), at: next.map(|_| (here + 1, 0)) });
            usize::from(next.is_some())
        }
        // A boolean, or an unknown flag under Go's flag package (which rejects unknown flags, so
        // the real tool will not run anything).
        Some(_) => {
            out.flags.push(Flag { name, value: None, at: None });
            0
        }
        None if spec.syntax == Syntax::Go => {
            out.flags.push(Flag { name, value: None, at: None });
            0
        }
        None => unknown_flag(out, spec, name, next, here),
    }
}

/// A flag the command read so far declares (`ToolSpec::command_flag`), with its value when it
/// takes one. Returns how many following words it consumed.
fn own_flag(out: &mut NormalizedArgv, name: String, takes_value: bool, next: Option<&String>, here: usize) -> usize {
    match next.filter(|_| takes_value) {
        Some(value) => {
            out.flags.push(Flag { name, value: Some(value.clone()), at: Some((here + 1, 0)) });
            1
        }
        None => {
            out.flags.push(Flag { name, value: None, at: None });
            0
        }
    }
}

/// An unknown flag after the operation, followed by a word: the word may or may not be its value.
/// Both readings are kept: the flag gets the word as its value and the word is also a positional,
/// so a deny rule that looks for it finds it either way.
fn unknown_flag(out: &mut NormalizedArgv, spec: &ToolSpec, name: String, next: Option<&String>, here: usize) -> usize {
    let Some(next) = next.filter(|n| !n.starts_with('-')) else {
        out.flags.push(Flag { name, value: None, at: None });
        return 0;
    };
    out.flags.push(Flag { name, value: Some(next.clone()), at: Some((here + 1, 0)) });
    out.maybe_values.push(out.positionals.len());
    push_positional(out, spec, next, here + 1);
    1
}

/// Before the operation is complete, is this short-option word read the same way by the
/// subcommand search and by the flag parser? cobra's search lets only a two-character `-x` that is
/// not a top-level boolean swallow the next word, and never a longer cluster, while pflag and
/// getopt give a cluster-final value option the next word (`-Rn delete get`: cobra runs `delete`).
fn cluster_is_certain(spec: &ToolSpec, body: &str) -> bool {
    for (offset, c) in body.char_indices() {
        let Some(k) = spec.lookup(&format!("-{c}")).ok().flatten() else { return false };
        if !spec.global.contains(k.canonical) {
            return false;
        }
        if k.takes_value {
            let rest = &body[offset + c.len_utf8()..];
            // `-nprod`, `-n=prod`: the value is attached. `-n prod`: both take the next word.
            return !rest.is_empty() || offset == 0;
        }
    }
    true
}

/// Handles a GNU short-option word such as `-n`, `-nprod`, `-n=prod` or `-it`. Returns how many
/// following words it consumed.
fn short_cluster(out: &mut NormalizedArgv, spec: &ToolSpec, word: &str, next: Option<&String>, here: usize) -> usize {
    let body = &word[1..];
    // `kubectl create -f x.yaml`: one short flag that the runnable command so far takes.
    if !verb_done(out, spec)
        && body.chars().count() == 1
        && let Some(takes_value) = spec.command_flag(&out.positionals, word)
    {
        let name = spec.lookup(word).ok().flatten().map_or(word.to_string(), |k| k.canonical.to_string());
        return own_flag(out, name, takes_value, next, here);
    }
    if !verb_done(out, spec) && !cluster_is_certain(spec, body) {
        mark_uncertain(out, || {
            format!(
                "{word} before the command word is not read the same way by every parser (write it after the command)"
            )
        });
        for c in body.chars() {
            let name = format!("-{c}");
            let name = spec.lookup(&name).ok().flatten().map_or(name, |k| k.canonical.to_string());
            out.flags.push(Flag { name, value: None, at: None });
        }
        return 0;
    }
    for (offset, c) in body.char_indices() {
        let name = format!("-{c}");
        let rest = &body[offset + c.len_utf8()..];
        match spec.lookup(&name).ok().flatten() {
            Some(k) if k.takes_value => {
                if rest.is_empty() {
                    out.flags.push(Flag {
                        name: k.canonical.to_string(),
                        value: next.cloned(),
                        at: next.map(|_| (here + 1, 0)),
                    });
                    return usize::from(next.is_some());
                }
                // pflag reads `-n=prod` as `prod`; getopt would keep the '='. Matching the
                // pflag reading is the useful one for rules.
                let value = rest.strip_prefix('=').unwrap_or(rest).to_string();
                // `-` and the option letter, then the value, after an `=` if there is one.
                let start = 1 + offset + c.len_utf8() + usize::from(rest.starts_with('='));
                out.flags.push(Flag { name: k.canonical.to_string(), value: Some(value), at: Some((here, start)) });
                return 0;
            }
            Some(k) => out.flags.push(Flag { name: k.canonical.to_string(), value: None, at: None }),
            None if rest.is_empty() => return unknown_flag(out, spec, name, next, here),
            None => out.flags.push(Flag { name, value: None, at: None }),
        }
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::RawToolSpec;

    fn spec(tool: &str) -> ToolSpec {
        let text = crate::tools::builtin(tool).expect("shipped tool");
        RawToolSpec::parse(text).expect("parses").build().expect("builds")
    }

    fn norm(tool: &str, line: &str) -> NormalizedArgv {
        let args: Vec<OsString> = line.split_whitespace().map(OsString::from).collect();
        normalize(&args, &spec(tool))
    }

    fn flags(n: &NormalizedArgv) -> Vec<String> {
        n.flags
            .iter()
            .map(|f| match &f.value {
                Some(v) => format!("{}={v}", f.name),
                None => f.name.clone(),
            })
            .collect()
    }

    /// tool, argv, expected positionals, expected flags, uncertain?
    type Case = (&'static str, &'static str, &'static [&'static str], &'static [&'static str], bool);

    /// One scenario per line.
    #[test]
    fn git_configuration_options_are_recorded_with_their_class() {
        use crate::git_config::ConfigClass;
        let n = norm("git", "-c core.hooksPath=/dev/null -c core.pager=less -c x --config-env=a.b=V status");
        let got: Vec<(&str, Option<&str>, ConfigClass)> =
            n.config.iter().map(|c| (c.key.as_str(), c.value.as_deref(), c.class)).collect();
        assert_eq!(
            got,
            [
                ("core.hooksPath", Some("/dev/null"), ConfigClass::Safe),
                ("core.pager", Some("less"), ConfigClass::Command),
                ("x", Some("true"), ConfigClass::Unknown),
                ("a.b", None, ConfigClass::Unknown),
            ]
        );
        // Other tools' `-c` is theirs.
        assert!(norm("psql", "-c select").config.is_empty());
    }

    #[test]
    fn table() {
        let cases: &[Case] = &[
            ("kubectl", "-n prod delete ns x", &["delete", "namespaces", "x"], &["--namespace=prod"], false),
            ("kubectl", "delete ns x -n prod", &["delete", "namespaces", "x"], &["--namespace=prod"], false),
            ("kubectl", "--namespace=prod delete ns x", &["delete", "namespaces", "x"], &["--namespace=prod"], false),
            ("kubectl", "--namespace prod delete ns x", &["delete", "namespaces", "x"], &["--namespace=prod"], false),
            ("kubectl", "-nprod delete ns x", &["delete", "namespaces", "x"], &["--namespace=prod"], false),
            ("kubectl", "-n=prod delete ns x", &["delete", "namespaces", "x"], &["--namespace=prod"], false),
            ("kubectl", "exec -it pod -- rm -rf /", &["exec", "pod", "rm", "-rf", "/"], &["--stdin", "--tty"], false),
            ("kubectl", "delete pod x --dry-run=client", &["delete", "pods", "x"], &["--dry-run=client"], false),
            // pflag does not give an optional-value flag the next word.
            ("kubectl", "delete --dry-run pod x", &["delete", "pods", "x"], &["--dry-run"], false),
            ("kubectl", "get pods -o wide", &["get", "pods"], &["--output=wide"], false),
            // Unknown flag before the verb: could be `--bogus=get`, so the reading is uncertain.
            ("kubectl", "--bogus get delete pod", &["get", "delete", "pod"], &["--bogus"], true),
            // Unknown flag after the verb: the word is kept both ways.
            ("kubectl", "delete --bogus ns x", &["delete", "namespaces", "x"], &["--bogus=ns"], false),
            ("kubectl", "delete ns x --", &["delete", "namespaces", "x"], &[], false),
            ("kubectl", "get -- -n", &["get", "-n"], &[], false),
            ("aws", "s3 rb s3://b --force", &["s3", "rb", "s3://b"], &["--force"], false),
            ("aws", "--profile prod s3 ls", &["s3", "ls"], &["--profile=prod"], false),
            // argparse abbreviations: --del is --delete, --pro is --profile.
            ("aws", "s3 sync . s3://b --del", &["s3", "sync", ".", "s3://b"], &["--delete"], false),
            ("aws", "--pro prod s3 ls", &["s3", "ls"], &["--profile=prod"], false),
            ("aws", "s3api delete-bucket --bucket b", &["s3api", "delete-bucket", "b"], &["--bucket=b"], false),
            ("terraform", "apply -auto-approve", &["apply"], &["-auto-approve"], false),
            ("terraform", "apply --auto-approve", &["apply"], &["-auto-approve"], false),
            (
                "terraform",
                "-chdir=infra destroy -target aws_db.x",
                &["destroy"],
                &["-chdir=infra", "-target=aws_db.x"],
                false,
            ),
            // Go bool flags never take the next word.
            ("terraform", "apply -destroy false", &["apply", "false"], &["-destroy"], false),
            ("railway", "volume rm -v data", &["volume", "delete"], &["--volume=data"], false),
            ("railway", "VOLUME RM", &["VOLUME", "delete"], &[], false),
            ("psql", "-c select -d app", &[], &["--command=select", "--dbname=app"], false),
            ("psql", "-Atc select app", &["app"], &["--no-align", "--tuples-only", "--command=select"], false),
            ("psql", "--comm=drop app", &["app"], &["--command=drop"], false),
            // Before the command word only top-level options are certain (cobra's subcommand
            // search and pflag disagree about everything else). Each of these ran a destructive
            // command while guardsh saw a read.
            (
                "kubectl",
                "-Rn delete get ns prod",
                &["delete", "get", "ns", "prod"],
                &["--recursive", "--namespace"],
                true,
            ),
            ("kubectl", "-q get run --image=alpine", &["get", "run"], &["--quiet", "--image=alpine"], true),
            (
                "kubectl",
                "--prefix get set env deploy/api X=1",
                &["get", "set", "env", "deploy/api", "X=1"],
                &["--prefix"],
                true,
            ),
            ("kubectl", "-it exec pod", &["exec", "pod"], &["--stdin", "--tty"], true),
            ("aws", "--exclude s3 rm get-x s3://prod/", &["s3", "rm", "get-x", "s3://prod/"], &["--exclude"], true),
            // git's own configuration options before the command word are read (see `git_config`
            // below), not refused; after it `-c` is the subcommand's (`switch -c`).
            ("git", "-c core.hooksPath=/dev/null -C dir status", &["status"], &["-C=dir"], false),
            ("git", "--config-env=core.pager=P log", &["log"], &[], false),
            ("git", "switch -c feature", &["switch", "feature"], &["-c=feature"], false),
            ("git", "-c", &[], &[], true),
            ("git", "--config-env=nokey log", &["log"], &[], true),
            // `git --version ...` is `git version ...`.
            ("git", "--version push", &["version", "push"], &["--version"], false),
            ("git", "status --version", &["status"], &["--version"], false),
            // Top-level options before the command word are read exactly.
            ("kubectl", "-v 9 get pods", &["get", "pods"], &["--v=9"], false),
            ("kubectl", "-v9 get pods", &["get", "pods"], &["--v=9"], false),
            (
                "kubectl",
                "--context=prod -n kube-system get pods",
                &["get", "pods"],
                &["--context=prod", "--namespace=kube-system"],
                false,
            ),
            ("kubectl", "--bogus=x get pods", &["get", "pods"], &["--bogus=x"], false),
            // Verbs with subcommands take two words: `--password` (a top-level option) takes
            // `view`, and the operation is `config set-cluster`.
            (
                "kubectl",
                "config --password view set-cluster prod",
                &["config", "set-cluster", "prod"],
                &["--password=view"],
                false,
            ),
            ("kubectl", "config -o json view", &["config", "json", "view"], &["--output"], true),
            ("terraform", "env delete staging", &["workspace", "delete", "staging"], &[], false),
            ("terraform", "plan -out plan.bin", &["plan"], &["-out=plan.bin"], false),
            // Resource arguments in canonical form (the per-resource readings: `resources`).
            ("kubectl", "get secrets.v1. -o yaml", &["get", "secrets"], &["--output=yaml"], false),
            ("kubectl", "get Pod,SECRET.v1", &["get", "pods,secrets"], &[], false),
            ("kubectl", "delete po/a ns/prod", &["delete", "pods/a", "namespaces/prod"], &[], false),
            ("kubectl", "rollout undo deploy/api", &["rollout", "undo", "deployments/api"], &[], false),
        ];
        for (tool, line, pos, fl, uncertain) in cases {
            let n = norm(tool, line);
            assert_eq!(n.positionals, *pos, "{tool} {line}: positionals");
            assert_eq!(flags(&n), *fl, "{tool} {line}: flags");
            assert_eq!(n.is_uncertain(), *uncertain, "{tool} {line}: uncertain ({:?})", n.ambiguity);
        }
    }

    #[test]
    fn lists_and_api_paths_are_read_once_per_resource() {
        let readings = |line: &str| -> Vec<String> {
            norm("kubectl", line).equivalents.iter().map(|r| r.positionals.join(" ")).collect()
        };
        assert_eq!(readings("get pods,secrets -o yaml"), ["get pods", "get secrets"]);
        assert_eq!(readings("get pods,secrets web"), ["get pods web", "get secrets web"]);
        assert_eq!(readings("delete pod/a ns/prod"), ["delete pods/a", "delete namespaces/prod"]);
        assert_eq!(readings("delete --raw /api/v1/namespaces/prod"), ["delete namespaces/prod"]);
        assert!(readings("get all").contains(&"get deployments".to_string()));
        assert!(readings("get pods").is_empty());
        // `--unknown` may take `pods`: then `secret.v1.` is the resource.
        assert!(readings("get --unknown pods secret.v1.").contains(&"get secrets".to_string()));
        assert!(norm("kubectl", "delete --raw /api/v1/namespaces/pr%6fd").is_uncertain());
    }

    #[test]
    fn non_utf8_words_are_kept_and_taint_the_invocation() {
        use std::os::unix::ffi::OsStringExt;
        let args = vec![OsString::from("get"), OsString::from_vec(vec![b'p', 0xff])];
        let n = normalize(&args, &spec("kubectl"));
        assert!(n.non_utf8);
        assert_eq!(n.positionals.len(), 2, "no word is dropped");
    }

    #[test]
    fn ambiguous_abbreviation_is_uncertain() {
        // psql: --echo-a could be --echo-all only, --echo- is several.
        assert!(!norm("psql", "--echo-a app").is_uncertain());
        assert!(norm("psql", "--echo- app").is_uncertain());
    }
}
