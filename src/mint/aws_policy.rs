//! The IAM session policy one aws command needs: the actions it calls, on the resources its
//! arguments name.
//!
//! STS intersects a session policy with the role's own policy, so what is derived here can only
//! narrow what the minted credentials may do. Every derivation errs towards too little: an action
//! name that does not exist, or a resource narrower than the call needs, ends in AccessDenied for
//! that command, never in more reach. So the rules below are general mechanisms, with small tables
//! only where AWS's names differ from the CLI's:
//!
//! - API-level commands, `aws SERVICE OPERATION ...`: the action is the service's IAM prefix
//!   (`IAM_PREFIXES` where it is not the CLI's service name: `s3api` ⇒ `s3`, `elbv2` ⇒
//!   `elasticloadbalancing`) and the operation in CamelCase. The CLI's kebab case loses
//!   botocore's acronyms (`describe-db-instances` is `DescribeDBInstances`), but IAM compares
//!   action names case-insensitively, so `rds:DescribeDbInstances` is the same action. S3 is the
//!   one service whose actions are mostly not its operations' names (`ListObjectsV2` is
//!   `s3:ListBucket`): `S3API_ACTIONS`; the few elsewhere (`lambda invoke` is
//!   `lambda:InvokeFunction`) are in `OPERATION_ACTIONS`.
//! - Resources, where the arguments name them unambiguously: s3api's `--bucket`/`--key`/
//!   `--copy-source`; otherwise every ARN given to a `--*-arn(s)`, `--arn`, `--*-name`, `--*-id`
//!   or `--*-identifier` option, when no such option also names something without an ARN (a
//!   `--role-name` beside a `--policy-arn` means the role is the resource, and its ARN needs the
//!   account: `*`). An ARN that is a condition rather than the resource (`--source-arn`) only
//!   adds an ARN the approved command names, for the same one action. Anything else is `*`: the
//!   action alone still scopes the credentials. Positional words after an operation (more values
//!   of a list option) or `--cli-input-json` also make it `*`.
//! - awscli's own commands (`s3 cp`, `ecr get-login-password`, `eks update-kubeconfig`, ...) are
//!   not operations: `s3` and a few others have a table of the calls they make (`CUSTOM`); the rest
//!   of them are refused (`CUSTOM_UNDERIVED`), as are commands that need no AWS call (`configure`).
//! - `aws SERVICE wait WAITER` polls one operation, from `aws_waiters.tsv` (generated from
//!   botocore by `catalogs/gen/aws_waiters.py`).
//! - Reads (the catalog's `read` class) get, besides their own action, the service's `Describe*`
//!   and `List*` actions on `*`, as the issue asks ("reads ⇒ the service's read actions"): a read
//!   approved against a service may look around it. Not `Get*`: that is where services return
//!   data and secrets (`secretsmanager:GetSecretValue`, `ssm:GetParameter`, `s3:GetObject`), which
//!   the catalog classes as `credential`, never `read`. Not for S3 either, whose `List*` lists
//!   every bucket's keys and whose derivations are exact.
//!
//! Not derived, so such a command fails with AccessDenied rather than getting more: what a service
//! checks on another's behalf (`iam:PassRole` when handing a role to EC2 or Lambda, `kms:Decrypt`
//! for an SSE-KMS object), and what services do with the caller's own credentials (Athena reading
//! S3 and Glue, `rds-data` reading its secret, CloudFormation creating resources without a
//! service role). Operations whose action depends on their input (`dynamodb execute-statement`:
//! `dynamodb:PartiQLSelect` or `...Delete`) get a name that is no action, so they are denied.
//!
//! Resource ARNs use the `aws` partition, or `aws-cn`/`aws-us-gov` when `--region` names one of
//! theirs (a region set only in the environment or config is not seen here). A value's `*`, `?`
//! and `$` are written as IAM's `${*}`, `${?}`, `${$}`, so a name cannot widen its own ARN.

use std::collections::{BTreeMap, BTreeSet};

use crate::catalog::{self, Class, Lookup};
use crate::matching::NormalizedArgv;

/// STS refuses a session policy longer than this, counted without whitespace (AssumeRole's
/// `Policy` parameter: "the plaintext that you use for both inline and managed session policies
/// can't exceed 2,048 characters").
pub const MAX_POLICY_CHARS: usize = 2048;

/// One `Allow` statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub actions: Vec<String>,
    pub resources: Vec<String>,
}

/// An IAM policy of `Allow` statements, passed as AssumeRole's `Policy`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionPolicy {
    pub statements: Vec<Statement>,
}

impl SessionPolicy {
    /// The policy document, packed (no whitespace), as STS counts it.
    pub fn to_json(&self) -> String {
        let statements: Vec<String> = self
            .statements
            .iter()
            .map(|s| {
                format!(
                    "{{\"Effect\":\"Allow\",\"Action\":{},\"Resource\":{}}}",
                    json_strings(&s.actions),
                    json_strings(&s.resources)
                )
            })
            .collect();
        format!("{{\"Version\":\"2012-10-17\",\"Statement\":[{}]}}", statements.join(","))
    }
}

fn json_strings(values: &[String]) -> String {
    let quoted: Vec<String> = values.iter().map(|v| serde_json::Value::String(v.clone()).to_string()).collect();
    format!("[{}]", quoted.join(","))
}

/// The session policy for one aws command line, as guardsh normalised it, of catalog class
/// `class`. Err, saying why, when it cannot be derived with certainty; the caller then mints
/// nothing and the command does not run with minted credentials.
pub(crate) fn session_policy(argv: &NormalizedArgv, class: Class) -> Result<SessionPolicy, String> {
    if argv.is_uncertain() {
        return Err("the command line could not be read with certainty, so no session policy is derived for it".into());
    }
    let catalog = catalog::for_tool("aws").ok_or("guardsh has no aws catalog (a build without catalogs)")?;
    let words: Vec<String> = argv
        .positionals
        .iter()
        .enumerate()
        .filter(|(i, _)| !argv.maybe_values.contains(i))
        .map(|(_, w)| w.clone())
        .collect();
    let entry = match catalog.lookup(&words) {
        Lookup::Known(e) => e,
        Lookup::Unknown { .. } => {
            return Err(format!(
                "`aws {}` is not a command of the aws catalog, so guardsh cannot tell which API calls it makes",
                words.join(" ")
            ));
        }
    };
    let resolved = crate::posture::resolve_values(argv, &entry);
    let argv = resolved.as_ref().unwrap_or(argv);
    // An alias the CLI keeps for an old name is the command it aliases.
    let path = entry.note.strip_prefix("alias of ").unwrap_or(entry.path);
    let path: Vec<&str> = path.split(' ').collect();
    let args = Args::new(argv, entry.depth);
    let mut out = Builder::default();
    if let Some((_, why)) = CUSTOM_UNDERIVED.iter().find(|(p, _)| p.split(' ').eq(path.iter().copied())) {
        return Err(format!("`aws {}` is awscli's own command, not one API call: {why}", path.join(" ")));
    }
    match path.as_slice() {
        [] | [_] => return Err(format!("`aws {}` names a service, not a command that calls AWS", path.join(" "))),
        ["s3", command] => s3_command(command, &args, &mut out)?,
        [service, "wait", waiter] => waiter_calls(service, waiter, &args, &mut out)?,
        [service, operation] => {
            if let Some((_, actions)) = CUSTOM.iter().find(|(p, _)| *p == format!("{service} {operation}")) {
                custom_calls(actions, &args, &mut out)?;
            } else {
                api_call(service, operation, &args, &mut out)?;
                if class == Class::Read && !matches!(*service, "s3api" | "s3control") {
                    let prefix = iam_prefix(service);
                    out.add(&format!("{prefix}:Describe*"), "*");
                    out.add(&format!("{prefix}:List*"), "*");
                }
            }
        }
        _ => {
            return Err(format!("`aws {}` is not an API operation guardsh can derive actions for", path.join(" ")));
        }
    }
    let policy = out.build()?;
    let len = policy.to_json().len();
    if len > MAX_POLICY_CHARS {
        return Err(format!(
            "the session policy for this command is {len} characters, over STS's {MAX_POLICY_CHARS}: run it on fewer resources at a time"
        ));
    }
    Ok(policy)
}

