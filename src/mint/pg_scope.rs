//! Which table privileges the SQL of one approved psql run needs, read from its statements.
//!
//! Pure: SQL texts in, a [`Scope`] (or the reason there can be none) out. The scope is what a
//! minted PostgreSQL role is granted, so it must never hold more than the statements use:
//! where a reading is uncertain this module grants less (the run then fails with "permission
//! denied", closed) or refuses with an `Err`, never more. Identifiers fold as PostgreSQL folds
//! them: unquoted to lower case, quoted kept exact.
//!
//! What needs what, from PostgreSQL's documentation of each statement:
//! - a table read anywhere (FROM, JOIN, subqueries, CTE bodies, `USING`, `UPDATE ... FROM`,
//!   `INSERT ... SELECT`) needs SELECT; a CTE's name is not a table;
//! - INSERT needs INSERT; `ON CONFLICT DO UPDATE` adds UPDATE and SELECT; RETURNING adds SELECT;
//! - UPDATE and DELETE need that privilege, and SELECT on the same table when a WHERE, a SET
//!   value or RETURNING names anything (the server checks SELECT on columns read);
//! - `SELECT ... FOR UPDATE/SHARE` needs UPDATE on the tables it locks; TRUNCATE needs TRUNCATE;
//! - transaction control, SET and SHOW need nothing; nor do catalog relations (`pg_catalog`,
//!   `information_schema`, unqualified `pg_*`), which every role may read.
//!
//! Anything else is an `Err`: DDL (it needs the object's owner), functions that are not
//! src/sql.rs's known read-only built-ins (a function may read or write tables the text never
//! names), `COPY` to or from a file or program, psql meta-commands and variables, and text that
//! does not parse.
//!
//! A qualified column (`t.col`) is accepted although PostgreSQL may read it as a call `col(t)`:
//! such a call runs with the minted role's privileges, which this scope bounds; the classifier
//! (src/sql.rs) has already shown it to the approver as not a plain read.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::ops::ControlFlow;

use sqlparser::ast::{
    CopySource, CopyTarget, Delete, Expr, FromTable, Insert, ObjectName, OnConflictAction, OnInsert, Query, Select,
    SetExpr, Statement, TableFactor, TableObject, Truncate, Update, UpdateTableFromKind, Visit, Visitor,
};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;

/// What to do when a run cannot be given a minted credential.
const ADVICE: &str = "run it with the held credential by leaving psql out of [mint]";

/// A table privilege a minted role can be granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Privilege {
    Select,
    Insert,
    Update,
    Delete,
    Truncate,
}

impl Privilege {
    /// The keyword in `GRANT ... ON TABLE`.
    pub fn keyword(self) -> &'static str {
        match self {
            Privilege::Select => "SELECT",
            Privilege::Insert => "INSERT",
            Privilege::Update => "UPDATE",
            Privilege::Delete => "DELETE",
            Privilege::Truncate => "TRUNCATE",
        }
    }
}

/// The privileges one table (or view: it is just a name) needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableGrant {
    /// The schema as written (folded); `None` when the name was unqualified, so the server's
    /// search path resolves it.
    pub schema: Option<String>,
    /// The table's exact name (folded unless it was quoted).
    pub table: String,
    pub privileges: BTreeSet<Privilege>,
}

/// Everything the statements of one run need: one entry per table, sorted by schema and name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    pub tables: Vec<TableGrant>,
}

impl Scope {
    /// Does the run only read (or touch no table at all)?
    pub fn is_read_only(&self) -> bool {
        self.tables.iter().all(|t| t.privileges.iter().all(|p| *p == Privilege::Select))
    }

    /// The schemas named explicitly, each once, in order.
    pub fn schemas(&self) -> BTreeSet<&str> {
        self.tables.iter().filter_map(|t| t.schema.as_deref()).collect()
    }
}

/// A table as the grants name it: (schema, table).
type Name = (Option<String>, String);

