//! What a command line is by its tool's catalog: the command it names, that command's class, and
//! the forms every tool shares (help, true dry runs), read once here for every tool.
//!
//! Pure: a tool's knowledge, a normalised command line and the embedded catalogs in, a reading
//! out. `decision` turns the reading into a verdict through the policy's posture.

use crate::catalog::{self, Catalog, Class, Entry, Lookup};
use crate::matching::NormalizedArgv;
use crate::tools::ToolSpec;

/// A form that runs nothing whatever the command is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Form {
    /// `--help`, `help COMMAND`, `aws ... help`, and `--version` alone.
    Help,
    /// A true dry run, as written (`--dry-run=server`).
    DryRun(String),
}

/// What the catalog says of one command line.
#[derive(Debug, Clone)]
pub struct Reading {
    pub catalog: &'static Catalog,
    pub lookup: Lookup,
    pub form: Option<Form>,
}

impl Reading {
    /// The class the posture decides by: a form reads; an unknown command has none.
    pub fn class(&self) -> Option<Class> {
        match (&self.form, &self.lookup) {
            (Some(_), _) => Some(Class::Read),
            (None, Lookup::Known(e)) => Some(e.class),
            (None, Lookup::Unknown { .. }) => None,
        }
    }

    pub fn entry(&self) -> Option<&Entry> {
        match &self.lookup {
            Lookup::Known(e) => Some(e),
            Lookup::Unknown { .. } => None,
        }
    }

    /// For explanations: "`rollout undo`: write, kubectl catalog (kubernetes v1.31.0)".
    pub fn describe(&self) -> String {
        let form = match &self.form {
            Some(Form::Help) => " (help: runs nothing)".to_string(),
            Some(Form::DryRun(f)) => format!(" ({f}: a true dry run, runs nothing)"),
            None => String::new(),
        };
        match &self.lookup {
            Lookup::Unknown { near: None } if self.form.is_some() => {
                format!("the tool's own help or version (runs nothing), {}", self.catalog.describe())
            }
            Lookup::Known(e) => format!("`{}`: {}{form}, {}", e.path, e.class.as_str(), self.catalog.describe()),
            Lookup::Unknown { near: Some(g) } => {
                format!("not a command of `{g}` in the {} (a typo, a plugin or an alias)", self.catalog.describe())
            }
            Lookup::Unknown { near: None } => format!("not a command in the {}", self.catalog.describe()),
        }
    }
}

/// Reads `argv` of `tool` against its catalog. `None` when the tool has no catalog.
pub fn read(tool: &str, spec: &ToolSpec, argv: &NormalizedArgv) -> Option<Reading> {
    let catalog = catalog::for_tool(tool)?;
    // Words that may be an unknown option's value are left out of the command's path; if one
    // stood among the path's words, the path itself is in doubt.
    let words: Vec<String> = argv
        .positionals
        .iter()
        .enumerate()
        .filter(|(i, _)| !argv.maybe_values.contains(i))
        .map(|(_, w)| spec.catalog_word(w))
        .collect();
    let mut lookup = catalog.lookup(&words);
    if let Lookup::Known(e) = &lookup {
        let path_end = (0..argv.positionals.len()).filter(|i| !argv.maybe_values.contains(i)).nth(e.depth - 1);
        if path_end.is_some_and(|end| argv.maybe_values.iter().any(|&m| m < end)) {
            lookup = Lookup::Unknown { near: None };
        }
    }
    let mut form = if argv.is_uncertain() { None } else { form(spec, argv, &words, &lookup) };
    // A first word that is none of the CLI's commands is its default command's argument
    // (`vercel ./site` deploys ./site), and no words at all are that command too.
    if let (Lookup::Unknown { near: None }, Some(default), None) = (&lookup, &spec.default_command, &form)
        && argv.maybe_values.is_empty()
    {
        let with_default: Vec<String> = std::iter::once(default.clone()).chain(words.iter().cloned()).collect();
        if let found @ Lookup::Known(_) = catalog.lookup(&with_default[..1]) {
            lookup = found;
            form = if argv.is_uncertain() { None } else { self::form(spec, argv, &with_default, &lookup) };
        }
    }
    Some(Reading { catalog, lookup, form })
}

