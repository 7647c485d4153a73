//! Reads the SQL a database client is about to run and says whether it only reads.
//!
//! Pure: text in, class out. Conservative by construction: a statement is a read only if it is
//! one of a short list of reading kinds and nothing inside it writes; anything else, and anything
//! that does not parse, is not a read. The caller decides what "not a read" means (the shipped
//! policy asks). What the clients run besides SQL (psql's meta-commands, the mysql client's
//! commands) is read in `client`; mongosh's JavaScript in `mongo`.

use std::ops::ControlFlow;

use sqlparser::ast::{Expr, Statement, TableFactor, Visit, Visitor};
use sqlparser::dialect::{Dialect, MySqlDialect, PostgreSqlDialect};
use sqlparser::parser::Parser;

mod client;
mod mongo;

pub(crate) use client::has_psql_variable;
pub use client::{classify_mysql, classify_psql, psql_connection_overrides};
pub use mongo::classify_mongosh;

/// What some SQL does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SqlClass {
    /// Only reads (or nothing at all).
    Read,
    /// Only adds: inserts rows or creates objects, and reads (the first such statement, in
    /// words). Nothing that was there before is changed or removed.
    Add(String),
    /// Writes, or may: the first statement or construct that does, in words.
    Write(String),
    /// Cannot be read with certainty: does not parse, uses client features guardsh does not
    /// follow, or comes from somewhere that can change after it is read.
    Unknown(String),
}

