//! Reads the mongosh JavaScript a client is about to run and says whether it only reads or only
//! adds (`classify_mongosh`). Pure: text in, class out.

use super::SqlClass;

/// mongosh JavaScript that only reads: a deliberately small grammar, since guardsh does not run a
/// JavaScript engine. Accepted: `db.COLL.M(ARGS)` and `db.getCollection('c').M(ARGS)` with a
/// read method M, read-only chained calls (`.limit(5).sort({...})`), `db.getCollectionNames()`
/// and friends, and `show dbs|collections`; arguments are literals only (strings, numbers, true,
/// false, null, objects, arrays, ObjectId/ISODate of a string). Anything else, including the
/// server-side JavaScript operators and the `$out`/`$merge` stages, is not a read.
pub fn classify_mongosh(script: &str) -> SqlClass {
    match Script::new(script).map(|mut s| s.statements().map(|()| s.added.take())) {
        Ok(Ok(None)) => SqlClass::Read,
        Ok(Ok(Some(what))) => SqlClass::Add(what),
        Ok(Err(why)) | Err(why) => SqlClass::Unknown(format!("mongosh JavaScript guardsh does not follow ({why})")),
    }
}

const READ_METHODS: &[&str] = &[
    "find",
    "findOne",
    "countDocuments",
    "estimatedDocumentCount",
    "distinct",
    "aggregate",
    "count",
    "getIndexes",
    "stats",
    "dataSize",
    "storageSize",
    "totalIndexSize",
    "isCapped",
    "latencyStats",
];
const CHAIN_METHODS: &[&str] = &[
    "limit",
    "skip",
    "sort",
    "toArray",
    "pretty",
    "count",
    "size",
    "project",
    "hint",
    "batchSize",
    "itcount",
    "explain",
];
const DB_METHODS: &[&str] = &[
    "getCollectionNames",
    "getCollectionInfos",
    "stats",
    "version",
    "getName",
    "serverStatus",
    "hostInfo",
    "listCommands",
];
/// Collection methods that only add: new documents (without upserts or replacement), new
/// indexes. Their arguments are literals, held to the same keys as a read's.
const ADD_METHODS: &[&str] = &["insertOne", "insertMany", "createIndex", "createIndexes"];
/// `db.createCollection(...)`: a new collection.
const ADD_DB_METHODS: &[&str] = &["createCollection"];
/// `rs.status()` and the like: the replica set's state.
const RS_METHODS: &[&str] = &["status", "conf", "config", "isMaster", "hello", "printReplicationInfo"];
/// `expireAfterSeconds` makes an index a TTL index: the server deletes documents by it.
const FORBIDDEN_KEYS: &[&str] = &["$out", "$merge", "$where", "$function", "$accumulator", "expireAfterSeconds"];

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Num,
    Punct(char),
}

struct Script {
    toks: Vec<Tok>,
    at: usize,
    /// The first statement that adds rather than reads, in words.
    pub(super) added: Option<String>,
}

