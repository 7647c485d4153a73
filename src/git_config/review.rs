//! How each of git's configuration keys is classified: rules over the keys `git help --config`
//! lists, each with its reason. The generator (an ignored test below) applies them to git's
//! list and writes `keys.rs`; built for tests only, since the binary reads the generated table.
//!
//! First matching rule wins, so specific rules come before the section-wide ones. A key no rule
//! names is `other`: it asks until someone reviews it. The values that only restrict git are in
//! `restricting.rs`. Pure.

use super::ConfigClass::{self, *};

/// `(glob over git's documented key, class, reason)`. `*` matches any characters; matching
/// ignores case.
pub const RULES: &[(&str, ConfigClass, &str)] = &[
    // Decided by hand: the one command Claude Code sets on every call. git runs it only "when
    // advertising tips of available history from an alternate" (`git help config`,
    // core.alternateRefsCommand): fetch and push negotiation, a server's advertisement,
    // `--alternate-refs`; never for status, diff, log, rev-parse, ls-files or config reads.
    (
        "core.alternateRefsCommand",
        FetchCommand,
        "a command git runs only when it lists an alternate's refs (fetch, push, --alternate-refs)",
    ),
    (
        "core.alternateRefsPrefixes",
        FetchCommand,
        "arguments for the alternate refs listing, used only by fetch, push and --alternate-refs",
    ),
    // Commands.
    ("alias.*", Command, "an alias can run any shell command (!cmd)"),
    ("core.pager", Command, "the pager git runs"),
    ("pager.*", Command, "the pager git runs for a command"),
    ("core.editor", Command, "the editor git runs"),
    ("sequence.editor", Command, "the editor git runs for rebase todo lists"),
    ("core.sshCommand", Command, "the ssh command git runs"),
    ("core.gitProxy", Command, "a proxy command git runs for git:// URLs"),
    ("core.fsmonitor", Command, "a hook or daemon git runs to list changed files"),
    ("core.hooksPath", Command, "where git finds the hooks it runs"),
    ("core.askPass", Command, "the program git runs to ask for passwords"),
    ("diff.external", Command, "a diff program git runs"),
    ("diff.*.command", Command, "a diff program git runs"),
    ("diff.*.textconv", Command, "a conversion program git runs on file contents"),
    ("diff.tool", Command, "the diff tool git runs"),
    ("diff.guitool", Command, "the diff tool git runs"),
    ("difftool.*", Command, "the diff tool git runs and how"),
    ("merge.*.driver", Command, "a merge program git runs"),
    ("merge.tool", Command, "the merge tool git runs"),
    ("merge.guitool", Command, "the merge tool git runs"),
    ("mergetool.*", Command, "the merge tool git runs and how"),
    ("filter.*", Command, "a filter program git runs on file contents"),
    ("credential.*", Command, "credential helpers git runs, and what it tells them"),
    ("credentialCache.*", Command, "the credential cache daemon"),
    ("credentialStore.*", Command, "the credential store helper"),
    ("gpg.*", Command, "the signing program git runs, or what it trusts"),
    ("commit.gpgSign", Command, "runs the signing program"),
    ("tag.gpgSign", Command, "runs the signing program"),
    ("tag.forceSignAnnotated", Command, "runs the signing program"),
    ("push.gpgSign", Command, "runs the signing program"),
    ("log.showSignature", Command, "runs the signing program to verify"),
    ("merge.verifySignatures", Command, "runs the signing program to verify"),
    ("interactive.diffFilter", Command, "a filter program git runs on diffs"),
    ("browser.*", Command, "a browser git runs"),
    ("web.browser", Command, "a browser git runs"),
    ("help.browser", Command, "a browser git runs"),
    ("instaweb.*", Command, "a web server git runs"),
    ("man.*", Command, "a man page viewer git runs"),
    ("guitool.*", Command, "a command git gui runs"),
    ("sendemail.*", Command, "send-email sends mail and runs commands"),
    ("imap.*", Command, "imap-send connects to a server or runs a tunnel"),
    ("uploadpack.packObjectsHook", Command, "a command git runs when serving a fetch"),
    ("gc.recentObjectsHook", Command, "a command git gc runs"),
    ("remote.*.receivepack", Command, "the program git runs on the other side of a push"),
    ("remote.*.uploadpack", Command, "the program git runs on the other side of a fetch"),
    ("remote.*.vcs", Command, "runs a remote helper for another version control system"),
    ("submodule.*.update", Command, "a submodule update mode can be !command"),
    ("gitcvs.*", Command, "git cvsserver's database drivers and logs"),
    ("help.autoCorrect", Command, "runs a different command than the one written"),
    ("core.unsetenvvars", Other, "changes the environment of programs git runs"),
    // Where git reads, connects, sends or writes.
    ("include.path", Location, "reads more configuration from a file"),
    ("includeIf.*", Location, "reads more configuration from a file"),
    ("remote.*", Location, "where git fetches from or pushes to"),
    ("remotes.*", Location, "which remotes git fetches"),
    ("url.*", Location, "rewrites the URLs git connects to"),
    ("http.*", Location, "how and where git connects over HTTP"),
    ("protocol.*", Location, "which transports git may use"),
    ("ssh.variant", Location, "how git talks to the ssh command"),
    ("bundle.*", Location, "where git downloads bundles from"),
    ("fetch.bundleURI", Location, "where git downloads bundles from"),
    ("transfer.bundleURI", Location, "where git downloads bundles from"),
    ("transfer.credentialsInUrl", Location, "what git does with credentials in URLs"),
    ("submodule.*", Location, "which submodules git fetches, from where"),
    ("safe.*", Location, "which repositories git trusts"),
    ("core.worktree", Location, "where git reads and writes the working tree"),
    ("core.bare", Location, "whether git treats the repository as bare"),
    ("core.attributesFile", Location, "reads attributes that select diff and filter drivers"),
    ("attr.tree", Location, "reads attributes that select diff and filter drivers"),
    ("core.excludesFile", Location, "reads ignore rules from another file"),
    ("format.outputDirectory", Location, "where format-patch writes"),
    ("trace2.*", Location, "writes trace output to a file or socket"),
    ("help.htmlPath", Location, "where git help reads pages"),
    ("fsmonitor.*", Location, "where the file-system monitor listens"),
    ("extensions.*", Location, "how git reads the repository's objects and refs"),
    ("core.repositoryFormatVersion", Location, "how git reads the repository"),
    ("promisor.*", Location, "fetching missing objects"),
    // Display, formatting and read behaviour.
    ("advice.*", Safe, "which hints git prints"),
    ("color.*", Safe, "colours"),
    ("column.*", Safe, "output layout"),
    ("format.*", Safe, "how commits are formatted"),
    ("pretty.*", Safe, "a named output format"),
    ("log.*", Safe, "what log shows"),
    ("blame.*", Safe, "what blame shows"),
    ("grep.*", Safe, "how grep matches and prints"),
    ("status.*", Safe, "what status shows"),
    ("i18n.*", Safe, "output encoding"),
    ("versionsort.*", Safe, "sort order"),
    ("showBranch.*", Safe, "what show-branch shows"),
    ("stash.show*", Safe, "what stash show shows"),
    ("tag.sort", Safe, "sort order"),
    ("branch.sort", Safe, "sort order"),
    ("notes.displayRef", Safe, "which notes are shown"),
    ("core.notesRef", Safe, "which notes are shown"),
    ("mailmap.*", Safe, "how names are shown"),
    ("completion.commands", Safe, "shell completion"),
    ("interactive.singleKey", Safe, "prompt input"),
    ("diff.algorithm", Safe, "how diffs are computed"),
    ("diff.autoRefreshIndex", Safe, "whether diff refreshes stat information first"),
    ("diff.colorMoved*", Safe, "colours"),
    ("diff.context", Safe, "diff output"),
    ("diff.dirstat", Safe, "diff output"),
    ("diff.*Prefix", Safe, "diff output"),
    ("diff.noPrefix", Safe, "diff output"),
    ("diff.ignoreSubmodules", Safe, "diff output"),
    ("diff.indentHeuristic", Safe, "diff output"),
    ("diff.interHunkContext", Safe, "diff output"),
    ("diff.orderFile", Safe, "diff output order"),
    ("diff.relative", Safe, "diff output"),
    ("diff.renameLimit", Safe, "rename detection"),
    ("diff.renames", Safe, "rename detection"),
    ("diff.stat*", Safe, "diff output"),
    ("diff.submodule", Safe, "diff output"),
    ("diff.suppressBlankEmpty", Safe, "diff output"),
    ("diff.wordRegex", Safe, "diff output"),
    ("diff.wsErrorHighlight", Safe, "diff output"),
    ("diff.*.binary", Safe, "diff output"),
    ("diff.*.wordRegex", Safe, "diff output"),
    ("diff.*.xfuncname", Safe, "diff output"),
    ("diff.trustExitCode", Safe, "diff output"),
    ("diff.*.trustExitCode", Safe, "diff output"),
    ("core.abbrev", Safe, "output"),
    ("core.quotePath", Safe, "output"),
    ("core.commentChar", Safe, "comment character"),
    ("core.commentString", Safe, "comment character"),
    ("core.ignoreCase", Safe, "how paths compare"),
    ("core.precomposeUnicode", Safe, "how paths compare"),
    ("core.fileMode", Safe, "how changes are detected"),
    ("core.trustctime", Safe, "how changes are detected"),
    ("core.checkStat", Safe, "how changes are detected"),
    ("core.ignoreStat", Safe, "how changes are detected"),
    ("core.preloadIndex", Safe, "read performance"),
    ("core.deltaBaseCacheLimit", Safe, "read performance"),
    ("core.packedGitLimit", Safe, "read performance"),
    ("core.packedGitWindowSize", Safe, "read performance"),
    ("core.bigFileThreshold", Safe, "read performance"),
    ("core.multiPackIndex", Safe, "read performance"),
    ("core.commitGraph", Safe, "read performance"),
    ("core.useReplaceRefs", Safe, "whether replace refs are read"),
    ("core.warnAmbiguousRefs", Safe, "warnings"),
    ("core.hideDotFiles", Safe, "Windows file attributes"),
    ("core.restrictinheritedhandles", Safe, "Windows handles"),
    ("core.maxTreeDepth", Safe, "a read limit"),
    ("core.filesRefLockTimeout", Safe, "lock waiting"),
    ("core.packedRefsTimeout", Safe, "lock waiting"),
    ("core.fsmonitorHookVersion", Safe, "the protocol of the hook core.fsmonitor names"),
];