fn form(spec: &ToolSpec, argv: &NormalizedArgv, words: &[String], lookup: &Lookup) -> Option<Form> {
    // `help delete`: cobra's and gcloud's help command, whatever it is asked about.
    if words.first().is_some_and(|w| spec.help_commands.contains(w)) {
        return Some(Form::Help);
    }
    // `railway --version`, `gh --help`: no command at all, only the tool's own options.
    if words.is_empty()
        && !argv.flags.is_empty()
        && argv.flags.iter().all(|f| f.value.is_none() || spec.global.contains(&f.name))
        && argv.flags.iter().any(|f| spec.help_flags.contains(&f.name) || spec.version_flags.contains(&f.name))
    {
        return Some(Form::Help);
    }
    // Everything else only for a command the catalog knows: an unknown word may be a plugin,
    // which gets `--help` and `--dry-run` to do with as it likes.
    let Lookup::Known(entry) = lookup else { return None };
    // Only where the command does not give the spelling a meaning of its own (`gh auth token -h
    // HOST`: cobra hands `-h` to a command that declares it).
    if argv
        .flags
        .iter()
        .any(|f| spec.help_flags.contains(&f.name) && f.value.is_none() && entry.takes_value(&f.name) != Some(true))
    {
        return Some(Form::Help);
    }
    if let Some(last) = &spec.help_last
        && words.len() == entry.depth + 1
        && words.last() == Some(last)
        && argv.flags.iter().all(|f| spec.global.contains(&f.name))
    {
        return Some(Form::Help);
    }
    // The last dry-run flag or negation on the line decides, as the CLIs' parsers do.
    let last = argv
        .flags
        .iter()
        .rev()
        .find(|f| spec.dry_run.iter().any(|(n, _)| *n == f.name) || spec.dry_run_negations.contains(&f.name))?;
    let (_, values) = spec.dry_run.iter().find(|(n, _)| *n == last.name)?;
    let dry = match &last.value {
        None => values.iter().any(String::is_empty),
        Some(v) => values.iter().any(|x| !x.is_empty() && x == v),
    };
    (dry && entry.accepts(&last.name)).then(|| match &last.value {
        Some(v) => Form::DryRun(format!("{}={v}", last.name)),
        None => Form::DryRun(last.name.clone()),
    })
}

/// `argv` with what the catalog knows of the command's flags applied: a word after an option
/// guardsh's tool file does not know is that option's value when the catalog says it takes one,
/// and a positional word when the catalog says it takes none. Rules then see one reading, not
/// both (`aws iam get-role --role-name delete-old-role` names no `delete-old-role` command).
pub fn resolve_values(argv: &NormalizedArgv, entry: &Entry) -> Option<NormalizedArgv> {
    if argv.maybe_values.is_empty() || argv.positional_at.len() != argv.positionals.len() {
        return None;
    }
    let mut out = argv.clone();
    let mut drop = Vec::new();
    for &i in &argv.maybe_values {
        let at = argv.positional_at[i];
        let Some(flag) = out.flags.iter_mut().find(|f| f.at == Some((at, 0))) else { continue };
        match entry.takes_value(&flag.name) {
            Some(true) => drop.push(i),
            Some(false) => {
                flag.value = None;
                flag.at = None;
                out.maybe_values.retain(|&m| m != i);
            }
            None => {}
        }
    }
    if drop.is_empty() && out.maybe_values.len() == argv.maybe_values.len() {
        return None;
    }
    // Remove the values from the positional words, and renumber the doubtful ones that remain.
    let keep: Vec<usize> = (0..argv.positionals.len()).filter(|i| !drop.contains(i)).collect();
    out.positionals = keep.iter().map(|&i| argv.positionals[i].clone()).collect();
    out.positional_at = keep.iter().map(|&i| argv.positional_at[i]).collect();
    out.maybe_values = out.maybe_values.iter().filter_map(|m| keep.iter().position(|k| k == m)).collect();
    Some(out)
}