/// Functions a reading query may call: built-ins that only compute or show. Any other function,
/// including every user-defined one, may write (a function called from a SELECT can delete
/// rows), so it makes the query not a read. An allow-list rather than a list of known side
/// effects: a new or custom function is unknown until someone looks at it. Split by database,
/// because a name that is a built-in in one can only be a user's function in the other.
/// Built-ins of both PostgreSQL and MySQL.
const READ_FUNCTIONS: &[&str] = &[
    "count",
    "sum",
    "avg",
    "min",
    "max",
    "bit_and",
    "bit_or",
    "stddev",
    "stddev_pop",
    "stddev_samp",
    "variance",
    "var_pop",
    "var_samp",
    "any_value",
    "row_number",
    "rank",
    "dense_rank",
    "percent_rank",
    "cume_dist",
    "ntile",
    "lag",
    "lead",
    "first_value",
    "last_value",
    "nth_value",
    "coalesce",
    "nullif",
    "greatest",
    "least",
    "length",
    "char_length",
    "character_length",
    "octet_length",
    "bit_length",
    "lower",
    "upper",
    "trim",
    "ltrim",
    "rtrim",
    "substr",
    "substring",
    "left",
    "right",
    "lpad",
    "rpad",
    "concat",
    "concat_ws",
    "replace",
    "reverse",
    "repeat",
    "position",
    "regexp_replace",
    "regexp_like",
    "regexp_substr",
    "md5",
    "ascii",
    "format",
    "abs",
    "ceil",
    "ceiling",
    "floor",
    "round",
    "mod",
    "power",
    "pow",
    "sqrt",
    "exp",
    "ln",
    "log",
    "log10",
    "sign",
    "pi",
    "now",
    "current_date",
    "current_time",
    "current_timestamp",
    "localtime",
    "localtimestamp",
    "extract",
    "version",
    "current_user",
    "session_user",
    "user",
    "current_role",
];
/// PostgreSQL's own.
const PG_READ_FUNCTIONS: &[&str] = &[
    "array_agg",
    "string_agg",
    "json_agg",
    "jsonb_agg",
    "json_object_agg",
    "jsonb_object_agg",
    "bool_and",
    "bool_or",
    "every",
    "percentile_cont",
    "percentile_disc",
    "mode",
    "initcap",
    "btrim",
    "strpos",
    "split_part",
    "regexp_match",
    "regexp_matches",
    "to_char",
    "to_number",
    "sha256",
    "encode",
    "decode",
    "quote_ident",
    "quote_literal",
    "starts_with",
    "chr",
    "translate",
    "string_to_array",
    "array_to_string",
    "gen_random_uuid",
    "trunc",
    "random",
    "div",
    "width_bucket",
    "clock_timestamp",
    "statement_timestamp",
    "transaction_timestamp",
    "date_trunc",
    "date_part",
    "age",
    "make_date",
    "make_interval",
    "make_timestamp",
    "to_date",
    "to_timestamp",
    "json_build_object",
    "jsonb_build_object",
    "json_build_array",
    "jsonb_build_array",
    "to_json",
    "to_jsonb",
    "row_to_json",
    "json_extract_path",
    "jsonb_extract_path",
    "json_extract_path_text",
    "jsonb_extract_path_text",
    "jsonb_pretty",
    "json_typeof",
    "jsonb_typeof",
    "jsonb_set",
    "json_array_length",
    "jsonb_array_length",
    "array_length",
    "cardinality",
    "array_position",
    "array_remove",
    "array_append",
    "array_cat",
    "unnest",
    "generate_series",
    "generate_subscripts",
    "json_each",
    "jsonb_each",
    "json_each_text",
    "jsonb_each_text",
    "json_array_elements",
    "jsonb_array_elements",
    "json_array_elements_text",
    "jsonb_array_elements_text",
    "json_object_keys",
    "jsonb_object_keys",
    "string_to_table",
    "current_schema",
    "current_schemas",
    "current_database",
    "current_catalog",
    "pg_backend_pid",
    "inet_server_addr",
    "inet_server_port",
    "pg_postmaster_start_time",
    "pg_is_in_recovery",
    "pg_size_pretty",
    "pg_database_size",
    "pg_relation_size",
    "pg_total_relation_size",
    "pg_table_size",
    "pg_indexes_size",
    "pg_column_size",
    "pg_typeof",
    "pg_get_viewdef",
    "pg_get_indexdef",
    "pg_get_constraintdef",
    "pg_get_functiondef",
    "pg_get_userbyid",
    "pg_table_is_visible",
    "format_type",
    "obj_description",
    "col_description",
    "has_table_privilege",
    "has_schema_privilege",
    "has_database_privilege",
    "pg_has_role",
    "txid_current_if_assigned",
    "pg_current_wal_lsn",
    "pg_last_wal_replay_lsn",
    "pg_wal_lsn_diff",
];
/// MySQL's own (not `last_insert_id`, which sets it when given an argument).
const MYSQL_READ_FUNCTIONS: &[&str] = &[
    "group_concat",
    "if",
    "ifnull",
    "isnull",
    "instr",
    "locate",
    "mid",
    "hex",
    "unhex",
    "uuid",
    "sha1",
    "sha2",
    "rand",
    "truncate",
    "curdate",
    "curtime",
    "sysdate",
    "utc_timestamp",
    "date",
    "date_format",
    "date_add",
    "date_sub",
    "datediff",
    "timestampdiff",
    "unix_timestamp",
    "from_unixtime",
    "year",
    "month",
    "day",
    "hour",
    "minute",
    "second",
    "dayofweek",
    "week",
    "json_extract",
    "json_unquote",
    "json_object",
    "json_array",
    "json_contains",
    "json_length",
    "database",
    "schema",
    "connection_id",
    "found_rows",
    "row_count",
];
/// Schemas a built-in may be named with. A function in any other schema is the database's own.
const BUILTIN_SCHEMAS: &[&str] = &["pg_catalog"];

/// Why calling `name` may not be a read, or None when it is a known read-only built-in.
fn unknown_function(name: &sqlparser::ast::ObjectName, db: Db) -> Option<String> {
    // Unquoted names fold to lower case; a quoted one is exact (`"NOW"()` is not `now()`).
    let part = |p: &sqlparser::ast::ObjectNamePart| {
        p.as_ident().map(|i| if i.quote_style.is_some() { i.value.clone() } else { i.value.to_ascii_lowercase() })
    };
    let Some(parts) = name.0.iter().map(part).collect::<Option<Vec<String>>>() else {
        return Some(format!("{name}() is not a known read-only function"));
    };
    let (last, schema) = match parts.as_slice() {
        [last] => (last, None),
        [schema, last] => (last, Some(schema)),
        _ => return Some(format!("{name}() is not a known read-only function")),
    };
    let own = match db {
        Db::Postgres => PG_READ_FUNCTIONS,
        Db::Mysql => MYSQL_READ_FUNCTIONS,
    };
    let known = READ_FUNCTIONS.contains(&last.as_str()) || own.contains(&last.as_str());
    if schema.is_some_and(|s| db == Db::Mysql || !BUILTIN_SCHEMAS.contains(&s.as_str())) || !known {
        return Some(format!("{name}() is not a known read-only function (a function can write)"));
    }
    None
}