/// The words and options of one command, after its catalog path.
struct Args<'a> {
    argv: &'a NormalizedArgv,
    /// Positional words after the command's path.
    rest: Vec<&'a str>,
    /// Some positional word after the path may be an unknown option's value.
    doubtful: bool,
    partition: &'static str,
}

impl<'a> Args<'a> {
    fn new(argv: &'a NormalizedArgv, depth: usize) -> Args<'a> {
        let rest = argv.positionals.iter().skip(depth).map(String::as_str).collect();
        let doubtful = argv.maybe_values.iter().any(|&i| i >= depth);
        let region = argv.values("--region").flatten().last().unwrap_or("");
        let partition = if region.starts_with("cn-") {
            "aws-cn"
        } else if region.starts_with("us-gov-") {
            "aws-us-gov"
        } else {
            "aws"
        };
        Args { argv, rest, doubtful, partition }
    }

    /// The value of option `name`, when it is given exactly once with a value that is the value
    /// itself (not `file://...`, which awscli reads the value from).
    fn value(&self, name: &str) -> Result<Option<&'a str>, String> {
        let values: Vec<Option<&'a str>> =
            self.argv.flags.iter().filter(|f| f.name == name).map(|f| f.value.as_deref()).collect();
        match values.as_slice() {
            [] => Ok(None),
            [Some(v)] if !is_indirect(v) => Ok(Some(v)),
            [Some(_)] => Ok(None),
            _ => Err(format!("{name} is given more than once or without a value; give it once")),
        }
    }

    fn has(&self, name: &str) -> bool {
        self.argv.flags.iter().any(|f| f.name == name)
    }

    /// Parameters come from a JSON or YAML document rather than the options (`--cli-input-json`),
    /// so the options alone do not say what the call touches.
    fn params_in_document(&self) -> bool {
        self.has("--cli-input-json") || self.has("--cli-input-yaml")
    }
}

/// awscli reads a parameter's value from a file or URL written so (`--bucket file://name.txt`).
fn is_indirect(value: &str) -> bool {
    ["file://", "fileb://", "http://", "https://"].iter().any(|p| value.to_ascii_lowercase().starts_with(p))
}

/// Actions and the resources each may act on, merged into as few statements as the sets allow.
#[derive(Default)]
struct Builder {
    grants: BTreeMap<String, BTreeSet<String>>,
}

impl Builder {
    fn add(&mut self, action: &str, resource: &str) {
        self.grants.entry(action.to_string()).or_default().insert(resource.to_string());
    }

    fn build(self) -> Result<SessionPolicy, String> {
        if self.grants.is_empty() {
            return Err("this command makes no AWS call guardsh knows of, so there is nothing to mint for".into());
        }
        // Group actions whose resource sets are equal; `*` among them makes the set `*`.
        let mut by_resources: BTreeMap<Vec<String>, Vec<String>> = BTreeMap::new();
        for (action, resources) in self.grants {
            let resources =
                if resources.contains("*") { vec!["*".to_string()] } else { resources.into_iter().collect() };
            by_resources.entry(resources).or_default().push(action);
        }
        Ok(SessionPolicy {
            statements: by_resources.into_iter().map(|(resources, actions)| Statement { actions, resources }).collect(),
        })
    }
}

/// A value made literal inside an ARN: IAM reads `*` and `?` as wildcards and `${...}` as a
/// variable, and writes the characters themselves as `${*}`, `${?}`, `${$}`.
fn literal(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '*' => out.push_str("${*}"),
            '?' => out.push_str("${?}"),
            '$' => out.push_str("${$}"),
            c => out.push(c),
        }
    }
    out
}

/// `arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE`, with a service and a resource.
fn is_arn(value: &str) -> bool {
    let parts: Vec<&str> = value.splitn(6, ':').collect();
    parts.len() == 6 && parts[0] == "arn" && !parts[1].is_empty() && !parts[2].is_empty() && !parts[5].is_empty()
}

// ---------------------------------------------------------------------------------------------
// API-level commands

/// CLI service names whose IAM prefix is another word. A service not listed uses its own name;
/// if that is wrong, the action does not exist and the command is denied, never widened.
const IAM_PREFIXES: &[(&str, &str)] = &[
    ("amp", "aps"),
    ("apigatewaymanagementapi", "execute-api"),
    ("apigatewayv2", "apigateway"),
    ("appconfigdata", "appconfig"),
    ("appintegrations", "app-integrations"),
    ("bedrock-agent", "bedrock"),
    ("bedrock-agent-runtime", "bedrock"),
    ("bedrock-runtime", "bedrock"),
    ("chime-sdk-identity", "chime"),
    ("chime-sdk-media-pipelines", "chime"),
    ("chime-sdk-meetings", "chime"),
    ("chime-sdk-messaging", "chime"),
    ("chime-sdk-voice", "chime"),
    ("cloudcontrol", "cloudformation"),
    ("cloudhsmv2", "cloudhsm"),
    ("cloudsearchdomain", "cloudsearch"),
    ("configservice", "config"),
    ("connect-contact-lens", "connect"),
    ("deploy", "codedeploy"),
    ("docdb", "rds"),
    ("dynamodbstreams", "dynamodb"),
    ("efs", "elasticfilesystem"),
    ("elb", "elasticloadbalancing"),
    ("elbv2", "elasticloadbalancing"),
    ("emr", "elasticmapreduce"),
    ("iot-data", "iot"),
    ("iot-jobs-data", "iotjobsdata"),
    ("iotevents-data", "iotevents"),
    ("kinesis-video-archived-media", "kinesisvideo"),
    ("kinesis-video-media", "kinesisvideo"),
    ("kinesis-video-signaling", "kinesisvideo"),
    ("kinesisanalyticsv2", "kinesisanalytics"),
    ("lex-models", "lex"),
    ("lex-runtime", "lex"),
    ("lexv2-models", "lex"),
    ("lexv2-runtime", "lex"),
    ("marketplace-catalog", "aws-marketplace"),
    ("mediastore-data", "mediastore"),
    ("meteringmarketplace", "aws-marketplace"),
    ("migrationhub-config", "mgh"),
    ("mturk", "mechanicalturk"),
    ("mwaa", "airflow"),
    ("neptune", "rds"),
    ("neptunedata", "neptune-db"),
    ("opensearch", "es"),
    ("opensearchserverless", "aoss"),
    ("pinpoint", "mobiletargeting"),
    ("pinpoint-email", "ses"),
    ("pinpoint-sms-voice", "sms-voice"),
    ("pinpoint-sms-voice-v2", "sms-voice"),
    ("resourcegroupstaggingapi", "tag"),
    ("runtime.sagemaker", "sagemaker"),
    ("s3api", "s3"),
    ("s3control", "s3"),
    ("sagemaker-a2i-runtime", "sagemaker"),
    ("sagemaker-edge", "sagemaker"),
    ("sagemaker-featurestore-runtime", "sagemaker"),
    ("sagemaker-runtime", "sagemaker"),
    ("servicecatalog-appregistry", "servicecatalog"),
    ("sesv2", "ses"),
    ("stepfunctions", "states"),
    ("timestream-query", "timestream"),
    ("timestream-write", "timestream"),
];