/// Case-insensitive glob with `*` only.
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) =
        (pattern.to_lowercase().chars().collect(), text.to_lowercase().chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// The class of one of git's documented keys: the first rule that names it, else `other`.
pub fn review(documented_key: &str) -> (ConfigClass, &'static str) {
    RULES
        .iter()
        .find(|(pattern, _, _)| glob(pattern, documented_key))
        .map_or((Other, "changes what git writes, keeps or deletes; not reviewed as harmless"), |r| (r.1, r.2))
}

/// The lines of `git help --config` that are keys (it ends with a pointer to `git help config`).
pub fn keys_of(help_output: &str) -> Vec<String> {
    let mut keys: Vec<String> = help_output
        .lines()
        .map(str::trim)
        .filter(|l| l.contains('.') && !l.contains('\''))
        .map(str::to_string)
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

/// The text of `keys.rs` for git `version` and its keys.
pub fn render(version: &str, keys: &[String]) -> String {
    let mut out = String::new();
    out.push_str("//! Every configuration key `git help --config` lists, with its class and why: GENERATED by\n");
    out.push_str("//! `cargo test --lib git_config::review::tests::generate -- --ignored` from the rules in\n");
    out.push_str("//! `review.rs`. Do not edit; change a rule and generate again.\n\n");
    out.push_str("use super::ConfigClass::{self, *};\n\n");
    out.push_str(&format!("pub const GIT_VERSION: &str = {version:?};\n\n"));
    out.push_str("#[rustfmt::skip]\npub const KEYS: &[(&str, ConfigClass, &str)] = &[\n");
    for key in keys {
        let (class, reason) = review(key);
        out.push_str(&format!("    ({key:?}, {class:?}, {reason:?}),\n"));
    }
    out.push_str("];\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEYS_RS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/git_config/keys.rs");

    fn installed_git() -> Option<(String, String)> {
        let version = std::process::Command::new("git").arg("--version").output().ok()?;
        let version = String::from_utf8(version.stdout).ok()?.trim().strip_prefix("git version ")?.to_string();
        let help = std::process::Command::new("git").args(["help", "--config"]).output().ok()?;
        Some((version, String::from_utf8(help.stdout).ok()?))
    }

    /// Writes `keys.rs` from the installed git. Run by hand after a git upgrade or a rule change.
    #[test]
    #[ignore]
    fn generate() {
        let (version, help) = installed_git().expect("git is installed");
        let keys = keys_of(&help);
        assert!(keys.len() > 500, "git help --config listed only {} keys", keys.len());
        std::fs::write(KEYS_RS, render(&version, &keys)).expect("write keys.rs");
    }

    /// The committed table is what the rules give for its keys (nobody edited it by hand), and
    /// when the installed git is the one it was made from, it lists exactly git's keys.
    #[test]
    fn the_table_is_generated_from_the_rules_and_gits_list() {
        let keys: Vec<String> = super::super::keys::KEYS.iter().map(|(k, _, _)| k.to_string()).collect();
        let committed = std::fs::read_to_string(KEYS_RS).expect("keys.rs");
        assert_eq!(
            committed,
            render(super::super::keys::GIT_VERSION, &keys),
            "keys.rs differs from the rules: generate it again"
        );
        match installed_git() {
            Some((version, help)) if version == super::super::keys::GIT_VERSION => {
                assert_eq!(keys_of(&help), keys, "git {version} lists other keys: generate keys.rs again");
            }
            other => eprintln!(
                "installed git {:?} is not {}: key list not compared",
                other.map(|o| o.0),
                super::super::keys::GIT_VERSION
            ),
        }
    }

    #[test]
    fn globs() {
        assert!(glob("diff.*.textconv", "diff.<driver>.textconv"));
        assert!(!glob("diff.*.textconv", "diff.external"));
        assert!(glob("stash.show*", "stash.showPatch"));
        assert!(glob("alias.*", "alias.*"));
    }
}
