"""Print catalogs/aws.tsv, the guardsh command catalog of the AWS CLI (v1).

Reads: the installed `awscli` package and the `botocore` it pins (CI installs exactly
awscli==1.45.11 into the venv that is first on PATH). Nothing else, no network: the environment
is scrubbed of AWS_* variables and HOME points at an empty directory before awscli is imported,
so no user config, CLI alias file or ~/.aws/models can add or change commands.

What it walks: the CLI's own command table (`awscli.clidriver.create_clidriver()`), exactly as
`aws` builds it when it runs: every service command, each service's operation table (after
awscli's customizations have renamed, replaced, hidden-aliased or added commands: `s3 cp`,
`ec2 wait ...`, `configure set`, `ecr get-login-password`, `emr ssh`, ...), recursively. A
command's flags come from the argparse parser awscli builds from its argument table
(`ArgTableArgParser`): the catalog has `value_default: true`, so only the options that take no
value (`nargs == 0`: booleans and their `--no-` spellings, `store_true` switches) are listed.
Options with an optional value (`--generate-cli-skeleton [input|output|yaml-input]`) count as
taking one, as argparse consumes a following word that does not start with `-`. Global options
(`--region`, `--debug`, ...) are not listed. `help` forms are not rows.

How classes are decided, first match wins:
  1. catalogs/overrides/aws.tsv (a person's decision, with the reason; note `hand: ...`);
  2. a service command, or a command that only dispatches to subcommands (its `_run_main`
     raises awscli's "too few arguments" usage error), is `group`;
  3. keyword rules on the whole operation name (KEYWORD_RULES: secrets -> credential, running
     code or raw queries -> code, access-policy and lifecycle/retention replacement -> destroy,
     tag removal -> write, `wait` subcommands -> read);
  4. the operation's verb, its first word (`batch-`, `admin-`, `bulk-` are skipped to reach
     the real verb): VERBS below. An operation whose verb is in no table stops the generator,
     so a new verb in a newer botocore gets a decision instead of a guess.
Hidden aliases awscli keeps for old names (`runtime.sagemaker`, `cloudwatch get-o-tel-...`)
are rows of their own with `alias of PATH` in the note and the class of the command they alias.

Regenerate (from the repository root): python3 catalogs/gen/aws.py > catalogs/aws.tsv
It takes about 15 s of CPU (one argparse parser per operation, ~19k of them) and ~600 MB.
Before printing, it checks a list of known commands and their classes (EXPECT) and stops on
any difference, on an override for a command that does not exist, and on an unknown verb.
"""

import atexit
import os
import re
import shutil
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

import common  # noqa: E402

GENERATE = "python3 catalogs/gen/aws.py"
OVERRIDES = os.path.join(ROOT, "catalogs", "overrides", "aws.tsv")
PINNED_AWSCLI = "1.45.11"