fn iam_prefix(service: &str) -> &str {
    IAM_PREFIXES.iter().find(|(cli, _)| *cli == service).map_or(service, |(_, prefix)| prefix)
}

/// `describe-db-instances` ⇒ `DescribeDbInstances` (IAM compares case-insensitively).
fn camel(operation: &str) -> String {
    operation
        .split('-')
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map_or(String::new(), |first| first.to_uppercase().chain(chars).collect())
        })
        .collect()
}

/// s3api operations whose IAM action is not the operation's name (S3's authorization reference,
/// "Amazon S3 API operations and permissions"). Operations not listed are their own action
/// (`GetBucketPolicy`, `PutObjectTagging`, ...).
const S3API_ACTIONS: &[(&str, &[&str])] = &[
    ("complete-multipart-upload", &["PutObject"]),
    ("copy-object", &["PutObject"]),
    ("create-multipart-upload", &["PutObject"]),
    ("delete-bucket-analytics-configuration", &["PutAnalyticsConfiguration"]),
    ("delete-bucket-cors", &["PutBucketCORS"]),
    ("delete-bucket-encryption", &["PutEncryptionConfiguration"]),
    ("delete-bucket-intelligent-tiering-configuration", &["PutIntelligentTieringConfiguration"]),
    ("delete-bucket-inventory-configuration", &["PutInventoryConfiguration"]),
    ("delete-bucket-lifecycle", &["PutLifecycleConfiguration"]),
    ("delete-bucket-metrics-configuration", &["PutMetricsConfiguration"]),
    ("delete-bucket-ownership-controls", &["PutBucketOwnershipControls"]),
    ("delete-bucket-replication", &["PutReplicationConfiguration"]),
    ("delete-bucket-tagging", &["PutBucketTagging"]),
    ("delete-objects", &["DeleteObject"]),
    ("delete-public-access-block", &["PutBucketPublicAccessBlock"]),
    ("get-bucket-accelerate-configuration", &["GetAccelerateConfiguration"]),
    ("get-bucket-analytics-configuration", &["GetAnalyticsConfiguration"]),
    ("get-bucket-cors", &["GetBucketCORS"]),
    ("get-bucket-encryption", &["GetEncryptionConfiguration"]),
    ("get-bucket-intelligent-tiering-configuration", &["GetIntelligentTieringConfiguration"]),
    ("get-bucket-inventory-configuration", &["GetInventoryConfiguration"]),
    ("get-bucket-lifecycle", &["GetLifecycleConfiguration"]),
    ("get-bucket-lifecycle-configuration", &["GetLifecycleConfiguration"]),
    ("get-bucket-metrics-configuration", &["GetMetricsConfiguration"]),
    ("get-bucket-notification", &["GetBucketNotification"]),
    ("get-bucket-notification-configuration", &["GetBucketNotification"]),
    ("get-bucket-replication", &["GetReplicationConfiguration"]),
    ("get-object-attributes", &["GetObject", "GetObjectAttributes"]),
    ("get-object-lock-configuration", &["GetBucketObjectLockConfiguration"]),
    ("get-public-access-block", &["GetBucketPublicAccessBlock"]),
    ("head-bucket", &["ListBucket"]),
    ("head-object", &["GetObject"]),
    ("list-bucket-analytics-configurations", &["GetAnalyticsConfiguration"]),
    ("list-bucket-intelligent-tiering-configurations", &["GetIntelligentTieringConfiguration"]),
    ("list-bucket-inventory-configurations", &["GetInventoryConfiguration"]),
    ("list-bucket-metrics-configurations", &["GetMetricsConfiguration"]),
    ("list-buckets", &["ListAllMyBuckets"]),
    ("list-multipart-uploads", &["ListBucketMultipartUploads"]),
    ("list-object-versions", &["ListBucketVersions"]),
    ("list-objects", &["ListBucket"]),
    ("list-objects-v2", &["ListBucket"]),
    ("list-parts", &["ListMultipartUploadParts"]),
    ("put-bucket-accelerate-configuration", &["PutAccelerateConfiguration"]),
    ("put-bucket-analytics-configuration", &["PutAnalyticsConfiguration"]),
    ("put-bucket-cors", &["PutBucketCORS"]),
    ("put-bucket-encryption", &["PutEncryptionConfiguration"]),
    ("put-bucket-intelligent-tiering-configuration", &["PutIntelligentTieringConfiguration"]),
    ("put-bucket-inventory-configuration", &["PutInventoryConfiguration"]),
    ("put-bucket-lifecycle", &["PutLifecycleConfiguration"]),
    ("put-bucket-lifecycle-configuration", &["PutLifecycleConfiguration"]),
    ("put-bucket-metrics-configuration", &["PutMetricsConfiguration"]),
    ("put-bucket-notification", &["PutBucketNotification"]),
    ("put-bucket-notification-configuration", &["PutBucketNotification"]),
    ("put-bucket-replication", &["PutReplicationConfiguration"]),
    ("put-object-lock-configuration", &["PutBucketObjectLockConfiguration"]),
    ("put-public-access-block", &["PutBucketPublicAccessBlock"]),
    ("select-object-content", &["GetObject"]),
    ("upload-part", &["PutObject"]),
    ("upload-part-copy", &["PutObject"]),
];

/// Operations of other services authorised as another action (the services' authorization
/// references), or needing a second one.
const OPERATION_ACTIONS: &[(&str, &[&str])] = &[
    ("bedrock-runtime converse", &["bedrock:InvokeModel"]),
    ("bedrock-runtime converse-stream", &["bedrock:InvokeModelWithResponseStream"]),
    ("codeartifact get-authorization-token", &["codeartifact:GetAuthorizationToken", "sts:GetServiceBearerToken"]),
    ("ecr-public get-authorization-token", &["ecr-public:GetAuthorizationToken", "sts:GetServiceBearerToken"]),
    ("lambda invoke", &["lambda:InvokeFunction"]),
    ("lambda invoke-async", &["lambda:InvokeFunction"]),
    ("lambda invoke-with-response-stream", &["lambda:InvokeFunction"]),
];