/// Is calling `name` in PostgreSQL SQL a known read-only built-in? The minted-credential scope
/// (src/mint/pg_scope.rs) accepts only these: any other function may touch tables it cannot see.
pub(crate) fn is_pg_read_function(name: &sqlparser::ast::ObjectName) -> bool {
    unknown_function(name, Db::Postgres).is_none()
}

/// Classifies PostgreSQL SQL text (one or more statements).
pub fn classify(sql: &str) -> SqlClass {
    classify_with(Db::Postgres, sql)
}

/// Which database the SQL is for: its dialect, and which functions are its built-ins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Db {
    Postgres,
    Mysql,
}

fn classify_with(db: Db, sql: &str) -> SqlClass {
    if sql.trim().is_empty() {
        return SqlClass::Read;
    }
    let dialect: &dyn Dialect = match db {
        Db::Postgres => &PostgreSqlDialect {},
        Db::Mysql => &MySqlDialect {},
    };
    let statements = match Parser::parse_sql(dialect, sql) {
        Ok(s) => s,
        Err(e) => return SqlClass::Unknown(format!("the SQL does not parse ({e})")),
    };
    let mut added = None;
    for (n, statement) in statements.iter().enumerate() {
        let which = || which_statement(n, statements.len(), statement);
        match statement_class(statement, db) {
            SqlClass::Read => {}
            SqlClass::Add(why) => {
                added.get_or_insert_with(|| format!("{}: {why}", which()));
            }
            SqlClass::Write(why) => return SqlClass::Write(format!("{}: {why}", which())),
            SqlClass::Unknown(why) => return SqlClass::Unknown(format!("{}: {why}", which())),
        }
    }
    added.map_or(SqlClass::Read, SqlClass::Add)
}

/// Which statement made the SQL what it is, for the agent and the approver alike: its place when
/// there are several, and its text (as the parser prints it, shortened).
fn which_statement(n: usize, of: usize, statement: &Statement) -> String {
    const MAX: usize = 80;
    let text = statement.to_string();
    let short = match text.char_indices().nth(MAX) {
        Some((end, _)) => format!("{}...", &text[..end]),
        None => text,
    };
    if of > 1 { format!("statement {} of {of} `{short}`", n + 1) } else { format!("`{short}`") }
}

/// Statements that only add: new rows (`INSERT` without an update or replace on conflict), new
/// objects (`CREATE` without `OR REPLACE`), comments. Whatever they compute is held to what a read
/// may compute (no unknown function, no data-modifying CTE), so nothing else changes with them.
/// Rows they add fire the table's triggers, which are the database owner's code, as for any
/// insert the application makes.
fn additive(statement: &Statement, db: Db) -> Option<SqlClass> {
    let what = match statement {
        Statement::Insert(i)
            if !i.replace_into
                && !i.overwrite
                && i.or.is_none()
                && i.assignments.is_empty()
                && matches!(
                    &i.on,
                    None | Some(sqlparser::ast::OnInsert::OnConflict(sqlparser::ast::OnConflict {
                        action: sqlparser::ast::OnConflictAction::DoNothing,
                        ..
                    }))
                ) =>
        {
            "INSERT adds rows"
        }
        // A child of another table (INHERITS, PARTITION OF) changes what queries of the parent
        // return; a foreign key with ON DELETE sets up later deletes.
        Statement::CreateTable(t)
            if !t.or_replace
                && t.inherits.is_none()
                && t.partition_of.is_none()
                && !t.to_string().to_ascii_uppercase().contains("REFERENCES") =>
        {
            "CREATE TABLE adds a table"
        }
        // Plain columns only: an expression, a predicate, an operator class or a cast can call
        // functions of the database's own while the index is built.
        Statement::CreateIndex(i)
            if i.predicate.is_none()
                && i.with.is_empty()
                && i.columns
                    .iter()
                    .all(|c| c.operator_class.is_none() && matches!(c.column.expr, Expr::Identifier(_))) =>
        {
            "CREATE INDEX adds an index"
        }
        Statement::CreateView(v) if !v.or_replace && !v.or_alter => "CREATE VIEW adds a view",
        Statement::CreateSchema { .. } => "CREATE SCHEMA adds a schema",
        Statement::CreateSequence { .. } => "CREATE SEQUENCE adds a sequence",
        Statement::CreateDatabase { .. } => "CREATE DATABASE adds a database",
        Statement::Comment { .. } => "COMMENT ON describes an object",
        Statement::Analyze(_) => "ANALYZE gathers statistics",
        // FULL rewrites the table under an exclusive lock.
        Statement::Vacuum(v) if !v.full => "VACUUM reclaims space",
        Statement::AlterTable(t)
            if !t.operations.is_empty()
                && t.operations.iter().all(|o| matches!(o, sqlparser::ast::AlterTableOperation::AddColumn { .. }))
                && !t.to_string().to_ascii_uppercase().contains("REFERENCES") =>
        {
            "ALTER TABLE ... ADD COLUMN adds a column"
        }
        _ => return None,
    };
    Some(match expressions_class(statement, db) {
        SqlClass::Read => SqlClass::Add(what.into()),
        other => other,
    })
}