# The verb (first word of the operation name) -> class.
VERBS = {
    # read: shows state, changes nothing
    "read": """
        list get describe search lookup check validate estimate preview head is contains view
        query select scan count calculate evaluate detect analyze compare classify infer predict
        recognize translate synthesize render simulate test verify forecast
        filter poll retrieve download decode geocode reverse autocomplete suggest snap optimize
        rerank rescore report carrier phone domain discover encrypt re read probe
        """,
    # write: an additive or reversible remote change
    "write": """
        create put update modify set tag associate attach start register enable add accept
        reject import copy publish submit activate deactivate authorize apply confirm notify
        request allocate change initiate provision configure invite respond assign subscribe
        unsubscribe increase decrease resume pause stop cancel disable disassociate detach
        unassign dissociate reboot restart retry send upload complete rotate promote failover
        switchover transfer move merge rollback upgrade abort deprecate undeprecate suspend
        continue signal claim replicate archive unarchive join extend record prepare resend
        refresh initialize define build index clone approve acknowledge override schedule
        monitor unmonitor advertise lock unlock rebuild distribute open deploy commit grant
        checkout opt rename manage logout issue exchange launch enter exit ingest end process
        save synchronize provide populate install share bundle rebalance compose swap allow deny
        reserve resync split checkpoint peer setup vote take meter finalize mark label unlabel
        group ungroup push return sync reorder redrive instantiate migrate skip deliver
        transact begin resize convert backtrack recall amend reload relaunch converse chat receive
        purchase generate export forget forgot shutdown undeploy replace
        link unlink decline close dismiss regenerate withdraw release revoke unshare unregister
        deauthorize deregister retire redact reimport write insert restore execute flush
        invalidate clear drain expire remove renew post connect disconnect unsuspend resolve
        snooze reinvite toggle unpeer
        """,
    # destroy: deletes or overwrites persistent data or infrastructure
    "destroy": """
        delete terminate purge drop reset dispose discard deprovision evict
        leave
        """,
    # code: runs code or raw queries
    "code": """
        invoke run
        """,
}
VERB_CLASS = {}
for _cls, _words in VERBS.items():
    for _w in _words.split():
        if _w in VERB_CLASS:
            sys.exit(f"aws.py: verb {_w!r} in two classes")
        VERB_CLASS[_w] = _cls

# Prefixes that say how an operation is called, not what it does: classify what follows.
SKIP_PREFIXES = ("batch", "admin", "bulk", "global")

# (regex on the operation name, class, reason). Checked in order, before the verb.
_ISSUE = r"(get|batch-get|create|generate|reset|rotate|regenerate|exchange|refresh|request|issue|download)"
KEYWORD_RULES = [
    # secrets: an operation that prints, issues or sets one
    (r"secret-value", "credential", "reads or writes a secret's value"),
    (rf"^{_ISSUE}-(.*-)?tokens?(-for-.*|-with-.*)?$|^get-login(-password)?$",
     "credential", "issues a token"),
    (rf"^({_ISSUE[1:-1]}|import|update|put|set)-(.*-)?credentials?(-.*)?$", "credential",
     "issues, sets or prints credentials"),
    (rf"^{_ISSUE}-(.*-)?(access-keys?|api-keys?|stream-keys?|key-pair|keys-and-certificate|"
     r"data-key|data-key-pair|data-key-without-plaintext|data-key-pair-without-plaintext|random|"
     r"mac|mac-emv-pin-change|urls?|embed-url-.*|instance-access(-details)?|registry-login|"
     r"connection-string|"
     r"compute-access|password-data|pin-data|card-validation-data)$",
     "credential", "prints a key, password or other secret"),
    (r"password$", "credential", "reads, sets or resets a password"),
    (r"^(create|update)-login-profile$", "credential", "sets a console password"),
    (r"^(decrypt|decrypt-data|export-certificate|export-key|sign|sign-payload|"
     r"derive-shared-secret|add-user-pool-client-secret|retrieve-domain-auth-code)$",
     "credential", "decrypts, exports key material or signs with a key"),
    (r"^assume-", "credential", "issues temporary credentials"),
    # running code, raw queries
    (r"^(batch-)?execute-(statement|sql|transaction|query|gremlin-query|open-cypher-query|"
     r"gremlin-explain-query|gremlin-profile-query|open-cypher-explain-query)$",
     "code", "runs a raw query or statement (can modify or delete data)"),
    # access policies and data-expiring rules replaced wholesale
    (r"^(put|set)-(.*-)?(resource|key|bucket|repository|registry|vault-access|file-system|cluster|"
     r"container|channel|origin-endpoint|domain-permissions|repository-permissions|permission|"
     r"identity|application|contact|table|table-bucket|vector-bucket|access-point|"
     r"multi-region-access-point|component|image|image-recipe|container-recipe|project|"
     r"model-package-group|sink|destination|delivery-destination|investigation-group|"
     r"configured-audience-model|portal-product-sharing|resolver-rule|resolver-query-log-config|"
     r"firewall-rule-group|access-grants-instance-resource|role|user|group|stack|auth)"
     r"-policy(-for-object-lambda)?$|^put-policy$|^put-inline-policy-to-permission-set$|"
     r"^put-(bucket|object)-acl$|^update-assume-role-policy$",
     "destroy", "replaces the whole access policy: the previous one is lost, a wrong one locks "
     "owners out or exposes the resource"),
    (r"^put-(.*-)?(lifecycle|retention)(-policy|-configuration)?$|^put-bucket-lifecycle",
     "destroy", "replaces expiration rules, which can delete stored data"),
    # tags are labels that can be put back
    (r"^(untag|delete-tags|remove-tags)(-|$)|-tags?-from-|^remove-.*-tags?$|^delete-.*-tags$",
     "write", "removes tags, which can be put back"),
]
KEYWORD_RULES = [(re.compile(rx), cls, why) for rx, cls, why in KEYWORD_RULES]