fn api_call(service: &str, operation: &str, args: &Args, out: &mut Builder) -> Result<(), String> {
    if let Some((_, actions)) = OPERATION_ACTIONS.iter().find(|(p, _)| p.split_once(' ') == Some((service, operation)))
    {
        let resources = arn_resources(args);
        for action in *actions {
            // A service bearer token is not a resource of the command's.
            let on: &[String] = if action.starts_with("sts:") { &[] } else { &resources };
            if on.is_empty() {
                out.add(action, "*");
            }
            for resource in on {
                out.add(action, resource);
            }
        }
        return Ok(());
    }
    match service {
        "s3api" => return s3api_call(operation, args, out),
        // API Gateway's management API is authorised by HTTP method, not by operation.
        "apigateway" | "apigatewayv2" => {
            let verb = operation.split('-').next().unwrap_or("");
            let method = match verb {
                "get" => "GET",
                "create" | "generate" | "import" | "test" => "POST",
                "delete" | "flush" | "untag" | "reset" => "DELETE",
                "update" => "PATCH",
                "put" | "tag" | "reimport" => "PUT",
                _ => {
                    return Err(format!(
                        "`aws {service} {operation}`: guardsh does not know which HTTP method API Gateway authorises it as"
                    ));
                }
            };
            out.add(&format!("apigateway:{method}"), "*");
            return Ok(());
        }
        "apigatewaymanagementapi" => {
            out.add("execute-api:ManageConnections", "*");
            return Ok(());
        }
        _ => {}
    }
    let action = format!("{}:{}", iam_prefix(service), camel(operation));
    for resource in arn_resources(args) {
        out.add(&action, &resource);
    }
    Ok(())
}

/// The ARNs the options name, or `*` (module comment, "Resources").
fn arn_resources(args: &Args) -> Vec<String> {
    if args.params_in_document() || !args.rest.is_empty() || args.doubtful {
        // Extra words may be more values of a list option; a document may name anything.
        return vec!["*".into()];
    }
    let names_resource = |name: &str| {
        name == "--arn" || ["-arn", "-arns", "-name", "-id", "-identifier"].iter().any(|suffix| name.ends_with(suffix))
    };
    let mut arns = Vec::new();
    for flag in args.argv.flags.iter().filter(|f| names_resource(&f.name)) {
        match flag.value.as_deref() {
            Some(v) if is_arn(v) => arns.push(literal(v)),
            // `--role-name x`, `--function-name x`: names a resource without its ARN.
            _ => return vec!["*".into()],
        }
    }
    if arns.is_empty() { vec!["*".into()] } else { arns }
}

fn s3api_call(operation: &str, args: &Args, out: &mut Builder) -> Result<(), String> {
    let owned;
    let actions: Vec<&str> = match S3API_ACTIONS.iter().find(|(op, _)| *op == operation) {
        Some((_, actions)) => actions.to_vec(),
        None => {
            owned = camel(operation);
            vec![owned.as_str()]
        }
    };
    // get-object and get-object-torrent take the output file as their one positional word.
    let outfile = usize::from(matches!(operation, "get-object" | "get-object-torrent"));
    let resource = if args.params_in_document() || args.rest.len() > outfile || args.doubtful {
        "*".to_string()
    } else {
        match (args.value("--bucket")?, args.value("--key")?) {
            (Some(bucket), _) if bucket.starts_with("arn:") => "*".to_string(),
            (Some(bucket), _) if operation == "delete-objects" => s3_arn(args, bucket, Some("*"))?,
            (Some(bucket), Some(key)) => s3_arn(args, bucket, Some(&literal(key)))?,
            (Some(bucket), None) => s3_arn(args, bucket, None)?,
            (None, _) if operation == "list-buckets" => "*".to_string(),
            (None, _) => "*".to_string(),
        }
    };
    for action in actions {
        out.add(&format!("s3:{action}"), &resource);
    }
    // A copy reads its source: `--copy-source bucket/key` (or `bucket/key?versionId=...`).
    if matches!(operation, "copy-object" | "upload-part-copy") {
        let source = match args.value("--copy-source")? {
            Some(src) if !args.params_in_document() && !src.starts_with("arn:") => {
                let src = src.split('?').next().unwrap_or(src).trim_start_matches('/');
                match src.split_once('/') {
                    Some((bucket, key)) if !key.is_empty() => s3_arn(args, bucket, Some(&literal(key)))?,
                    _ => return Err(format!("--copy-source {src} names no bucket/key; write it as BUCKET/KEY")),
                }
            }
            _ => "*".to_string(),
        };
        out.add("s3:GetObject", &source);
    }
    Ok(())
}

/// `arn:aws:s3:::bucket` or `arn:aws:s3:::bucket/KEY`; `key` is already literal (or a pattern).
fn s3_arn(args: &Args, bucket: &str, key: Option<&str>) -> Result<String, String> {
    // S3 bucket names: 3-63 of lowercase letters, digits, dots and hyphens (older buckets may
    // have capitals and underscores). Anything else is not a bucket guardsh can name.
    if bucket.is_empty()
        || bucket.len() > 255
        || !bucket.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
    {
        return Err(format!("`{bucket}` is not an S3 bucket name guardsh can turn into an ARN"));
    }
    Ok(match key {
        Some(key) => format!("arn:{}:s3:::{bucket}/{key}", args.partition),
        None => format!("arn:{}:s3:::{bucket}", args.partition),
    })
}

// ---------------------------------------------------------------------------------------------
// Waiters

const WAITERS: &str = include_str!("aws_waiters.tsv");

fn waiter_calls(service: &str, waiter: &str, args: &Args, out: &mut Builder) -> Result<(), String> {
    let key = format!("{service} {waiter}");
    let operation = WAITERS
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('\t'))
        .find(|(k, _)| *k == key)
        .map(|(_, op)| op)
        .ok_or_else(|| {
            format!("`aws {service} wait {waiter}`: guardsh does not know which operation this waiter polls")
        })?;
    // Back to the CLI's spelling, so the operation goes through the same derivation as when typed.
    let mut kebab = String::new();
    for (i, c) in operation.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            kebab.push('-');
        }
        kebab.push(c.to_ascii_lowercase());
    }
    if service == "s3api" {
        return s3api_call(&kebab, args, out);
    }
    api_call(service, &kebab, args, out)
}

// ---------------------------------------------------------------------------------------------
// awscli's own commands