/// The privileges the texts (psql's `-c` values, piped input, `-f` files) need, merged per table.
pub fn scope(texts: &[&str]) -> Result<Scope, String> {
    let mut grants: BTreeMap<Name, BTreeSet<Privilege>> = BTreeMap::new();
    for text in texts {
        scope_text(text, &mut grants)?;
    }
    let tables = grants
        .into_iter()
        .filter(|(_, privileges)| !privileges.is_empty())
        .map(|((schema, table), privileges)| TableGrant { schema, table, privileges })
        .collect();
    Ok(Scope { tables })
}

fn scope_text(text: &str, grants: &mut BTreeMap<Name, BTreeSet<Privilege>>) -> Result<(), String> {
    // psql runs meta-commands and pastes variables in before the server sees the text; neither
    // says which tables it touches.
    if crate::sql::has_psql_variable(text) {
        return Err(format!("the SQL uses a psql variable, whose value guardsh cannot scope; {ADVICE}"));
    }
    if text.contains('\\') {
        return Err(format!("the SQL has a psql meta-command or a backslash, which guardsh cannot scope; {ADVICE}"));
    }
    if text.trim().is_empty() {
        return Ok(());
    }
    let statements = Parser::parse_sql(&PostgreSqlDialect {}, text)
        .map_err(|e| format!("the SQL does not parse ({e}), so its privileges cannot be scoped; {ADVICE}"))?;
    for statement in &statements {
        let mut walk = Walk { grants: &mut *grants, ctes: Vec::new(), placed: HashSet::new(), targets: HashSet::new() };
        if let ControlFlow::Break(why) = statement.visit(&mut walk) {
            return Err(why);
        }
    }
    Ok(())
}

/// The address of a node of the parsed statement: how the walk recognises a table reference it
/// has already accounted for when the visitor reaches it again from another side.
fn addr<T>(node: &T) -> usize {
    std::ptr::from_ref(node).addr()
}

/// The name's parts, folded as PostgreSQL folds identifiers.
fn fold(name: &ObjectName) -> Result<Vec<String>, String> {
    name.0
        .iter()
        .map(|part| {
            part.as_ident()
                .map(|i| if i.quote_style.is_some() { i.value.clone() } else { i.value.to_ascii_lowercase() })
                .ok_or_else(|| format!("the name {name} is computed, so it cannot be scoped; {ADVICE}"))
        })
        .collect()
}

fn table_name(name: &ObjectName) -> Result<Name, String> {
    match fold(name)?.as_slice() {
        [table] => Ok((None, table.clone())),
        [schema, table] => Ok((Some(schema.clone()), table.clone())),
        _ => Err(format!("the name {name} has more than schema and table, so it cannot be scoped; {ADVICE}")),
    }
}

/// Relations every role may already read: a grant on them is neither needed nor possible.
fn is_catalog((schema, table): &Name) -> bool {
    match schema {
        Some(s) => s == "pg_catalog" || s == "information_schema",
        // pg_catalog comes first in every search path unless placed later explicitly; a user
        // table called pg_x is then simply not granted (the run fails, closed).
        None => table.starts_with("pg_"),
    }
}

/// Does the expression name anything (a column, or a word the parser cannot tell from one)?
fn names_anything<V: Visit>(node: &V) -> bool {
    struct Finder;
    impl Visitor for Finder {
        type Break = ();
        fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
            match e {
                Expr::Identifier(_) | Expr::CompoundIdentifier(_) | Expr::CompoundFieldAccess { .. } => {
                    ControlFlow::Break(())
                }
                _ => ControlFlow::Continue(()),
            }
        }
    }
    node.visit(&mut Finder).is_break()
}

fn refuse<T>(why: String) -> ControlFlow<String, T> {
    ControlFlow::Break(why)
}

/// One statement's walk. The visitor reaches every statement (nested ones in CTEs too), query,
/// FROM item, relation name and expression; a DML statement's target is accounted for when its
/// statement is reached, so that being named there does not also count as a read.
struct Walk<'a> {
    grants: &'a mut BTreeMap<Name, BTreeSet<Privilege>>,
    /// The CTE names in scope, one list per enclosing query.
    ctes: Vec<Vec<String>>,
    /// Relation names accounted for (addresses); any other relation is refused.
    placed: HashSet<usize>,
    /// FROM items that are an UPDATE's or DELETE's target, not a read.
    targets: HashSet<usize>,
}