def scrub_environment():
    for k in list(os.environ):
        if k.startswith("AWS_") or k.startswith("BOTO_"):
            del os.environ[k]
    home = tempfile.mkdtemp(prefix="guardsh-aws-gen-")
    atexit.register(shutil.rmtree, home, True)
    os.environ["HOME"] = home
    os.environ["AWS_CONFIG_FILE"] = os.path.join(home, "config")
    os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.path.join(home, "credentials")
    os.environ["AWS_DEFAULT_REGION"] = "us-east-1"
    return home


def no_value_flags(cmd, ArgTableArgParser):
    try:
        table = cmd.arg_table
    except AttributeError:
        return []
    if not table:
        return []
    parser = ArgTableArgParser(table)
    out = []
    for action in parser._actions:
        if action.option_strings and action.nargs == 0:
            out.extend(s for s in action.option_strings if s.startswith("--"))
    return out


def children(cmd):
    if hasattr(cmd, "subcommand_table"):
        return cmd.subcommand_table
    if hasattr(cmd, "_get_command_table"):  # ServiceCommand
        return cmd._get_command_table()
    return {}


def only_dispatches(cmd, inspect):
    """A BasicCommand with subcommands whose own `_run_main` is awscli's usage error."""
    run_main = getattr(type(cmd), "_run_main", None)
    if run_main is None:
        return False
    try:
        src = inspect.getsource(run_main)
    except (OSError, TypeError):
        return False
    return "too few arguments" in src


def alias_key(cmd):
    """What identifies the command behind a hidden alias (a shallow copy of the original)."""
    om = getattr(cmd, "_operation_model", None)
    if om is not None:
        return ("op", id(om))
    sn = getattr(cmd, "_service_name", None)
    if sn is not None:
        return ("svc", sn)
    return ("obj", type(cmd), id(getattr(cmd, "_session", None)))


def classify_name(name):
    """(class, note) from the operation's own name, or None."""
    for rx, cls, why in KEYWORD_RULES:
        if rx.search(name):
            return cls, f"keyword: {why}"
    words = name.split("-")
    i = 0
    while i < len(words) - 1 and words[i] in SKIP_PREFIXES:
        i += 1
    verb = words[i]
    if verb in VERB_CLASS:
        return VERB_CLASS[verb], f"verb: {verb}"
    return None