fn statement_class(statement: &Statement, db: Db) -> SqlClass {
    match statement {
        Statement::Query(_) => query_class(statement, db),
        // EXPLAIN only plans; EXPLAIN ANALYZE runs the statement.
        Statement::Explain { analyze, statement: inner, options, .. } => {
            let analyzes = *analyze
                || options.as_ref().is_some_and(|opts| {
                    opts.iter().any(|o| {
                        o.name.value.eq_ignore_ascii_case("analyze") || o.name.value.eq_ignore_ascii_case("analyse")
                    })
                });
            if analyzes { statement_class(inner, db) } else { SqlClass::Read }
        }
        Statement::ShowVariable { .. }
        | Statement::ShowVariables { .. }
        | Statement::ShowTables { .. }
        | Statement::ShowColumns { .. }
        | Statement::ShowDatabases { .. }
        | Statement::ShowSchemas { .. }
        | Statement::ShowCreate { .. }
        | Statement::ShowStatus { .. }
        | Statement::ShowFunctions { .. }
        | Statement::ShowCollation { .. }
        | Statement::ShowViews { .. }
        | Statement::ExplainTable { .. }
        | Statement::Use(_)
        | Statement::Commit { .. }
        | Statement::Rollback { .. } => SqlClass::Read,
        // A transaction that only reads is a read; `READ WRITE` undoes the read-only transaction
        // guardsh starts reads in (see `shims/psql.toml` `read_env`), so it is not. A `BEGIN ...
        // END` block is as much of a read as the statements in it.
        Statement::StartTransaction { modes, statements, exception, .. } => {
            use sqlparser::ast::{TransactionAccessMode, TransactionMode};
            if modes.iter().any(|m| matches!(m, TransactionMode::AccessMode(TransactionAccessMode::ReadWrite))) {
                return SqlClass::Write("a READ WRITE transaction (it undoes the read-only session)".into());
            }
            if exception.is_some() {
                return SqlClass::Unknown("a transaction block with exception handlers".into());
            }
            for inner in statements {
                match statement_class(inner, db) {
                    SqlClass::Read => {}
                    other => return other,
                }
            }
            SqlClass::Read
        }
        other => additive(other, db).unwrap_or_else(|| {
            let text = other.to_string();
            let verb: Vec<&str> = text.split_whitespace().take(2).collect();
            SqlClass::Write(format!("{} changes the database", verb.join(" ")))
        }),
    }
}

/// PostgreSQL catalogs that hold password hashes or a foreign server's credentials.
const SECRET_RELATIONS_PG: &[&str] = &["pg_shadow", "pg_authid", "pg_user_mappings", "pg_user_mapping"];
/// MySQL's account tables (an unqualified `user` is treated as one too: after `USE mysql` it is).
const SECRET_RELATIONS_MYSQL: &[&str] = &["mysql.user", "mysql.global_priv"];
/// Columns of those stores.
const SECRET_COLUMNS: &[&str] = &["authentication_string", "rolpassword", "passwd", "umoptions"];

/// A query reads unless something inside it writes or may: a data-modifying CTE, SELECT INTO
/// (anywhere in a UNION), row locks, or a call to a function that is not a known read-only
/// built-in, in an expression or in FROM.
fn query_class(statement: &Statement, db: Db) -> SqlClass {
    find_writes(statement, db, false)
}