impl Walk<'_> {
    /// Records that the statements need `privileges` on `name`. An unqualified name that a CTE
    /// in scope shadows is not a table (a CTE's own body may name the real table it shadows;
    /// that reference is then not granted and fails, closed).
    fn grant(&mut self, name: &ObjectName, privileges: &[Privilege]) -> ControlFlow<String> {
        self.placed.insert(addr(name));
        if let [sqlparser::ast::ObjectNamePart::Identifier(i)] = name.0.as_slice()
            && i.quote_style.is_none()
            && i.value.eq_ignore_ascii_case("only")
        {
            // The parser reads `FROM ONLY t` as the table `only` aliased t.
            return refuse(format!(
                "ONLY (leaving out child tables) is not followed; name the table alone, or {ADVICE}"
            ));
        }
        let name = match table_name(name) {
            Ok(n) => n,
            Err(why) => return refuse(why),
        };
        if name.0.is_none() && self.ctes.iter().flatten().any(|c| *c == name.1) {
            return ControlFlow::Continue(());
        }
        let catalog = is_catalog(&name);
        let entry = self.grants.entry(name).or_default();
        entry.extend(privileges.iter().filter(|p| !(catalog && **p == Privilege::Select)));
        ControlFlow::Continue(())
    }

    fn function(&mut self, name: &ObjectName) -> ControlFlow<String> {
        self.placed.insert(addr(name));
        if crate::sql::is_pg_read_function(name) {
            return ControlFlow::Continue(());
        }
        refuse(format!(
            "{name}() is not a known read-only built-in: a function may read or write tables the SQL does not name, so its grants cannot be scoped; {ADVICE}"
        ))
    }

    fn insert(&mut self, i: &Insert) -> ControlFlow<String> {
        if i.or.is_some()
            || i.ignore
            || i.overwrite
            || i.replace_into
            || !i.assignments.is_empty()
            || i.partitioned.is_some()
            || i.output.is_some()
            || i.insert_alias.is_some()
            || i.multi_table_insert_type.is_some()
        {
            return refuse(format!("`{i}` is not PostgreSQL's INSERT, so it cannot be scoped; {ADVICE}"));
        }
        let TableObject::TableName(name) = &i.table else {
            return refuse(format!("INSERT into a table function cannot be scoped; {ADVICE}"));
        };
        let mut privileges = vec![Privilege::Insert];
        match &i.on {
            None => {}
            Some(OnInsert::OnConflict(c)) => {
                if let OnConflictAction::DoUpdate(_) = c.action {
                    privileges.extend([Privilege::Update, Privilege::Select]);
                }
            }
            Some(_) => return refuse(format!("ON DUPLICATE KEY is not PostgreSQL's; {ADVICE}")),
        }
        if i.returning.is_some() {
            privileges.push(Privilege::Select);
        }
        self.grant(name, &privileges)
    }

    /// The one table an UPDATE or DELETE changes (PostgreSQL has exactly one).
    fn target<'s>(
        &mut self,
        from: &'s [sqlparser::ast::TableWithJoins],
        what: &str,
    ) -> ControlFlow<String, &'s ObjectName> {
        match from {
            [only] if only.joins.is_empty() => match &only.relation {
                TableFactor::Table { name, args: None, .. } => {
                    self.targets.insert(addr(&only.relation));
                    ControlFlow::Continue(name)
                }
                _ => refuse(format!("{what} of something other than a table cannot be scoped; {ADVICE}")),
            },
            _ => refuse(format!("{what} of several tables is not PostgreSQL's, so it cannot be scoped; {ADVICE}")),
        }
    }

    fn update(&mut self, u: &Update) -> ControlFlow<String> {
        if u.or.is_some() || u.output.is_some() || !u.order_by.is_empty() || u.limit.is_some() {
            return refuse(format!("`{u}` is not PostgreSQL's UPDATE, so it cannot be scoped; {ADVICE}"));
        }
        if let Some(UpdateTableFromKind::BeforeSet(_)) = u.from {
            return refuse(format!("UPDATE FROM before SET is not PostgreSQL's; {ADVICE}"));
        }
        let name = self.target(std::slice::from_ref(&u.table), "UPDATE")?;
        let reads = u.returning.is_some()
            || u.selection.as_ref().is_some_and(names_anything)
            || u.assignments.iter().any(|a| names_anything(&a.value));
        let privileges: &[Privilege] =
            if reads { &[Privilege::Update, Privilege::Select] } else { &[Privilege::Update] };
        self.grant(name, privileges)
    }

    fn delete(&mut self, d: &Delete) -> ControlFlow<String> {
        if !d.tables.is_empty() || d.output.is_some() || !d.order_by.is_empty() || d.limit.is_some() {
            return refuse(format!("`{d}` is not PostgreSQL's DELETE, so it cannot be scoped; {ADVICE}"));
        }
        let from = match &d.from {
            FromTable::WithFromKeyword(f) | FromTable::WithoutKeyword(f) => f,
        };
        let name = self.target(from, "DELETE")?;
        let reads = d.returning.is_some() || d.selection.as_ref().is_some_and(names_anything);
        let privileges: &[Privilege] =
            if reads { &[Privilege::Delete, Privilege::Select] } else { &[Privilege::Delete] };
        self.grant(name, privileges)
    }

    fn truncate(&mut self, t: &Truncate) -> ControlFlow<String> {
        use sqlparser::ast::{CascadeOption, TruncateIdentityOption};
        if matches!(t.cascade, Some(CascadeOption::Cascade)) {
            return refuse(format!(
                "TRUNCATE ... CASCADE also empties tables that refer to these, which cannot be scoped; {ADVICE}"
            ));
        }
        if matches!(t.identity, Some(TruncateIdentityOption::Restart)) {
            return refuse(format!(
                "TRUNCATE ... RESTART IDENTITY changes sequences, which needs their owner; {ADVICE}"
            ));
        }
        if t.partitions.is_some() || t.on_cluster.is_some() {
            return refuse(format!("`{t}` is not PostgreSQL's TRUNCATE; {ADVICE}"));
        }
        for target in &t.table_names {
            self.grant(&target.name, &[Privilege::Truncate])?;
        }
        ControlFlow::Continue(())
    }

    fn copy(&mut self, source: &CopySource, to: bool, target: &CopyTarget) -> ControlFlow<String> {
        let privilege = match (to, target) {
            (true, CopyTarget::Stdout) => Privilege::Select,
            (false, CopyTarget::Stdin) => Privilege::Insert,
            _ => {
                return refuse(format!(
                    "COPY to or from a server file or program needs a superuser or pg_*_server_files, which a minted role cannot hold; {ADVICE}"
                ));
            }
        };
        match source {
            CopySource::Table { table_name, .. } => self.grant(table_name, &[privilege]),
            // `COPY (query) TO STDOUT`: the query's tables are reached as FROM items.
            CopySource::Query(_) if to => ControlFlow::Continue(()),
            CopySource::Query(_) => refuse(format!("COPY (query) FROM is not PostgreSQL's; {ADVICE}")),
        }
    }

    /// `FOR UPDATE` / `FOR SHARE` needs UPDATE on each table it locks: every table in the query's
    /// own FROM, or the ones `OF` names (by alias or name).
    fn locks(&mut self, q: &Query) -> ControlFlow<String> {
        let SetExpr::Select(select) = q.body.as_ref() else {
            return refuse(format!("row locks on a set operation cannot be scoped; {ADVICE}"));
        };
        let mut tables: Vec<(String, &ObjectName)> = Vec::new();
        for factor in
            select.from.iter().flat_map(|t| std::iter::once(&t.relation).chain(t.joins.iter().map(|j| &j.relation)))
        {
            match factor {
                TableFactor::Table { name, alias, args: None, .. } => {
                    let called = match (alias, fold(name)) {
                        (Some(a), _) => {
                            if a.name.quote_style.is_some() {
                                a.name.value.clone()
                            } else {
                                a.name.value.to_ascii_lowercase()
                            }
                        }
                        (None, Ok(parts)) => parts.last().cloned().unwrap_or_default(),
                        (None, Err(why)) => return refuse(why),
                    };
                    tables.push((called, name));
                }
                _ => {
                    return refuse(format!(
                        "row locks over a subquery or function lock tables the query does not name; {ADVICE}"
                    ));
                }
            }
        }
        for lock in &q.locks {
            let locked: Vec<&ObjectName> = match &lock.of {
                None => tables.iter().map(|(_, n)| *n).collect(),
                Some(of) => {
                    let of = match fold(of) {
                        Ok(parts) if parts.len() == 1 => parts.concat(),
                        _ => return refuse(format!("FOR ... OF {of} cannot be scoped; {ADVICE}")),
                    };
                    match tables.iter().find(|(called, _)| *called == of) {
                        Some((_, n)) => vec![*n],
                        None => return refuse(format!("FOR ... OF {of} names no table of the query; {ADVICE}")),
                    }
                }
            };
            for name in locked {
                self.grant(name, &[Privilege::Update])?;
            }
        }
        ControlFlow::Continue(())
    }
}