def main():
    scrub_environment()
    import inspect

    import awscli
    import botocore
    from awscli.argparser import ArgTableArgParser
    from awscli.clidriver import ServiceCommand, create_clidriver

    if awscli.__version__ != PINNED_AWSCLI:
        sys.exit(f"aws.py: want awscli {PINNED_AWSCLI}, found {awscli.__version__} "
                 f"({awscli.__file__}); install awscli=={PINNED_AWSCLI}")

    overrides = common.load_overrides(OVERRIDES)
    driver = create_clidriver()
    top = driver._get_command_table()

    # Walk every command; remember which ones are hidden aliases of another.
    # Walk every command, recording what the rows need while its objects are alive; then let
    # each service's operation table go.
    nodes = []  # dicts: path, group, key, hidden, service, waiter, outfile, flags

    def walk(path, cmd):
        kids = children(cmd)
        if isinstance(cmd, ServiceCommand):
            group = True
        elif kids:
            group = only_dispatches(cmd, inspect)
        else:
            group = False
        table = getattr(cmd, "arg_table", None) or {}
        nodes.append({
            "path": path,
            "group": group,
            "key": alias_key(cmd),
            "hidden": bool(getattr(cmd, "_UNDOCUMENTED", False)),
            "service": isinstance(cmd, ServiceCommand),
            "waiter": type(cmd).__name__ == "WaiterStateCommand",
            "outfile": "outfile" in table,
            "flags": no_value_flags(cmd, ArgTableArgParser),
        })
        for name, kid in kids.items():
            if name == "help":
                continue
            walk(f"{path} {name}", kid)

    for name, cmd in top.items():
        if name == "help":
            continue
        walk(name, cmd)
        if isinstance(cmd, ServiceCommand):
            cmd._command_table = None
            cmd._service_model = None

    # Hidden aliases: `_UNDOCUMENTED` copies; the documented sibling is the original.
    documented = {}
    for n in nodes:
        parent = n["path"].rsplit(" ", 1)[0] if " " in n["path"] else ""
        if not n["hidden"]:
            documented.setdefault((parent, n["key"]), n["path"])
    alias_of = {}
    for n in nodes:
        parent = n["path"].rsplit(" ", 1)[0] if " " in n["path"] else ""
        if n["hidden"]:
            orig = documented.get((parent, n["key"]))
            if orig is not None and orig != n["path"]:
                alias_of[n["path"]] = orig
            # else: a hidden (deprecated) command of its own, classified like any other

    # Aliased subtrees: `runtime.sagemaker invoke-endpoint` is an alias of
    # `sagemaker-runtime invoke-endpoint`.
    def alias_target(path):
        words = path.split(" ")
        for n in range(len(words), 0, -1):
            head = " ".join(words[:n])
            if head in alias_of:
                return " ".join([alias_of[head]] + words[n:])
        return None

    decided = {}
    rows = []
    unknown = []
    used_overrides = set()
    flags_of = {n["path"]: n["flags"] for n in nodes}
    for n in nodes:
        path = n["path"]
        if alias_target(path):
            continue
        words = path.split(" ")
        if path in overrides:
            cls, why = overrides[path]
            used_overrides.add(path)
            note = f"hand: {why}"
        elif n["group"]:
            cls, note = "group", ""
        elif len(words) >= 3 and words[-2] == "wait" and n["waiter"]:
            cls, note = "read", "waiter: polls a describe call until a state"
        elif len(words) == 1:
            unknown.append(path)
            continue
        else:
            got = classify_name(words[-1])
            if got is None:
                unknown.append(path)
                continue
            cls, note = got
            if cls == "read" and n["outfile"]:
                cls, note = "local", f"{note}; writes the response body to a local file (outfile)"
        decided[path] = (cls, note)
    for n in nodes:
        path = n["path"]
        target = alias_target(path)
        if target is None:
            continue
        if path in overrides:
            cls, why = overrides[path]
            used_overrides.add(path)
            decided[path] = (cls, f"hand: {why}; alias of {target}")
        elif target in decided:
            decided[path] = (decided[target][0], f"alias of {target}")
        else:
            sys.exit(f"aws.py: {path!r}: alias of {target!r}, which is not a command")
    if unknown:
        sys.exit("aws.py: no class for (add the verb to VERBS or a line to "
                 "catalogs/overrides/aws.tsv):\n  " + "\n  ".join(sorted(unknown)))
    stale = sorted(set(overrides) - used_overrides)
    if stale:
        sys.exit("aws.py: overrides for commands that do not exist:\n  " + "\n  ".join(stale))

    for path in decided:
        cls, note = decided[path]
        rows.append((path, cls, flags_of[path], note))

    check(decided)
    source = (f"awscli {awscli.__version__} with botocore {botocore.__version__} "
              f"(pypi awscli=={awscli.__version__}): awscli.clidriver command tables and "
              f"argument tables")
    common.emit("aws", ["aws"], source, GENERATE, True, rows)