/// awscli's commands that are not one operation, with the calls they make (from awscli's
/// source, `awscli/customizations/`). Resources are `*` unless the entry says otherwise.
const CUSTOM: &[(&str, &[&str])] = &[
    // DescribeStacks, CreateChangeSet, the change-set waiter, ExecuteChangeSet, the stack waiter;
    // GetTemplateSummary when checking parameters. Without `--role-arn`, CloudFormation creates
    // the template's resources with these credentials: those calls are not derived (module doc).
    (
        "cloudformation deploy",
        &[
            "cloudformation:CreateChangeSet",
            "cloudformation:DescribeChangeSet",
            "cloudformation:DescribeStackEvents",
            "cloudformation:DescribeStacks",
            "cloudformation:ExecuteChangeSet",
            "cloudformation:GetTemplateSummary",
        ],
    ),
    (
        "codeartifact login",
        &["codeartifact:GetAuthorizationToken", "codeartifact:GetRepositoryEndpoint", "sts:GetServiceBearerToken"],
    ),
    ("ecr get-login", &["ecr:GetAuthorizationToken"]),
    ("ecr get-login-password", &["ecr:GetAuthorizationToken"]),
    ("ecr-public get-login-password", &["ecr-public:GetAuthorizationToken", "sts:GetServiceBearerToken"]),
    // A pre-signed GetCallerIdentity: no call is made, and that action needs no permission. The
    // token is the assumed role's identity for the cluster, and lapses with the minted keys.
    ("eks get-token", &["sts:GetCallerIdentity"]),
    ("eks update-kubeconfig", &["eks:DescribeCluster"]),
    // A local signature over the role's identity, no call; the token lapses with the minted keys.
    ("rds generate-db-auth-token", &["rds-db:connect"]),
];

fn custom_calls(actions: &[&str], args: &Args, out: &mut Builder) -> Result<(), String> {
    if args.doubtful {
        return Err("a word of this command may be an unknown option's value, so it is in doubt".into());
    }
    for action in actions {
        out.add(action, "*");
    }
    // `eks get-token --role-arn R` assumes R first, with these credentials.
    if actions.contains(&"sts:GetCallerIdentity")
        && let Some(role) = args.value("--role-arn")?
    {
        out.add("sts:AssumeRole", &if is_arn(role) { literal(role) } else { "*".to_string() });
    }
    Ok(())
}

/// awscli's commands guardsh does not derive calls for, and why.
const CUSTOM_UNDERIVED: &[(&str, &str)] = &[
    ("cloudformation package", "it uploads whatever local artifacts the template names, to an S3 prefix it chooses"),
    ("cloudfront sign", "it signs a URL with a CloudFront key pair on disk; no AWS call"),
    ("cloudtrail create-subscription", "it creates a bucket, a topic and a trail in several services"),
    ("cloudtrail update-subscription", "it changes a bucket, a topic and a trail in several services"),
    ("cloudtrail validate-logs", "it reads digest files from buckets the trail names"),
    ("codecommit credential-helper", "it is git's credential helper and signs locally"),
    ("configservice get-status", "it calls several describe operations"),
    ("configservice subscribe", "it creates a bucket, a topic and a recorder in several services"),
    ("configure", "it changes only local configuration and needs no AWS credentials"),
    ("configure add-model", "it changes only local configuration and needs no AWS credentials"),
    ("configure get", "it reads only local configuration and needs no AWS credentials"),
    ("configure list", "it reads only local configuration and needs no AWS credentials"),
    ("configure set", "it changes only local configuration and needs no AWS credentials"),
    ("datapipeline create-default-roles", "it creates IAM roles and policies"),
    ("datapipeline list-runs", "it calls several operations"),
    ("deploy deregister", "it calls CodeDeploy and IAM"),
    ("deploy install", "it downloads and installs the CodeDeploy agent here"),
    ("deploy push", "it bundles local files to an S3 location and registers a revision"),
    ("deploy register", "it creates an IAM user and registers it with CodeDeploy"),
    ("deploy uninstall", "it removes the local CodeDeploy agent; no AWS call"),
    ("dlm create-default-role", "it creates an IAM role"),
    ("ecs deploy", "it calls ECS and CodeDeploy several times"),
    ("emr add-steps", "awscli builds the steps and calls several EMR operations"),
    ("emr create-cluster", "it calls RunJobFlow with roles it may create in IAM"),
    ("emr create-default-roles", "it creates IAM roles and instance profiles"),
    ("emr create-hbase-backup", "it runs a step on the cluster"),
    ("emr disable-hbase-backups", "it runs a step on the cluster"),
    ("emr get", "it copies a file from the cluster over ssh"),
    ("emr install-applications", "it runs a step on the cluster"),
    ("emr modify-cluster-attributes", "it calls several EMR operations"),
    ("emr put", "it copies a file to the cluster over ssh"),
    ("emr restore-from-hbase-backup", "it runs a step on the cluster"),
    ("emr schedule-hbase-backup", "it runs a step on the cluster"),
    ("emr socks", "it opens an ssh tunnel to the cluster"),
    ("emr ssh", "it opens an ssh session to the cluster"),
    ("emr terminate-clusters", "it calls TerminateJobFlows for each cluster"),
    ("emr-containers update-role-trust-policy", "it rewrites an IAM role's trust policy"),
    ("gamelift get-game-session-log", "it downloads the log from a pre-signed URL"),
    ("gamelift upload-build", "it creates a build and uploads local files to S3"),
    ("history list", "it reads only local history and needs no AWS credentials"),
    ("history show", "it reads only local history and needs no AWS credentials"),
    ("servicecatalog generate", "it uploads a template to S3 and creates products in several calls"),
];

// ---------------------------------------------------------------------------------------------
// The high-level `aws s3` commands

/// One side of `s3 cp`/`mv`/`sync`: a local path or an S3 location.
enum Place<'a> {
    Local(&'a str),
    S3 { bucket: &'a str, key: &'a str },
}

fn place(word: &str) -> Result<Place<'_>, String> {
    let Some(rest) = word.strip_prefix("s3://") else { return Ok(Place::Local(word)) };
    let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(format!("`{word}` names no bucket"));
    }
    if bucket.starts_with("arn:") {
        return Err(format!("`{word}` names an access point; guardsh derives session policies only for bucket names"));
    }
    Ok(Place::S3 { bucket, key })
}

/// The objects a command touches under `key`: one object, or with `recursive` every key below it
/// (awscli treats a recursive path as a directory and adds the `/`).
fn objects(args: &Args, bucket: &str, key: &str, recursive: bool) -> Result<String, String> {
    if recursive {
        let prefix = if key.is_empty() || key.ends_with('/') { key.to_string() } else { format!("{key}/") };
        s3_arn(args, bucket, Some(&format!("{}*", literal(&prefix))))
    } else if key.is_empty() {
        Err(format!("s3://{bucket} names a bucket, not an object; name the object or add --recursive"))
    } else {
        s3_arn(args, bucket, Some(&literal(key)))
    }
}

/// The file name a local path ends in, which awscli appends to a destination ending in `/`.
fn file_name(path: &str) -> Option<&str> {
    let name = path.rsplit('/').next()?;
    (!name.is_empty() && name != "." && name != ".." && name != "-").then_some(name)
}

