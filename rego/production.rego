# guardsh's production rules in Rego: an example of the second, tighten-only stage (docs/rego.md).
#
# Install: copy this file (and data.json, to change what counts as production) to
# /etc/guardsh/policy/ owned by root, and name them in the base policy:
#
#   [policy]
#   rego = ["/etc/guardsh/policy/*.rego"]
#   data = ["/etc/guardsh/policy/data.json"]
#
# The rules in rules.toml decide first; this policy can only make that decision stricter. It
# answers at data.guardsh.decision with {"action": "allow"|"ask"|"deny", "reasons": [...]}.
# Test it with `guardsh policy test rego/production_test.toml --rego rego/production.rego`.
package guardsh

import rego.v1

# What counts as production: regular expressions, overridden by data.production.
default production := {
	"kube_contexts": ["^prod", "-prod$"],
	"namespaces": ["^prod", "^kube-system$"],
	"aws_profiles": ["^prod"],
	"databases": ["^prod"],
}

production := data.production if data.production

class := input.catalog.class

# --- Which production target the command names ---------------------------------------------

# A builtin given a value of the wrong type (regex.match on null) is an error in OPA and undefined
# in regorus: test types first, so that both engines decide the same (docs/rego.md).
targets contains sprintf("kube context %s", [input.kube.context]) if {
	is_string(input.kube.context)
	some p in production.kube_contexts
	regex.match(p, input.kube.context)
}

targets contains sprintf("namespace %s", [input.kube.namespace]) if {
	is_string(input.kube.namespace)
	some p in production.namespaces
	regex.match(p, input.kube.namespace)
}

targets contains sprintf("AWS profile %s", [profile]) if {
	some profile in aws_profiles
	some p in production.aws_profiles
	regex.match(p, profile)
}

aws_profiles contains input.selectors.AWS_PROFILE if {
	input.tool == "aws"
	is_string(input.selectors.AWS_PROFILE)
}

aws_profiles contains profile if {
	input.tool == "aws"
	some profile in input.flags["--profile"]
	is_string(profile)
}

targets contains sprintf("database %s", [db]) if {
	input.sql != null
	some db in databases
	some p in production.databases
	regex.match(p, db)
}

databases contains db if {
	some flag in ["--dbname", "--host", "--database"]
	some db in input.flags[flag]
	is_string(db)
}

databases contains db if {
	input.sql != null
	some i, db in input.words
	i == 0
	not startswith(db, "-")
}

production_targets := sort([t | some t in targets])

in_production if count(targets) > 0

# --- Deny -----------------------------------------------------------------------------------

deny contains sprintf("a %s command against production (%s)", [class, concat(", ", production_targets)]) if {
	in_production
	class in {"destroy", "credential"}
}

deny contains sprintf("deleting the production namespace %s", [name]) if {
	input.tool == "kubectl"
	input.words[0] == "delete"
	some i, word in input.words
	i >= 1
	name := namespace_named(word, input.words[1])
	some p in production.namespaces
	regex.match(p, name)
}

namespace_named(word, _) := trim_prefix(word, "namespaces/") if startswith(word, "namespaces/")

namespace_named(word, kind) := word if {
	kind in {"ns", "namespace", "namespaces"}
	not contains(word, "/")
	word != kind
}

deny contains sprintf("%s in a production database", [s.kind]) if {
	in_production
	some s in input.sql.statements
	regex.match(`(?i)^\s*(drop|truncate)\b`, s.text)
}

deny contains sprintf("%s without WHERE touches every row", [s.kind]) if {
	some s in input.sql.statements
	s.kind in {"DELETE", "UPDATE"}
	not regex.match(`(?i)\bwhere\b`, s.text)
}

deny contains "the SQL could not be read, and the target is production" if {
	in_production
	input.sql.class == "unknown"
}

# --- Ask ------------------------------------------------------------------------------------

ask contains sprintf("a %s command against production (%s)", [class, concat(", ", production_targets)]) if {
	in_production
	class in {"write", "code"}
}

ask contains sprintf("a command guardsh does not know, against production (%s)", [concat(", ", production_targets)]) if {
	in_production
	input.catalog != null
	not input.catalog.known
	input.catalog.form == null
}

ask contains "writes to a production database" if {
	in_production
	input.sql.class in {"write", "add"}
}

ask contains "a command line guardsh could not read with certainty, against production" if {
	in_production
	input.uncertain != null
}

# --- The decision ---------------------------------------------------------------------------

decision := {"action": "deny", "reasons": sort([r | some r in deny])} if count(deny) > 0

decision := {"action": "ask", "reasons": sort([r | some r in ask])} if {
	count(deny) == 0
	count(ask) > 0
}

decision := {"action": "allow", "reasons": []} if {
	count(deny) == 0
	count(ask) == 0
}