# Known commands and their classes: the generator stops when one is missing or changed.
EXPECT = {
    "s3": "group",
    "s3api": "group",
    "ec2 wait": "group",
    "s3api delete-bucket": "destroy",
    "s3api list-buckets": "read",
    "s3api put-object": "write",
    "s3api put-bucket-policy": "destroy",
    "s3 ls": "read",
    "s3 cp": "write",
    "s3 sync": "write",
    "s3 rm": "destroy",
    "s3 rb": "destroy",
    "s3 mv": "destroy",
    "s3 presign": "credential",
    "ec2 describe-instances": "read",
    "ec2 run-instances": "write",
    "ec2 stop-instances": "write",
    "ec2 terminate-instances": "destroy",
    "ec2 wait instance-running": "read",
    "ec2 get-password-data": "credential",
    "ec2-instance-connect send-ssh-public-key": "code",
    "rds modify-db-instance": "write",
    "rds generate-db-auth-token": "credential",
    "rds-data execute-statement": "code",
    "redshift-data execute-statement": "code",
    "dynamodb execute-statement": "code",
    "cloudformation delete-stack": "destroy",
    "cloudformation deploy": "write",
    "deploy push": "write",
    "secretsmanager get-secret-value": "credential",
    "ssm get-parameter": "credential",
    "ssm get-parameters": "credential",
    "ssm get-parameters-by-path": "credential",
    "ssm send-command": "code",
    "ssm start-session": "code",
    "sts assume-role": "credential",
    "sts get-session-token": "credential",
    "sts get-federation-token": "credential",
    "sts get-caller-identity": "read",
    "ecr get-login-password": "credential",
    "ecr get-authorization-token": "credential",
    "iam create-access-key": "credential",
    "kms decrypt": "credential",
    "kms generate-data-key": "credential",
    "lambda invoke": "code",
    "ecs execute-command": "code",
    "codeartifact get-authorization-token": "credential",
    "lightsail get-instance-access-details": "credential",
    "eks update-kubeconfig": "local",
    "configure": "credential",
    "configure list": "read",
    "configure set": "credential",
    "history": "group",
    "s3api get-object": "local",
    "sqs purge-queue": "destroy",
    "kms schedule-key-deletion": "destroy",
    "kms put-key-policy": "destroy",
    "kms encrypt": "read",
    "iam put-role-policy": "destroy",
    "iam attach-role-policy": "write",
    "iam detach-role-policy": "write",
    "iam delete-access-key": "destroy",
    "iam list-access-keys": "read",
    "ec2 revoke-security-group-ingress": "write",
    "ec2 delete-tags": "write",
    "sts assume-role-with-web-identity": "credential",
    "secretsmanager put-secret-value": "credential",
    "secretsmanager delete-secret": "destroy",
    "ssm get-parameter-history": "credential",
    "ssm describe-parameters": "read",
    "cognito-idp initiate-auth": "credential",
    "lambda invoke-async": "code",
    "athena start-query-execution": "code",
    "route53 change-resource-record-sets": "destroy",
    "eks get-token": "credential",
    "emr ssh": "code",
    "emr terminate-clusters": "destroy",
    "runtime.sagemaker invoke-endpoint": "code",
}


def check(decided):
    bad = []
    for path, want in EXPECT.items():
        got = decided.get(path, (None,))[0]
        if got != want:
            bad.append(f"{path}: want {want}, got {got}")
    if bad:
        sys.exit("aws.py: sanity check failed:\n  " + "\n  ".join(bad))


if __name__ == "__main__":
    main()