fn s3_command(command: &str, args: &Args, out: &mut Builder) -> Result<(), String> {
    if args.doubtful {
        return Err(format!(
            "a word of `aws s3 {command}` may be an unknown option's value, so its paths are in doubt"
        ));
    }
    let recursive = args.has("--recursive");
    let bucket_of = |word: &str| -> Result<String, String> {
        match place(word)? {
            Place::S3 { bucket, .. } => s3_arn(args, bucket, None),
            Place::Local(_) => Err(format!("`{word}` is not an s3:// location")),
        }
    };
    match (command, args.rest.as_slice()) {
        ("ls", []) => out.add("s3:ListAllMyBuckets", "*"),
        ("ls", [target]) => out.add("s3:ListBucket", &bucket_of(target)?),
        ("mb", [target]) => out.add("s3:CreateBucket", &bucket_of(target)?),
        ("rb", [target]) => {
            let bucket = bucket_of(target)?;
            out.add("s3:DeleteBucket", &bucket);
            if args.has("--force") {
                out.add("s3:ListBucket", &bucket);
                out.add("s3:DeleteObject", &format!("{bucket}/*"));
            }
        }
        ("website", [target]) => out.add("s3:PutBucketWebsite", &bucket_of(target)?),
        ("presign", [target]) => match place(target)? {
            Place::S3 { bucket, key } => out.add("s3:GetObject", &objects(args, bucket, key, false)?),
            Place::Local(_) => return Err(format!("`{target}` is not an s3:// location")),
        },
        ("rm", [target]) => match place(target)? {
            Place::S3 { bucket, key } => {
                if recursive {
                    out.add("s3:ListBucket", &s3_arn(args, bucket, None)?);
                }
                out.add("s3:DeleteObject", &objects(args, bucket, key, recursive)?);
            }
            Place::Local(_) => return Err(format!("`{target}` is not an s3:// location")),
        },
        ("cp" | "mv" | "sync", [from, to]) => {
            let sync = command == "sync";
            // sync works on directories, as --recursive does.
            let tree = recursive || sync;
            let (from, to) = (place(from)?, place(to)?);
            if let (Place::Local(_), Place::Local(_)) = (&from, &to) {
                return Err(format!("`aws s3 {command}` between two local paths makes no AWS call"));
            }
            if let Place::S3 { bucket, key } = from {
                if tree {
                    out.add("s3:ListBucket", &s3_arn(args, bucket, None)?);
                }
                let source = objects(args, bucket, key, tree)?;
                out.add("s3:GetObject", &source);
                if command == "mv" {
                    out.add("s3:DeleteObject", &source);
                }
            }
            if let Place::S3 { bucket, key } = to {
                let target = if !tree && (key.is_empty() || key.ends_with('/')) {
                    // The object is named after the source's last path word.
                    let source_name = match &from {
                        Place::Local(path) => file_name(path),
                        Place::S3 { key, .. } => file_name(key),
                    };
                    let name = source_name.ok_or_else(|| {
                        format!("guardsh cannot tell which key `aws s3 {command}` writes in s3://{bucket}/{key}; name the object")
                    })?;
                    objects(args, bucket, &format!("{key}{name}"), false)?
                } else {
                    objects(args, bucket, key, tree)?
                };
                if sync {
                    out.add("s3:ListBucket", &s3_arn(args, bucket, None)?);
                    if args.has("--delete") {
                        out.add("s3:DeleteObject", &target);
                    }
                }
                out.add("s3:PutObject", &target);
                if args.has("--acl") || args.has("--grants") {
                    out.add("s3:PutObjectAcl", &target);
                }
            }
        }
        (command, words) => {
            return Err(format!(
                "`aws s3 {command}` with {} path(s) is not a form guardsh derives a session policy for",
                words.len()
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::ffi::OsString;

    use super::*;
    use crate::tools::RawToolSpec;

    fn parse(line: &str) -> (NormalizedArgv, Option<Class>) {
        let spec = RawToolSpec::parse(crate::tools::builtin("aws").expect("aws ships"))
            .expect("parses")
            .build()
            .expect("builds");
        let words = shell_words(line);
        let args: Vec<OsString> = words.iter().skip(1).map(OsString::from).collect();
        let argv = crate::matching::normalize::normalize(&args, &spec);
        let class = crate::posture::read("aws", &spec, &argv).and_then(|r| r.class());
        (argv, class)
    }

    /// Enough of the shell's quoting for the corpus: single and double quotes, no expansions.
    fn shell_words(line: &str) -> Vec<String> {
        let mut words = Vec::new();
        let mut word = String::new();
        let mut in_word = false;
        let mut quote: Option<char> = None;
        for c in line.chars() {
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (Some(_), c) => word.push(c),
                (None, '\'' | '"') => {
                    quote = Some(c);
                    in_word = true;
                }
                (None, c) if c.is_whitespace() => {
                    if in_word {
                        words.push(std::mem::take(&mut word));
                        in_word = false;
                    }
                }
                (None, c) => {
                    word.push(c);
                    in_word = true;
                }
            }
        }
        if in_word {
            words.push(word);
        }
        words
    }

    fn derive(line: &str) -> Result<SessionPolicy, String> {
        let (argv, class) = parse(line);
        session_policy(&argv, class.ok_or_else(|| format!("{line}: not in the catalog"))?)
    }

    /// `action@resource` pairs, sorted.
    fn pairs(policy: &SessionPolicy) -> Vec<String> {
        let mut out: Vec<String> = policy
            .statements
            .iter()
            .flat_map(|s| s.actions.iter().flat_map(move |a| s.resources.iter().map(move |r| format!("{a}@{r}"))))
            .collect();
        out.sort();
        out
    }

    const B: &str = "arn:aws:s3:::b";

    #[test]
    fn commands_yield_their_actions_and_resources() {
        let read = |p: &str| vec![format!("{p}:Describe*@*"), format!("{p}:List*@*")];
        let table: Vec<(&str, Vec<String>)> = vec![
            // The high-level s3 commands.
            ("aws s3 ls", vec!["s3:ListAllMyBuckets@*".into()]),
            ("aws s3 ls s3://b", vec![format!("s3:ListBucket@{B}")]),
            ("aws s3 ls s3://b/logs/ --recursive", vec![format!("s3:ListBucket@{B}")]),
            ("aws --profile prod s3 ls s3://b/", vec![format!("s3:ListBucket@{B}")]),
            ("aws s3 mb s3://b", vec![format!("s3:CreateBucket@{B}")]),
            ("aws s3 rb s3://b", vec![format!("s3:DeleteBucket@{B}")]),
            (
                "aws s3 rb s3://b --force",
                vec![format!("s3:DeleteBucket@{B}"), format!("s3:DeleteObject@{B}/*"), format!("s3:ListBucket@{B}")],
            ),
            ("aws s3 cp s3://b/k .", vec![format!("s3:GetObject@{B}/k")]),
            ("aws s3 cp s3://b/dir/k.txt -", vec![format!("s3:GetObject@{B}/dir/k.txt")]),
            ("aws s3 cp ./report.csv s3://b/in/", vec![format!("s3:PutObject@{B}/in/report.csv")]),
            ("aws s3 cp report.csv s3://b/in/r.csv", vec![format!("s3:PutObject@{B}/in/r.csv")]),
            (
                "aws s3 cp ./site s3://b/www --recursive",
                vec![format!("s3:PutObject@{B}/www/*")],
            ),
            (
                "aws s3 cp s3://b/data ./data --recursive",
                vec![format!("s3:GetObject@{B}/data/*"), format!("s3:ListBucket@{B}")],
            ),
            (
                "aws s3 cp s3://a/x s3://b/y",
                vec!["s3:GetObject@arn:aws:s3:::a/x".into(), format!("s3:PutObject@{B}/y")],
            ),
            (
                "aws s3 cp f.txt s3://b/f.txt --acl public-read",
                vec![format!("s3:PutObject@{B}/f.txt"), format!("s3:PutObjectAcl@{B}/f.txt")],
            ),
            (
                "aws s3 mv s3://b/old.txt s3://b/new.txt",
                vec![
                    format!("s3:DeleteObject@{B}/old.txt"),
                    format!("s3:GetObject@{B}/old.txt"),
                    format!("s3:PutObject@{B}/new.txt"),
                ],
            ),
            (
                "aws s3 mv s3://a/ s3://b/ --recursive",
                vec![
                    "s3:DeleteObject@arn:aws:s3:::a/*".into(),
                    "s3:GetObject@arn:aws:s3:::a/*".into(),
                    "s3:ListBucket@arn:aws:s3:::a".into(),
                    format!("s3:PutObject@{B}/*"),
                ],
            ),
            ("aws s3 rm s3://b/k", vec![format!("s3:DeleteObject@{B}/k")]),
            (
                "aws s3 rm s3://b/tmp --recursive",
                vec![format!("s3:DeleteObject@{B}/tmp/*"), format!("s3:ListBucket@{B}")],
            ),
            (
                "aws s3 sync ./out s3://b/out",
                vec![format!("s3:ListBucket@{B}"), format!("s3:PutObject@{B}/out/*")],
            ),
            (
                "aws s3 sync ./out s3://b --delete",
                vec![format!("s3:DeleteObject@{B}/*"), format!("s3:ListBucket@{B}"), format!("s3:PutObject@{B}/*")],
            ),
            (
                "aws s3 sync s3://b/in ./in",
                vec![format!("s3:GetObject@{B}/in/*"), format!("s3:ListBucket@{B}")],
            ),
            ("aws s3 presign s3://b/k --expires-in 60", vec![format!("s3:GetObject@{B}/k")]),
            ("aws s3 website s3://b --index-document index.html", vec![format!("s3:PutBucketWebsite@{B}")]),
            // A key's wildcard characters stay literal.
            ("aws s3 rm s3://b/a*b?c$d", vec![format!("s3:DeleteObject@{B}/a${{*}}b${{?}}c${{$}}d")]),
            ("aws --region cn-north-1 s3 rm s3://b/k", vec!["s3:DeleteObject@arn:aws-cn:s3:::b/k".into()]),
            // s3api: actions that are not the operation's name, and bucket/key resources.
            ("aws s3api list-objects-v2 --bucket b", vec![format!("s3:ListBucket@{B}")]),
            ("aws s3api list-buckets", vec!["s3:ListAllMyBuckets@*".into()]),
            ("aws s3api head-object --bucket b --key k", vec![format!("s3:GetObject@{B}/k")]),
            ("aws s3api get-object --bucket b --key a/k out.bin", vec![format!("s3:GetObject@{B}/a/k")]),
            ("aws s3api put-object --bucket b --key k --body f", vec![format!("s3:PutObject@{B}/k")]),
            ("aws s3api delete-bucket --bucket=b", vec![format!("s3:DeleteBucket@{B}")]),
            ("aws s3api delete-objects --bucket b --delete=file://keys.json", vec![format!("s3:DeleteObject@{B}/*")]),
            // aws.toml reads `--delete` as s3 sync's switch, so the document is a positional word
            // here, which may be more values: the resource is `*`.
            ("aws s3api delete-objects --bucket b --delete file://keys.json", vec!["s3:DeleteObject@*".into()]),
            ("aws s3api delete-bucket-policy --bucket b", vec![format!("s3:DeleteBucketPolicy@{B}")]),
            ("aws s3api delete-bucket-lifecycle --bucket b", vec![format!("s3:PutLifecycleConfiguration@{B}")]),
            (
                "aws s3api copy-object --bucket b --key k2 --copy-source a/k1",
                vec!["s3:GetObject@arn:aws:s3:::a/k1".into(), format!("s3:PutObject@{B}/k2")],
            ),
            ("aws s3api wait object-exists --bucket b --key k", vec![format!("s3:GetObject@{B}/k")]),
            ("aws s3api get-bucket-policy --bucket file://name.txt", vec!["s3:GetBucketPolicy@*".into()]),
            // Other services: prefix, CamelCase, ARNs, and the reads.
            ("aws ec2 terminate-instances --instance-ids i-123", vec!["ec2:TerminateInstances@*".into()]),
            (
                "aws ec2 describe-instances",
                [vec!["ec2:DescribeInstances@*".to_string()], read("ec2")].concat(),
            ),
            ("aws rds delete-db-instance --db-instance-identifier prod --skip-final-snapshot", vec!["rds:DeleteDbInstance@*".into()]),
            (
                "aws elbv2 delete-load-balancer --load-balancer-arn arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/x/1",
                vec!["elasticloadbalancing:DeleteLoadBalancer@arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/x/1".into()],
            ),
            (
                "aws sns publish --topic-arn arn:aws:sns:us-east-1:123456789012:t --message hi",
                vec!["sns:Publish@arn:aws:sns:us-east-1:123456789012:t".into()],
            ),
            (
                "aws iam attach-role-policy --role-name r --policy-arn arn:aws:iam::aws:policy/ReadOnlyAccess",
                vec!["iam:AttachRolePolicy@*".into()],
            ),
            (
                "aws lambda delete-function --function-name arn:aws:lambda:us-east-1:123456789012:function:f",
                vec!["lambda:DeleteFunction@arn:aws:lambda:us-east-1:123456789012:function:f".into()],
            ),
            ("aws lambda invoke --function-name f out.json", vec!["lambda:InvokeFunction@*".into()]),
            (
                "aws eks get-token --cluster-name c --role-arn arn:aws:iam::1:role/k",
                vec!["sts:AssumeRole@arn:aws:iam::1:role/k".into(), "sts:GetCallerIdentity@*".into()],
            ),
            (
                "aws codeartifact get-authorization-token --domain d",
                vec!["codeartifact:GetAuthorizationToken@*".into(), "sts:GetServiceBearerToken@*".into()],
            ),
            ("aws dynamodb delete-table --table-name users", vec!["dynamodb:DeleteTable@*".into()]),
            ("aws configservice delete-config-rule --config-rule-name r", vec!["config:DeleteConfigRule@*".into()]),
            ("aws stepfunctions start-execution --state-machine-arn arn:aws:states:us-east-1:1:stateMachine:s", vec!["states:StartExecution@arn:aws:states:us-east-1:1:stateMachine:s".into()]),
            (
                "aws logs describe-log-groups",
                [vec!["logs:DescribeLogGroups@*".to_string()], read("logs")].concat(),
            ),
            (
                "aws sts get-caller-identity",
                [vec!["sts:GetCallerIdentity@*".to_string()], read("sts")].concat(),
            ),
            ("aws apigateway delete-rest-api --rest-api-id a1", vec!["apigateway:DELETE@*".into()]),
            ("aws ec2 wait instance-running --instance-ids i-1", vec!["ec2:DescribeInstances@*".into()]),
            // A hidden alias is the command it aliases (`get-otel-enrichment`).
            ("aws cloudwatch get-o-tel-enrichment", [vec!["cloudwatch:GetOtelEnrichment@*".to_string()], read("cloudwatch")].concat()),
            // awscli's own commands with a table.
            ("aws ecr get-login-password", vec!["ecr:GetAuthorizationToken@*".into()]),
            ("aws eks update-kubeconfig --name prod", vec!["eks:DescribeCluster@*".into()]),
            ("aws rds generate-db-auth-token --hostname db --port 5432 --username app", vec!["rds-db:connect@*".into()]),
        ];
        assert!(table.len() >= 40, "the brief asks for 40 rows at least");
        for (line, want) in &table {
            let policy = derive(line).unwrap_or_else(|e| panic!("{line}: {e}"));
            let mut want = want.clone();
            want.sort();
            assert_eq!(pairs(&policy), want, "{line}\n{}", policy.to_json());
        }
    }

    #[test]
    fn underivable_commands_are_errors_that_say_why() {
        for (line, says) in [
            ("aws configure", "local configuration"),
            ("aws configure set region eu-west-1", "local configuration"),
            ("aws s3", "names a service"),
            ("aws ec2", "names a service"),
            ("aws frobnicate do-it", "not a command of the aws catalog"),
            ("aws ec2 frobnicate-instances", "not a command of the aws catalog"),
            ("aws emr ssh --cluster-id j-1 --key-pair-file k.pem", "awscli's own command"),
            ("aws s3 cp a b", "two local paths"),
            ("aws s3 rm s3://b", "names a bucket, not an object"),
            ("aws s3 cp . s3://b/", "cannot tell which key"),
            ("aws s3 ls s3://arn:aws:s3:us-west-2:1:accesspoint/ap", "access point"),
            ("aws apigateway get-export --rest-api-id a --stage-name s --export-type swagger out", "GET"),
        ] {
            // A command the catalog does not know has no class; the derivation refuses it anyway.
            let (argv, class) = parse(line);
            match session_policy(&argv, class.unwrap_or(Class::Write)) {
                Err(e) => assert!(e.contains(says), "{line}: {e}"),
                Ok(p) if says == "GET" => assert_eq!(pairs(&p), vec!["apigateway:GET@*"], "{line}"),
                Ok(p) => panic!("{line}: expected an error, got {}", p.to_json()),
            }
        }
    }

    #[test]
    fn the_document_is_packed_iam_json_and_the_limit_is_enforced() {
        let policy = derive("aws s3 cp s3://b/k .").expect("derives");
        assert_eq!(
            policy.to_json(),
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:GetObject"],"Resource":["arn:aws:s3:::b/k"]}]}"#
        );
        let value: serde_json::Value =
            serde_json::from_str(&derive("aws s3 rb s3://b --force").expect("derives").to_json()).expect("valid JSON");
        // DeleteBucket and ListBucket share the bucket: one statement; DeleteObject the other.
        assert_eq!(value["Statement"].as_array().map(Vec::len), Some(2));
        let key = "k".repeat(2100);
        let err = derive(&format!("aws s3 rm s3://b/{key}")).expect_err("too long");
        assert!(err.contains("over STS's 2048"), "{err}");
        // A quote in a key is escaped, not a way out of the string.
        let policy = derive(r#"aws s3 rm 's3://b/a"b\c'"#).expect("derives");
        let value: serde_json::Value = serde_json::from_str(&policy.to_json()).expect("valid JSON");
        assert_eq!(value["Statement"][0]["Resource"][0], r#"arn:aws:s3:::b/a"b\c"#);
    }

    #[test]
    fn a_path_that_is_an_unknown_options_value_is_no_path() {
        // The catalog says an unknown option takes a value, as awscli does: no path is left.
        let err = derive("aws s3 rm --frobnicate s3://b/k").expect_err("no path");
        assert!(err.contains("with 0 path(s)"), "{err}");
    }

    #[test]
    fn every_waiter_names_an_operation_of_a_catalogued_service() {
        let catalog = catalog::for_tool("aws").expect("aws catalog");
        let mut n = 0;
        for line in WAITERS.lines().filter(|l| !l.starts_with('#')) {
            let (path, op) = line.split_once('\t').expect("two columns");
            let (service, waiter) = path.split_once(' ').expect("service and waiter");
            let words = vec![service.to_string(), "wait".to_string(), waiter.to_string()];
            assert!(matches!(catalog.lookup(&words), Lookup::Known(_)), "{path} is not in the catalog");
            assert!(op.starts_with(|c: char| c.is_ascii_uppercase()), "{line}");
            n += 1;
        }
        assert!(n > 300, "{n} waiters");
    }

    /// Every aws row of the corpora that is allowed or asked (tests/corpus/aws.tsv) or labelled
    /// with a class (tests/corpus/labelled/aws.tsv) yields a policy or one of the errors below.
    #[test]
    fn corpus_rows_yield_a_policy_or_a_listed_error() {
        let plain = include_str!("../../tests/corpus/aws.tsv");
        let labelled = include_str!("../../tests/corpus/labelled/aws.tsv");
        let mut lines = Vec::new();
        for row in plain.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
            let cols: Vec<&str> = row.split('\t').collect();
            if matches!(cols.first(), Some(&"allow" | &"ask")) && cols.len() >= 3 {
                lines.push(cols[2]);
            }
        }
        for row in labelled.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
            let cols: Vec<&str> = row.split('\t').collect();
            if cols.len() >= 2 {
                lines.push(cols[1]);
            }
        }
        // Why a row may have no policy, by a word of the error.
        let accepted = [
            "certainty", // the normaliser's doubt
            "not a command of the aws catalog",
            "awscli's own command",
            "names a service",
            "names a bucket, not an object",
            "cannot tell which key",
            "access point",
            "is not an s3:// location",
            "HTTP method",
            "in doubt",
            "is not a form guardsh derives",
            "two local paths",
            "more than once",
            "help",
        ];
        let (mut ok, mut errs) = (0, BTreeMap::<String, Vec<String>>::new());
        for line in &lines {
            let (argv, class) = parse(line);
            let Some(class) = class else {
                errs.entry("not in the catalog (help, --version)".into()).or_default().push(line.to_string());
                continue;
            };
            match session_policy(&argv, class) {
                Ok(p) => {
                    ok += 1;
                    if std::env::var_os("GUARDSH_DUMP_POLICIES").is_some() {
                        eprintln!("DUMP {line}\t{}", pairs(&p).join(" "));
                    }
                }
                Err(e) => {
                    let why = accepted.iter().find(|w| e.contains(*w)).map(|w| w.to_string());
                    let why = why.unwrap_or_else(|| panic!("{line}: an error not listed: {e}"));
                    errs.entry(why).or_default().push(line.to_string());
                }
            }
        }
        let mut report = format!("{} rows: {ok} policies\n", lines.len());
        for (why, rows) in &errs {
            report.push_str(&format!(
                "  {} × {why}: {}\n",
                rows.len(),
                rows.iter().take(3).cloned().collect::<Vec<_>>().join(" | ")
            ));
        }
        eprintln!("{report}");
        assert!(ok * 10 >= lines.len() * 8, "fewer than 80% of the corpus rows yield a policy:\n{report}");
    }
}