impl Script {
    pub(super) fn new(text: &str) -> Result<Self, String> {
        let mut toks = Vec::new();
        let mut chars = text.chars().peekable();
        while let Some(&c) = chars.peek() {
            if c.is_whitespace() {
                chars.next();
            } else if c.is_ascii_alphabetic() || c == '_' || c == '$' {
                let mut s = String::new();
                while let Some(&c) = chars.peek().filter(|c| c.is_ascii_alphanumeric() || **c == '_' || **c == '$') {
                    s.push(c);
                    chars.next();
                }
                toks.push(Tok::Ident(s));
            } else if c.is_ascii_digit() || c == '-' {
                chars.next();
                while chars.peek().is_some_and(|c| c.is_ascii_digit() || *c == '.') {
                    chars.next();
                }
                toks.push(Tok::Num);
            } else if c == '\'' || c == '"' {
                chars.next();
                let mut s = String::new();
                loop {
                    match chars.next() {
                        None => return Err("an unterminated string".into()),
                        // JavaScript escapes (`\u0064rop`) spell one word as another: not read.
                        Some('\\') => return Err("a backslash escape in a string".into()),
                        Some(q) if q == c => break,
                        Some(other) => s.push(other),
                    }
                }
                toks.push(Tok::Str(s));
            } else if ".(){}[],:;".contains(c) {
                toks.push(Tok::Punct(c));
                chars.next();
            } else {
                return Err(format!("the character {c:?}"));
            }
        }
        Ok(Self { toks, at: 0, added: None })
    }

    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.at)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.at).cloned();
        self.at += 1;
        t
    }

    fn punct(&mut self, c: char) -> Result<(), String> {
        match self.next() {
            Some(Tok::Punct(p)) if p == c => Ok(()),
            other => Err(format!("expected {c:?}, found {other:?}")),
        }
    }

    fn ident(&mut self) -> Result<String, String> {
        match self.next() {
            Some(Tok::Ident(s)) => Ok(s),
            other => Err(format!("expected a name, found {other:?}")),
        }
    }

    pub(super) fn statements(&mut self) -> Result<(), String> {
        while self.peek().is_some() {
            if self.peek() == Some(&Tok::Punct(';')) {
                self.next();
                continue;
            }
            self.statement()?;
        }
        Ok(())
    }

    fn statement(&mut self) -> Result<(), String> {
        match self.ident()?.as_str() {
            "show" => match self.ident()?.as_str() {
                "dbs" | "databases" | "collections" | "tables" => Ok(()),
                other => Err(format!("show {other}")),
            },
            "rs" => {
                self.punct('.')?;
                match self.ident()?.as_str() {
                    m if RS_METHODS.contains(&m) => self.call_args(),
                    other => Err(format!("rs.{other}()")),
                }
            }
            "db" => {
                self.punct('.')?;
                let name = self.ident()?;
                if self.peek() == Some(&Tok::Punct('(')) {
                    return match name.as_str() {
                        m if DB_METHODS.contains(&m) => self.call_args(),
                        m if ADD_DB_METHODS.contains(&m) => {
                            self.added.get_or_insert_with(|| format!("db.{m}() adds a collection"));
                            self.call_args()
                        }
                        "getCollection" => {
                            self.call_args()?;
                            self.punct('.')?;
                            self.collection_call()
                        }
                        other => Err(format!("db.{other}()")),
                    };
                }
                self.punct('.')?;
                self.collection_call()
            }
            other => Err(other.to_string()),
        }
    }

    fn collection_call(&mut self) -> Result<(), String> {
        let method = self.ident()?;
        if ADD_METHODS.contains(&method.as_str()) {
            self.added.get_or_insert_with(|| format!(".{method}() only adds"));
            // Nothing chains after an insert that could change what it does.
            return self.call_args();
        }
        if !READ_METHODS.contains(&method.as_str()) {
            return Err(format!(".{method}()"));
        }
        self.call_args()?;
        while self.peek() == Some(&Tok::Punct('.')) {
            self.next();
            let chained = self.ident()?;
            if !CHAIN_METHODS.contains(&chained.as_str()) {
                return Err(format!(".{chained}()"));
            }
            self.call_args()?;
        }
        Ok(())
    }

    fn call_args(&mut self) -> Result<(), String> {
        self.punct('(')?;
        if self.peek() == Some(&Tok::Punct(')')) {
            self.next();
            return Ok(());
        }
        loop {
            self.value()?;
            match self.next() {
                Some(Tok::Punct(',')) => {}
                Some(Tok::Punct(')')) => return Ok(()),
                other => return Err(format!("expected ',' or ')', found {other:?}")),
            }
        }
    }

    fn value(&mut self) -> Result<(), String> {
        match self.next() {
            Some(Tok::Str(_) | Tok::Num) => Ok(()),
            Some(Tok::Ident(i)) if ["true", "false", "null"].contains(&i.as_str()) => Ok(()),
            Some(Tok::Ident(i))
                if ["ObjectId", "ISODate", "NumberLong", "NumberInt", "NumberDecimal"].contains(&i.as_str()) =>
            {
                self.punct('(')?;
                match self.next() {
                    Some(Tok::Str(_) | Tok::Num) => {}
                    other => return Err(format!("{i}({other:?})")),
                }
                self.punct(')')
            }
            Some(Tok::Punct('{')) => self.object(),
            Some(Tok::Punct('[')) => self.array(),
            other => Err(format!("the value {other:?}")),
        }
    }

    fn object(&mut self) -> Result<(), String> {
        loop {
            let key = match self.next() {
                Some(Tok::Punct('}')) => return Ok(()),
                Some(Tok::Ident(k) | Tok::Str(k)) => k,
                other => return Err(format!("the key {other:?}")),
            };
            if FORBIDDEN_KEYS.contains(&key.as_str()) {
                return Err(format!("{key}, which writes or runs code on the server"));
            }
            self.punct(':')?;
            self.value()?;
            match self.next() {
                Some(Tok::Punct(',')) => {}
                Some(Tok::Punct('}')) => return Ok(()),
                other => return Err(format!("expected ',' or '}}', found {other:?}")),
            }
        }
    }

    fn array(&mut self) -> Result<(), String> {
        loop {
            if self.peek() == Some(&Tok::Punct(']')) {
                self.next();
                return Ok(());
            }
            self.value()?;
            match self.next() {
                Some(Tok::Punct(',')) => {}
                Some(Tok::Punct(']')) => return Ok(()),
                other => return Err(format!("expected ',' or ']', found {other:?}")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Inserts, new indexes and collections only add; with anything else they are not.
    #[test]
    fn additive_table() {
        let add = |js: &str| matches!(classify_mongosh(js), SqlClass::Add(_));
        let cases: &[(&str, bool)] = &[
            ("db.users.insertOne({email: 'a@example.com'})", true),
            ("db.users.insertMany([{a: 1}, {a: 2}])", true),
            ("db.orders.createIndex({created_at: 1})", true),
            ("db.createCollection('audit')", true),
            ("db.users.find(); db.users.insertOne({a: 1})", true),
            ("db.users.insertOne({a: 1}); db.users.drop()", false),
            ("db.users.insertOne({$where: 'sleep(1)'})", false),
            ("db.users.insertOne({a: 1}).then(x => x)", false),
            ("db.users.replaceOne({}, {a: 1})", false),
            ("db.users.createIndex({createdAt: 1}, {expireAfterSeconds: 1})", false),
            ("db.users.find()", false),
        ];
        for (js, want) in cases {
            assert_eq!(add(js), *want, "{js:?}: {:?}", classify_mongosh(js));
        }
        assert_eq!(classify_mongosh("rs.status()"), SqlClass::Read);
        assert_ne!(classify_mongosh("rs.reconfig({})"), SqlClass::Read);
    }

    #[test]
    fn table() {
        let cases: &[(&str, bool)] = &[
            ("db.users.find()", true),
            ("db.users.find({age: {$gt: 30}}).limit(5).sort({name: 1})", true),
            ("db.users.countDocuments({})", true),
            ("db.users.find({name: 'a\\'b'})", false),
            ("db['\\u0064ropDatabase']()", false),
            ("db.getCollection('drops').findOne({_id: ObjectId('64b7f0')})", true),
            ("db.orders.aggregate([{$match: {status: 'open'}}, {$group: {_id: '$user', n: {$sum: 1}}}])", true),
            ("db.getCollectionNames()", true),
            ("show dbs; show collections", true),
            ("db.users.find({name: 'dropDatabase()'}).toArray()", true),
            ("db.dropDatabase()", false),
            ("db.users.drop()", false),
            ("db.users.deleteMany({})", false),
            ("db.users.updateOne({}, {$set: {admin: true}})", false),
            ("db.users.insertOne({a: 1})", false),
            ("db.orders.aggregate([{$out: 'users'}])", false),
            ("db.orders.aggregate([{$merge: {into: 'users'}}])", false),
            ("db.users.find({$where: 'sleep(1000)'})", false),
            ("db['drop' + 'Database']()", false),
            ("db.users.find().forEach(d => db.users.deleteOne(d))", false),
            ("db.users.find(); db.users.drop()", false),
            ("db.adminCommand({shutdown: 1})", false),
            ("db.runCommand({dropDatabase: 1})", false),
            ("db.getSiblingDB('admin').dropDatabase()", false),
            ("var x = 1", false),
            ("load('evil.js')", false),
            ("db.users.find(", false),
        ];
        for (js, read) in cases {
            assert_eq!(classify_mongosh(js) == SqlClass::Read, *read, "{js:?}: {:?}", classify_mongosh(js));
        }
    }
}