/// What the expressions and queries inside an adding statement do, the statement itself aside.
fn expressions_class(statement: &Statement, db: Db) -> SqlClass {
    find_writes(statement, db, true)
}

/// `skip_top`: the statement visited first is the one being classed (an `INSERT`), not one
/// nested in it.
fn find_writes(statement: &Statement, db: Db, skip_top: bool) -> SqlClass {
    struct Finder(Option<SqlClass>, Db, bool);
    impl Finder {
        fn found(&mut self, class: SqlClass) -> ControlFlow<()> {
            self.0 = Some(class);
            ControlFlow::Break(())
        }
    }
    impl Visitor for Finder {
        type Break = ();
        fn pre_visit_statement(&mut self, s: &Statement) -> ControlFlow<()> {
            if std::mem::take(&mut self.2) {
                return ControlFlow::Continue(());
            }
            if matches!(s, Statement::Insert(_) | Statement::Update(_) | Statement::Delete(_) | Statement::Merge(_)) {
                return self.found(SqlClass::Write("a data-modifying statement inside the query".into()));
            }
            ControlFlow::Continue(())
        }
        fn pre_visit_query(&mut self, q: &sqlparser::ast::Query) -> ControlFlow<()> {
            if !q.locks.is_empty() {
                return self.found(SqlClass::Write("row locks (FOR UPDATE/SHARE)".into()));
            }
            ControlFlow::Continue(())
        }
        // Every SELECT, also the arms of a UNION and subqueries.
        fn pre_visit_select(&mut self, s: &sqlparser::ast::Select) -> ControlFlow<()> {
            if s.into.is_some() {
                return self.found(SqlClass::Write("SELECT INTO creates a table".into()));
            }
            ControlFlow::Continue(())
        }
        // The server's own password stores: reading them is reading credentials.
        fn pre_visit_relation(&mut self, name: &sqlparser::ast::ObjectName) -> ControlFlow<()> {
            let written = name.to_string().to_lowercase().replace(['"', '`'], "");
            let last = written.rsplit('.').next().unwrap_or(&written);
            let secret = match self.1 {
                Db::Postgres => SECRET_RELATIONS_PG.contains(&last),
                Db::Mysql => SECRET_RELATIONS_MYSQL.contains(&written.as_str()) || last == "user",
            };
            if secret {
                return self
                    .found(SqlClass::Write(format!("{name} holds password hashes or keys (a credential read)")));
            }
            ControlFlow::Continue(())
        }
        fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
            // Columns that only the password stores have, whatever the table is called here.
            if let Expr::Identifier(i) = e
                && SECRET_COLUMNS.contains(&i.value.to_lowercase().as_str())
            {
                return self.found(SqlClass::Write(format!("{} is a password hash (a credential read)", i.value)));
            }
            // PostgreSQL reads `x.y` as column y of x, or, when x has no column y, as the call
            // y(x) (field selection is function-call syntax: `u.purge` runs `purge(users)`).
            // Which it is depends on the schema, which guardsh does not read: a qualified
            // reference is never proven a read. (MySQL has no such rule.)
            if self.1 == Db::Postgres && matches!(e, Expr::CompoundIdentifier(_) | Expr::CompoundFieldAccess { .. }) {
                return self.found(SqlClass::Unknown(format!(
                    "{e} may call a function (PostgreSQL reads x.y as y(x) when x has no column y); write the column unqualified"
                )));
            }
            if let Expr::Function(f) = e
                && let Some(why) = unknown_function(&f.name, self.1)
            {
                return self.found(SqlClass::Unknown(why));
            }
            // `OPERATOR(schema.op)` and custom operators call functions of the database's own.
            if let Expr::BinaryOp {
                op:
                    sqlparser::ast::BinaryOperator::PGCustomBinaryOperator(_) | sqlparser::ast::BinaryOperator::Custom(_),
                ..
            } = e
            {
                return self.found(SqlClass::Unknown("a user-defined operator (it calls a function)".into()));
            }
            ControlFlow::Continue(())
        }
        // `FROM f(...)`: a function in FROM runs like one in the select list.
        fn pre_visit_table_factor(&mut self, t: &TableFactor) -> ControlFlow<()> {
            let called = match t {
                TableFactor::Table { name, args: Some(_), .. } => Some(name),
                TableFactor::Function { name, .. } => Some(name),
                _ => None,
            };
            if let Some(why) = called.and_then(|name| unknown_function(name, self.1)) {
                return self.found(SqlClass::Unknown(why));
            }
            ControlFlow::Continue(())
        }
    }
    let mut finder = Finder(None, db, skip_top);
    let _ = statement.visit(&mut finder);
    finder.0.unwrap_or(SqlClass::Read)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_read(sql: &str) -> bool {
        classify_psql(sql) == SqlClass::Read
    }

    /// One statement per line: does it only read?
    /// Statements that only add rows or objects, and every near miss that changes what was there.
    #[test]
    fn additive_table() {
        let add = |sql: &str| matches!(classify_psql(sql), SqlClass::Add(_));
        let cases: &[(&str, bool)] = &[
            ("insert into users (email) values ('a@example.com')", true),
            ("insert into events select * from staging where id > 3", true),
            ("insert into t values (1) on conflict do nothing", true),
            ("create table audit (id bigserial primary key, at timestamptz default now())", true),
            ("create index concurrently i on orders (created_at)", true),
            ("create view v as select id from users", true),
            ("create schema reporting", true),
            ("create sequence s", true),
            ("comment on table users is 'people'", true),
            ("select 1; insert into t values (1)", true),
            ("alter table users add column last_login timestamptz", true),
            ("analyze users", true),
            ("vacuum orders", true),
            ("alter table users add column x int default evil()", false),
            ("alter table users add column x int, drop column y", false),
            ("alter table users drop column y", false),
            ("alter table users add column a int references accounts(id) on delete cascade", false),
            ("create index i on t ((x::evil_type))", false),
            ("create index i on t (x evil_ops)", false),
            ("create index i on t (x) where evil(x)", false),
            ("create table c () inherits (users)", false),
            ("vacuum full users", false),
            ("insert into t values (1) on conflict (id) do update set x = 1", false),
            ("create or replace view v as select 1", false),
            ("insert into t select evil()", false),
            ("create index i on t (evil(x))", false),
            ("with d as (delete from t returning *) insert into u select * from d", false),
            ("create table a as select * from pg_shadow", false),
            ("insert into t values (1); delete from t", false),
            ("insert into t values (1); drop table t", false),
            ("select 1", false),
        ];
        for (sql, want) in cases {
            assert_eq!(add(sql), *want, "{sql:?}: {:?}", classify_psql(sql));
        }
        assert!(matches!(classify_mysql("insert into t values (1)"), SqlClass::Add(_)));
        assert!(!matches!(classify_mysql("replace into t values (1)"), SqlClass::Add(_)));
        assert!(!matches!(classify_mysql("insert into t values (1) on duplicate key update x = 1"), SqlClass::Add(_)));
    }

    /// The server's password stores are credentials, whatever spelling reaches them.
    #[test]
    fn password_stores_are_not_reads() {
        for sql in [
            "select usename, passwd from pg_shadow",
            "SELECT * FROM PG_AUTHID",
            "select * from pg_catalog.pg_user_mappings",
            "select rolpassword from roles",
        ] {
            assert!(!is_read(sql), "{sql}");
        }
        for sql in ["select authentication_string from mysql.user", "select * from MYSQL.USER", "select * from user"] {
            assert_ne!(classify_mysql(sql), SqlClass::Read, "{sql}");
        }
    }

    #[test]
    fn mysql_table() {
        let cases: &[(&str, bool)] = &[
            ("select * from users", true),
            ("show databases", true),
            ("show tables", true),
            ("describe users", true),
            ("use app; select 1", true),
            ("show create table users", true),
            ("drop database prod", false),
            ("truncate table orders", false),
            ("delete from users", false),
            ("update users set role = 'admin'", false),
            ("alter table users drop column email", false),
            ("grant all on *.* to 'x'@'%'", false),
            ("select * from users into outfile '/tmp/x'", false),
            ("select load_file('/etc/passwd')", false),
            ("select sleep(10)", false),
            ("select pg_size_pretty(1)", false),
            ("select last_insert_id(5)", false),
            ("select hour(now()), ifnull(x, 0) from t", true),
            ("select concat(name, '@'), ifnull(x, 0) from users", true),
            ("system rm -rf /", false),
            ("\\! rm -rf /", false),
            ("source drop.sql", false),
            ("selec 1", false),
        ];
        for (sql, read) in cases {
            assert_eq!(classify_mysql(sql) == SqlClass::Read, *read, "{sql:?}: {:?}", classify_mysql(sql));
        }
    }

    #[test]
    fn table() {
        let cases: &[(&str, bool)] = &[
            ("select 1", true),
            ("SELECT * FROM drops", true),
            ("select count(*) from users where name = 'drop table x'", true),
            ("select * from users; select * from orders", true),
            ("with x as (select 1) select * from x", true),
            ("explain select * from users", true),
            ("explain delete from users", true),
            ("show search_path", true),
            ("begin; select 1; commit;", true),
            ("", true),
            ("-- just a comment", true),
            ("\\dt", true),
            ("\\dt+", true),
            ("\\dtS+ users", true),
            ("\\!+", false),
            ("\\x\nselect 1", true),
            ("DROP TABLE users", false),
            ("drop table if exists users cascade", false),
            ("TRUNCATE orders", false),
            ("delete from users", false),
            ("delete from users where id = 1", false),
            ("update users set admin = true", false),
            ("insert into users values (1)", false),
            ("alter table users drop column email", false),
            ("grant all on users to public", false),
            ("revoke select on users from bob", false),
            ("create table t (id int)", false),
            ("explain analyze delete from users", false),
            ("explain (analyze) delete from users", false),
            ("explain analyze select 1", true),
            ("with d as (delete from users returning *) select * from d", false),
            ("select * into backup from users", false),
            ("select * from users for update", false),
            ("select pg_terminate_backend(pid) from pg_stat_activity", false),
            ("select nextval('s')", false),
            ("select 1; drop table users", false),
            ("copy users to program 'rm -rf /'", false),
            ("set role admin", false),
            ("vacuum full", false),
            ("call do_things()", false),
            ("do $$ begin delete from users; end $$", false),
            ("\\! rm -rf /", false),
            ("\\gexec", false),
            ("select 1 \\g |sh", false),
            ("\\copy users to program 'x'", false),
            ("\\i evil.sql", false),
            ("select :'x'", false),
            ("selec 1", false),
            // Functions: only known read-only built-ins; user functions can write.
            ("select now(), lower(name), count(*) from users group by 2", true),
            ("select pg_size_pretty(pg_database_size(current_database()))", true),
            ("select * from generate_series(1, 3)", true),
            ("select pg_catalog.version()", true),
            ("select cleanup_old_rows()", false),
            ("select * from cleanup_old_rows()", false),
            ("select app.count(*) from users", false),
            ("select x from users where id = purge(1)", false),
            ("select set_config('default_transaction_read_only', 'off', false)", false),
            ("select pg_sleep(100)", false),
            ("select \"NOW\"()", false),
            ("select 1;\nselect :LAST_ERROR_MESSAGE;", false),
            ("select :\"HOST\"", false),
            ("\\echo :x", false),
            ("select now()::date, '12:30'::time", true),
            // b27: what changes the transaction's access mode, and field selection.
            ("start transaction read write", false),
            ("START TRANSACTION READ WRITE; select 1; COMMIT", false),
            ("begin read write", false),
            ("begin isolation level serializable, read write", false),
            ("start transaction read only", true),
            ("begin isolation level repeatable read", true),
            ("set transaction read write", false),
            ("set session characteristics as transaction read write", false),
            ("set default_transaction_read_only = off", false),
            ("set default_transaction_read_only to default", false),
            ("reset default_transaction_read_only", false),
            ("reset all", false),
            ("select u.purge from users u", false),
            ("select users.purge from users", false),
            ("select (u).purge from users u", false),
            ("select * from users u where u.id = 1", false),
            ("select public.users.purge from public.users", false),
            ("select id, name from users where id = 1", true),
            ("select \"now\"()", true),
            ("select hour(now())", false),
            ("select 1 operator(public.+) 2", false),
            ("select * into t2 from users union select * from orders", false),
            ("explain (analyse) delete from users", false),
            ("\\echo `rm -rf /`", false),
            ("\\x \\! rm -rf /", false),
        ];
        for (sql, read) in cases {
            assert_eq!(is_read(sql), *read, "{sql:?}: {:?}", classify_psql(sql));
        }
    }
}