/// `TABLE t` is a read the visitor does not report as a relation.
fn has_table_command(body: &SetExpr) -> bool {
    match body {
        SetExpr::Table(_) => true,
        SetExpr::SetOperation { left, right, .. } => has_table_command(left) || has_table_command(right),
        _ => false,
    }
}

impl Visitor for Walk<'_> {
    type Break = String;

    fn pre_visit_statement(&mut self, s: &Statement) -> ControlFlow<String> {
        match s {
            Statement::Query(_)
            | Statement::Explain { .. }
            | Statement::StartTransaction { .. }
            | Statement::Commit { .. }
            | Statement::Rollback { .. }
            | Statement::Savepoint { .. }
            | Statement::ReleaseSavepoint { .. }
            | Statement::Set(_)
            | Statement::ShowVariable { .. } => ControlFlow::Continue(()),
            Statement::Insert(i) => self.insert(i),
            Statement::Update(u) => self.update(u),
            Statement::Delete(d) => self.delete(d),
            Statement::Truncate(t) => self.truncate(t),
            Statement::Copy { source, to, target, .. } => self.copy(source, *to, target),
            other => {
                let text = other.to_string();
                let verb = text.split_whitespace().take(2).collect::<Vec<_>>().join(" ");
                let first = verb.split(' ').next().unwrap_or_default();
                const OWNER_VERBS: &[&str] = &[
                    "DROP", "ALTER", "CREATE", "GRANT", "REVOKE", "COMMENT", "REINDEX", "VACUUM", "CLUSTER", "REFRESH",
                    "ANALYZE", "SECURITY",
                ];
                if OWNER_VERBS.contains(&first) {
                    refuse(format!(
                        "{verb} needs the object's owner (or more); a minted role cannot hold that; {ADVICE}"
                    ))
                } else {
                    refuse(format!("{verb} cannot be scoped to table privileges by guardsh; {ADVICE}"))
                }
            }
        }
    }

    fn pre_visit_query(&mut self, q: &Query) -> ControlFlow<String> {
        let names = q
            .with
            .iter()
            .flat_map(|w| &w.cte_tables)
            .map(|c| {
                let i = &c.alias.name;
                if i.quote_style.is_some() { i.value.clone() } else { i.value.to_ascii_lowercase() }
            })
            .collect();
        self.ctes.push(names);
        if has_table_command(&q.body) {
            return refuse(format!("`TABLE name` is not scoped; write SELECT * FROM name, or {ADVICE}"));
        }
        if q.for_clause.is_some() || !q.pipe_operators.is_empty() {
            return refuse(format!("`{q}` is not PostgreSQL's, so it cannot be scoped; {ADVICE}"));
        }
        if !q.locks.is_empty() {
            self.locks(q)?;
        }
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, _q: &Query) -> ControlFlow<String> {
        self.ctes.pop();
        ControlFlow::Continue(())
    }

    fn pre_visit_select(&mut self, s: &Select) -> ControlFlow<String> {
        if s.into.is_some() {
            return refuse(format!("SELECT INTO creates a table, which needs CREATE on a schema; {ADVICE}"));
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, t: &TableFactor) -> ControlFlow<String> {
        match t {
            TableFactor::Table { name, args: Some(_), .. } | TableFactor::Function { name, .. } => self.function(name),
            TableFactor::Table { name, .. } => {
                if self.targets.contains(&addr(t)) {
                    // The UPDATE's or DELETE's own target: granted with its statement.
                    self.placed.insert(addr(name));
                    return ControlFlow::Continue(());
                }
                self.grant(name, &[Privilege::Select])
            }
            TableFactor::Derived { .. } | TableFactor::NestedJoin { .. } | TableFactor::UNNEST { .. } => {
                ControlFlow::Continue(())
            }
            other => refuse(format!("the FROM item {other} cannot be scoped; {ADVICE}")),
        }
    }

    fn pre_visit_relation(&mut self, name: &ObjectName) -> ControlFlow<String> {
        if self.placed.contains(&addr(name)) {
            return ControlFlow::Continue(());
        }
        refuse(format!(
            "{name} is named where guardsh does not follow table references, so it cannot be scoped; {ADVICE}"
        ))
    }

    fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<String> {
        if let Expr::Function(f) = e {
            return self.function(&f.name);
        }
        if let Expr::BinaryOp {
            op: sqlparser::ast::BinaryOperator::PGCustomBinaryOperator(_) | sqlparser::ast::BinaryOperator::Custom(_),
            ..
        } = e
        {
            return refuse(format!("a user-defined operator calls a function, so it cannot be scoped; {ADVICE}"));
        }
        ControlFlow::Continue(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The scope as one line: `schema.table=select,delete; other=select`, or `ERR: message`.
    fn shown(texts: &[&str]) -> String {
        match scope(texts) {
            Err(why) => format!("ERR: {why}"),
            Ok(s) => s
                .tables
                .iter()
                .map(|t| {
                    let name = match &t.schema {
                        Some(s) => format!("{s}.{}", t.table),
                        None => t.table.clone(),
                    };
                    let privileges: Vec<String> = t.privileges.iter().map(|p| p.keyword().to_lowercase()).collect();
                    format!("{name}={}", privileges.join(","))
                })
                .collect::<Vec<_>>()
                .join("; "),
        }
    }

    /// Statement ⇒ the grants it needs (or `ERR:` and a word the refusal must contain).
    #[test]
    fn statement_table() {
        let cases: &[(&str, &str)] = &[
            // Nothing at all.
            ("select 1", ""),
            ("", ""),
            ("begin; commit", ""),
            ("begin; rollback", ""),
            ("start transaction read write; savepoint a; release savepoint a; commit", ""),
            ("set search_path = public", ""),
            ("show search_path", ""),
            ("select now(), current_user, version()", ""),
            // Reads.
            ("select * from t", "t=select"),
            ("SELECT * FROM T", "t=select"),
            ("select * from \"T\"", "T=select"),
            ("select * from \"My Table\"", "My Table=select"),
            ("select * from Sales.Orders", "sales.orders=select"),
            ("select * from \"Sales\".orders", "Sales.orders=select"),
            ("select a.id from a join b on a.id = b.a_id", "a=select; b=select"),
            ("select * from a left join (select * from b) x on true", "a=select; b=select"),
            ("select * from t where id in (select t_id from other)", "other=select; t=select"),
            ("select (select max(id) from other) from t", "other=select; t=select"),
            ("select * from t where exists (select 1 from s.u where u.id = t.id)", "t=select; s.u=select"),
            ("select id from t union select id from other", "other=select; t=select"),
            ("select * from my_view", "my_view=select"),
            ("explain select * from t", "t=select"),
            ("explain analyze delete from t", "t=delete"),
            ("select count(*) from t; select count(*) from T", "t=select"),
            // CTEs are not tables, and a CTE may shadow one.
            ("with x as (select * from t) select * from x", "t=select"),
            ("with t as (select 1 as id) select * from t", ""),
            ("with t as (select 1) select * from public.t", "public.t=select"),
            ("with recursive r(n) as (select 1 union all select n + 1 from r where n < 3) select * from r", ""),
            ("select * from (with t as (select 1) select * from t) x, t", "t=select"),
            // The shadowed table in the CTE's own body is not granted: the run fails, closed.
            ("with t as (select * from t) select * from t", ""),
            ("with d as (delete from t where id = 1 returning *) select * from d", "t=select,delete"),
            (
                "with d as (delete from t returning id) insert into archive select * from d",
                "archive=insert; t=select,delete",
            ),
            // Catalogs need no grant.
            ("select * from pg_tables", ""),
            ("select * from pg_catalog.pg_class c join t on true", "t=select"),
            ("select * from information_schema.tables", ""),
            // INSERT.
            ("insert into t values (1)", "t=insert"),
            ("insert into t (id) values (1), (2)", "t=insert"),
            ("insert into t select * from other", "other=select; t=insert"),
            ("insert into t values (1) returning id", "t=select,insert"),
            ("insert into t values (1) on conflict do nothing", "t=insert"),
            ("insert into t values (1) on conflict (id) do update set n = excluded.n", "t=select,insert,update"),
            ("insert into s.t values ((select max(id) from other))", "other=select; s.t=insert"),
            // UPDATE.
            ("update t set n = 1", "t=update"),
            ("update t set n = 1 where id = 2", "t=select,update"),
            ("update t set n = n + 1", "t=select,update"),
            ("update t set n = 1 returning *", "t=select,update"),
            ("update t set n = o.n from other o where o.id = t.id", "other=select; t=select,update"),
            // `n` could be t's column (a correlated subquery): SELECT on t too.
            ("update t set n = (select max(n) from other)", "other=select; t=select,update"),
            ("update t set n = (select 1 from other)", "other=select; t=update"),
            ("update \"Odd\".\"T\" set n = 1", "Odd.T=update"),
            // DELETE.
            ("delete from t", "t=delete"),
            ("delete from t where id = 1", "t=select,delete"),
            ("DELETE FROM t WHERE id = 1", "t=select,delete"),
            ("delete from t using other where other.id = t.id", "other=select; t=select,delete"),
            ("delete from t where id in (select id from other)", "other=select; t=select,delete"),
            // sqlparser reads `ONLY t` as table `only`, alias t: refused rather than misread.
            ("delete from only t where true", "ERR: ONLY"),
            ("select * from only t", "ERR: ONLY"),
            ("select * from \"only\"", "only=select"),
            // TRUNCATE.
            ("truncate t", "t=truncate"),
            ("truncate table t, s.u", "t=truncate; s.u=truncate"),
            // Row locks need UPDATE.
            ("select * from t for update", "t=select,update"),
            ("select * from t for share", "t=select,update"),
            ("select * from t join other o on true for update of o", "other=select,update; t=select"),
            ("select * from t x for update of x", "t=select,update"),
            // COPY through psql's own streams.
            ("copy t to stdout", "t=select"),
            ("copy (select * from t) to stdout", "t=select"),
            ("copy t from stdin", "t=insert"),
            ("insert into t default values", "t=insert"),
            ("values (1), (2)", ""),
            ("select t.* from t", "t=select"),
            ("select * from t, lateral (select * from other where other.id = t.id) x", "other=select; t=select"),
            ("select * from unnest(array[1, 2]) x", ""),
            ("select * from generate_series(1, 3) g join t on t.id = g", "t=select"),
            ("select row_number() over (order by id) from t", "t=select"),
            ("with \"T\" as (select 1) select * from \"T\", t", "t=select"),
            ("with u as (update t set n = 1 returning id) select * from u", "t=select,update"),
            ("begin; delete from t where id = 1; commit", "t=select,delete"),
            ("explain select * from t for update", "t=select,update"),
            ("merge into t using other on t.id = other.id when matched then delete", "ERR: MERGE"),
            ("lock table t", "ERR: cannot be scoped"),
            ("prepare p as delete from t", "ERR: cannot be scoped"),
            ("listen ch", "ERR: cannot be scoped"),
            ("refresh materialized view mv", "ERR: cannot be scoped"),
            ("reindex table t", "ERR: cannot be scoped"),
            // Several texts merge.
            (
                "insert into t values (1); select * from other; delete from t where id = 1",
                "other=select; t=select,insert,delete",
            ),
            // What cannot be scoped.
            ("drop table t", "ERR: DROP TABLE"),
            ("alter table t add column x int", "ERR: ALTER TABLE"),
            ("create table x ()", "ERR: CREATE TABLE"),
            ("create index i on t (id)", "ERR: CREATE INDEX"),
            ("grant select on t to public", "ERR: GRANT"),
            ("vacuum t", "ERR: VACUUM t needs the object's owner"),
            ("select purge()", "ERR: purge()"),
            ("select * from purge()", "ERR: purge()"),
            ("select nextval('s')", "ERR: nextval()"),
            ("delete from t where id = evil()", "ERR: evil()"),
            ("insert into t values (public.now())", "ERR: public.now()"),
            ("select 1 OPERATOR(public.+) 2", "ERR: user-defined operator"),
            ("copy t to '/tmp/x'", "ERR: server file or program"),
            ("copy t to program 'sh'", "ERR: server file or program"),
            ("select * into newt from t", "ERR: SELECT INTO"),
            ("table t", "ERR: does not parse"),
            ("truncate t cascade", "ERR: CASCADE"),
            ("truncate t restart identity", "ERR: RESTART IDENTITY"),
            ("select * from (select * from t) x for update", "ERR: row locks over a subquery"),
            ("select * from t for update of nope", "ERR: names no table"),
            ("select * from db.s.t", "ERR: more than schema and table"),
            ("\\d t", "ERR: meta-command"),
            ("select 1;\n\\! rm -rf /", "ERR: meta-command"),
            ("select * from :tbl", "ERR: psql variable"),
            ("select * frm t", "ERR: does not parse"),
            ("call p()", "ERR: CALL"),
            ("do $$ begin delete from t; end $$", "ERR: cannot be scoped"),
            ("set role postgres; drop table t", "ERR: DROP TABLE"),
        ];
        let mut failures = Vec::new();
        for (sql, want) in cases {
            let got = shown(&[sql]);
            let ok = match want.strip_prefix("ERR: ") {
                Some(word) => got.starts_with("ERR: ") && got.contains(word) && got.contains("[mint]"),
                None => got == *want,
            };
            if !ok {
                failures.push(format!("{sql:?}\n   want {want:?}\n    got {got:?}"));
            }
        }
        assert!(failures.is_empty(), "{} of {} rows wrong:\n{}", failures.len(), cases.len(), failures.join("\n"));
    }

    #[test]
    fn texts_merge_and_order() {
        assert_eq!(
            shown(&["delete from t where id = 1", "select * from other", "insert into a.b values (1)"]),
            "other=select; t=select,delete; a.b=insert"
        );
        assert_eq!(shown(&["select 1", "drop table t"]).get(..10), Some("ERR: DROP "));
    }

    #[test]
    fn read_only_and_schemas() {
        let s = scope(&["select * from s.t join u on true"]).expect("scopes");
        assert!(s.is_read_only());
        assert_eq!(s.schemas().into_iter().collect::<Vec<_>>(), ["s"]);
        assert!(!scope(&["delete from t"]).expect("scopes").is_read_only());
        assert!(scope(&["select 1"]).expect("scopes").is_read_only());
    }
}
