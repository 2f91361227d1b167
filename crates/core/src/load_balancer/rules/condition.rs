//! Conditions: a rule's expression in Cloudflare's rules language, parsed and type-checked
//! once (when the load balancer is validated) into a tree that evaluates a request's facts
//! without allocating for the common comparisons.
//!
//! Grammar, loosest first: `or ||`, `xor ^^`, `and &&`, `not !`, then a comparison
//! `value op literal`, a Boolean value on its own, or a parenthesised condition. A value is
//! a field, a function call (`lower`, `len`, `starts_with`, `ends_with`, `any`, `all`), or
//! either indexed: `["name"]` on a map, `[n]` on an array, `[*]` for each element.

use std::borrow::Cow;
use std::net::IpAddr;

use regex::Regex;

use super::fields::{Facts, Field, Scalar, Scope, Type, Value};
use super::lexer::{tokens, Kind, Token};

/// The longest condition accepted, in bytes (Cloudflare's expression limit).
pub const MAX_CONDITION: usize = 4096;
/// How deep parentheses, `not` and calls may nest (the parser recurses).
pub const MAX_DEPTH: usize = 32;
/// The compiled size limit of one `matches` pattern, in bytes.
pub const MAX_REGEX: usize = 256 * 1024;
/// The most `matches` patterns in one condition (with [`MAX_REGEX`], a bound on what one
/// condition's patterns hold in memory).
pub const MAX_PATTERNS: usize = 8;

/// Which load balancer a condition is written for: the fields it may read differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Proxied,
    DnsOnly,
}

/// A parsed condition. Equal when written the same for the same mode.
#[derive(Debug, Clone)]
pub struct Condition {
    source: String,
    mode: Mode,
    /// `None`: the empty condition, always true.
    root: Option<Node>,
    reads_client: bool,
    patterns: usize,
}

impl PartialEq for Condition {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source && self.mode == other.mode
    }
}

impl Condition {
    /// Parses `source` for a load balancer of `mode`; the error names the character.
    pub fn parse(source: &str, mode: Mode) -> Result<Condition, String> {
        if source.len() > MAX_CONDITION {
            return Err(format!(
                "a condition is at most {MAX_CONDITION} bytes long, this one is {}",
                source.len()
            ));
        }
        let toks = tokens(source)?;
        let mut p = Parser {
            toks,
            pos: 0,
            mode,
            depth: 0,
            end: source.len(),
            reads_client: false,
            patterns: 0,
        };
        let root = if p.toks.is_empty() {
            None
        } else {
            let (node, ty) = p.or()?;
            if let Some(t) = p.toks.get(p.pos) {
                return Err(format!(
                    "at character {}: expected `and`, `or`, `xor` or the end, found {}",
                    t.at + 1,
                    show(&t.kind)
                ));
            }
            if ty != Type::Bool {
                return Err(format!(
                    "the condition is {ty}, not a Boolean{}",
                    if matches!(ty, Type::Array(Scalar::Bool)) {
                        ": wrap a comparison on [*] in any(…) or all(…)"
                    } else {
                        ": compare it with something"
                    }
                ));
            }
            Some(node)
        };
        Ok(Condition {
            source: source.to_owned(),
            mode,
            root,
            reads_client: p.reads_client,
            patterns: p.patterns,
        })
    }

    /// The empty condition: always true.
    pub fn always(mode: Mode) -> Condition {
        Condition {
            source: String::new(),
            mode,
            root: None,
            reads_client: false,
            patterns: 0,
        }
    }

    /// How many `matches` patterns it compiled.
    pub fn patterns(&self) -> usize {
        self.patterns
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether the condition reads the client's address (DNS answers then depend on the
    /// client subnet).
    pub fn reads_client(&self) -> bool {
        self.reads_client
    }

    /// Whether a request with these facts matches.
    pub fn matches(&self, facts: &Facts<'_>) -> bool {
        self.root
            .as_ref()
            .is_none_or(|n| matches!(n.eval(facts), Value::Bool(true)))
    }
}

#[derive(Debug, Clone)]
enum Node {
    Field(Field),
    /// `map["name"]`: every value under the name (header names compared lower case).
    Key(Box<Node>, String),
    /// `array[n]`.
    At(Box<Node>, usize),
    /// `array[*]`: the elements, each on its own (comparisons and calls map over them).
    Each(Box<Node>),
    Lower(Box<Node>, bool),
    Len(Box<Node>, bool),
    StartsWith(Box<Node>, String, bool),
    EndsWith(Box<Node>, String, bool),
    Any(Box<Node>),
    All(Box<Node>),
    Compare(Box<Node>, Test, bool),
    Not(Box<Node>),
    And(Vec<Node>),
    Or(Vec<Node>),
    Xor(Box<Node>, Box<Node>),
}

#[derive(Debug, Clone)]
enum Test {
    Eq(Literal),
    Ne(Literal),
    Lt(Literal),
    Le(Literal),
    Gt(Literal),
    Ge(Literal),
    Contains(String),
    Matches(Box<Regex>),
    InBytes(Vec<String>),
    InInts(Vec<(i64, i64)>),
    InIps(Vec<Net>),
}

#[derive(Debug, Clone, PartialEq)]
enum Literal {
    Bytes(String),
    Int(i64),
    Ip(IpAddr),
}

/// An address range: a network (`10.0.0.0/8`), one address, or `a..b`.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Net {
    Cidr(ipnet::IpNet),
    Range(IpAddr, IpAddr),
}

impl Net {
    fn contains(&self, ip: &IpAddr) -> bool {
        match self {
            Net::Cidr(n) => n.contains(ip),
            Net::Range(a, b) => a <= ip && ip <= b && a.is_ipv4() == ip.is_ipv4(),
        }
    }
}

fn show(k: &Kind) -> String {
    match k {
        Kind::Word(w) => format!("`{w}`"),
        Kind::Str(s) | Kind::Pattern(s, _) => format!("the string {s:?}"),
        Kind::Sym(s) => format!("`{s}`"),
    }
}

const FUNCTIONS: [&str; 6] = ["any", "all", "lower", "len", "starts_with", "ends_with"];

struct Parser {
    toks: Vec<Token>,
    pos: usize,
    mode: Mode,
    depth: usize,
    /// Where the source ends, for "at the end" messages.
    end: usize,
    reads_client: bool,
    patterns: usize,
}

type Typed = (Node, Type);

fn need_bool(ty: Type, at: usize, what: &str) -> Result<(), String> {
    if ty == Type::Bool {
        Ok(())
    } else {
        Err(format!(
            "at character {at}: {what} needs a Boolean, not {ty}"
        ))
    }
}

impl Parser {
    fn peek(&self) -> Option<&Kind> {
        self.toks.get(self.pos).map(|t| &t.kind)
    }

    fn here(&self) -> usize {
        self.toks.get(self.pos).map_or(self.end, |t| t.at) + 1
    }

    fn err<T>(&self, what: impl std::fmt::Display) -> Result<T, String> {
        let found = self.peek().map_or_else(|| "the end".to_owned(), show);
        Err(format!(
            "at character {}: expected {what}, found {found}",
            self.here()
        ))
    }

    fn eat_sym(&mut self, sym: &str) -> bool {
        if matches!(self.peek(), Some(Kind::Sym(s)) if *s == sym) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect_sym(&mut self, sym: &str) -> Result<(), String> {
        if self.eat_sym(sym) {
            Ok(())
        } else {
            self.err(format_args!("`{sym}`"))
        }
    }

    /// Eats a word operator or its symbol (`and` / `&&`).
    fn eat_op(&mut self, word: &str, sym: &str) -> bool {
        let hit = match self.peek() {
            Some(Kind::Word(w)) => w == word,
            Some(Kind::Sym(s)) => !sym.is_empty() && *s == sym,
            _ => false,
        };
        if hit {
            self.pos += 1;
        }
        hit
    }

    fn nest(&mut self) -> Result<(), String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(format!(
                "at character {}: the condition nests deeper than {MAX_DEPTH} levels",
                self.here()
            ));
        }
        Ok(())
    }

    /// One level of a binary logical operator: `next (op next)*`.
    fn chain(
        &mut self,
        word: &str,
        sym: &str,
        next: fn(&mut Self) -> Result<Typed, String>,
    ) -> Result<(Vec<Node>, Type), String> {
        let at = self.here();
        let (first, ty) = next(self)?;
        let mut all = vec![first];
        while self.eat_op(word, sym) {
            need_bool(ty, at, &format!("`{word}`"))?;
            let at = self.here();
            let (n, t) = next(self)?;
            need_bool(t, at, &format!("`{word}`"))?;
            all.push(n);
        }
        Ok((all, ty))
    }

    fn or(&mut self) -> Result<Typed, String> {
        let (mut all, ty) = self.chain("or", "||", Self::xor)?;
        Ok(match all.len() {
            1 => (all.remove(0), ty),
            _ => (Node::Or(all), Type::Bool),
        })
    }

    fn xor(&mut self) -> Result<Typed, String> {
        let (all, ty) = self.chain("xor", "^^", Self::and)?;
        let mut it = all.into_iter();
        let first = it.next().expect("a chain has a first");
        let mut out = (first, ty);
        for n in it {
            out = (Node::Xor(Box::new(out.0), Box::new(n)), Type::Bool);
        }
        Ok(out)
    }

    fn and(&mut self) -> Result<Typed, String> {
        let (mut all, ty) = self.chain("and", "&&", Self::not)?;
        Ok(match all.len() {
            1 => (all.remove(0), ty),
            _ => (Node::And(all), Type::Bool),
        })
    }

    fn not(&mut self) -> Result<Typed, String> {
        if self.eat_op("not", "!") {
            self.nest()?;
            let at = self.here();
            let (n, t) = self.not()?;
            self.depth -= 1;
            need_bool(t, at, "`not`")?;
            return Ok((Node::Not(Box::new(n)), Type::Bool));
        }
        self.simple()
    }

    /// A parenthesised condition, or a value with an optional comparison.
    fn simple(&mut self) -> Result<Typed, String> {
        if self.eat_sym("(") {
            self.nest()?;
            let inner = self.or()?;
            self.expect_sym(")")?;
            self.depth -= 1;
            return Ok(inner);
        }
        let at = self.here();
        let (value, ty, each) = self.value()?;
        let Some(op) = self.operator() else {
            return match (ty, each) {
                (Type::Bool, false) => Ok((value, Type::Bool)),
                (Type::Bool, true) => Ok((value, Type::Array(Scalar::Bool))),
                _ => Ok((value, ty_each(ty, each))),
            };
        };
        let test = self.test(op, ty, at)?;
        let out = if each {
            Type::Array(Scalar::Bool)
        } else {
            Type::Bool
        };
        Ok((Node::Compare(Box::new(value), test, each), out))
    }

    fn operator(&mut self) -> Option<&'static str> {
        const OPS: [(&str, &str); 10] = [
            ("eq", "=="),
            ("ne", "!="),
            ("lt", "<"),
            ("le", "<="),
            ("gt", ">"),
            ("ge", ">="),
            ("contains", ""),
            ("matches", "~"),
            ("in", ""),
            ("wildcard", ""),
        ];
        OPS.iter().find(|(w, s)| self.eat_op(w, s)).map(|(w, _)| *w)
    }

    /// The literal side of a comparison, checked against the value's type.
    fn test(&mut self, op: &str, ty: Type, at: usize) -> Result<Test, String> {
        let wrong = |what: &str| {
            Err(format!(
                "at character {at}: `{op}` cannot compare {ty}{what}"
            ))
        };
        match (op, ty) {
            ("wildcard", _) => Err(format!(
                "at character {at}: `wildcard` is not supported in load balancing rules; use `matches`"
            )),
            (_, Type::Bool) => Err(format!(
                "at character {at}: a Boolean field is used on its own (`field` or `not field`), not with `{op}`"
            )),
            (_, Type::Array(_) | Type::Map) => wrong(": index it ([0], [\"name\"]) or use [*] inside any(…)"),
            ("contains", Type::Bytes) => Ok(Test::Contains(self.string()?)),
            ("matches", Type::Bytes) => {
                let at = self.here();
                self.patterns += 1;
                if self.patterns > MAX_PATTERNS {
                    return Err(format!(
                        "at character {at}: a condition has at most {MAX_PATTERNS} `matches` patterns"
                    ));
                }
                let pattern = self.pattern()?;
                let re = regex::RegexBuilder::new(&pattern)
                    .size_limit(MAX_REGEX)
                    .dfa_size_limit(MAX_REGEX)
                    .build()
                    .map_err(|e| {
                        format!(
                            "at character {at}: the regular expression does not compile: {}",
                            first_line(&e.to_string())
                        )
                    })?;
                Ok(Test::Matches(Box::new(re)))
            }
            ("contains" | "matches", _) => wrong(": it works on strings"),
            ("in", _) => self.set(ty),
            (_, Type::Ip) if !matches!(op, "eq" | "ne") => wrong(": addresses take eq, ne and in"),
            (_, _) => {
                let lit = self.literal(ty)?;
                Ok(match op {
                    "eq" => Test::Eq(lit),
                    "ne" => Test::Ne(lit),
                    "lt" => Test::Lt(lit),
                    "le" => Test::Le(lit),
                    "gt" => Test::Gt(lit),
                    _ => Test::Ge(lit),
                })
            }
        }
    }

    fn string(&mut self) -> Result<String, String> {
        match self.peek() {
            Some(Kind::Str(s)) => {
                let s = s.clone();
                self.pos += 1;
                Ok(s)
            }
            Some(Kind::Pattern(_, why)) => Err(why.clone()),
            _ => self.err("a string in quotes"),
        }
    }

    /// The pattern after `matches`: a string, escapes other than `\"` left to the regular
    /// expression (`"\.php$"`), as Cloudflare reads it.
    fn pattern(&mut self) -> Result<String, String> {
        match self.peek() {
            Some(Kind::Pattern(p, _)) => {
                let p = p.clone();
                self.pos += 1;
                Ok(p)
            }
            _ => self.string(),
        }
    }

    fn word(&mut self) -> Option<String> {
        match self.peek() {
            Some(Kind::Word(w)) => {
                let w = w.clone();
                self.pos += 1;
                Some(w)
            }
            _ => None,
        }
    }

    fn literal(&mut self, ty: Type) -> Result<Literal, String> {
        let at = self.here();
        match ty {
            Type::Bytes => Ok(Literal::Bytes(self.string()?)),
            Type::Int => match self.word().map(|w| w.parse::<i64>()) {
                Some(Ok(n)) => Ok(Literal::Int(n)),
                _ => Err(format!("at character {at}: expected an integer")),
            },
            _ => match self.word().map(|w| w.parse::<IpAddr>()) {
                Some(Ok(ip)) => Ok(Literal::Ip(ip)),
                _ => Err(format!("at character {at}: expected an IP address")),
            },
        }
    }

    /// `{ … }` after `in`: strings, integers and `a..b`, or addresses, networks and ranges.
    fn set(&mut self, ty: Type) -> Result<Test, String> {
        self.expect_sym("{")?;
        let mut bytes = Vec::new();
        let mut ints = Vec::new();
        let mut nets = Vec::new();
        while !self.eat_sym("}") {
            let at = self.here();
            if self.peek().is_none() {
                return self.err("`}`");
            }
            match ty {
                Type::Bytes => bytes.push(self.string()?),
                Type::Int => {
                    let w = self.word().unwrap_or_default();
                    let (a, b) = w.split_once("..").unwrap_or((&w, &w));
                    match (a.parse::<i64>(), b.parse::<i64>()) {
                        (Ok(a), Ok(b)) if a <= b => ints.push((a, b)),
                        _ => {
                            return Err(format!(
                                "at character {at}: expected an integer or a range a..b"
                            ))
                        }
                    }
                }
                _ => {
                    let w = self.word().unwrap_or_default();
                    nets.push(net(&w).ok_or_else(|| {
                        format!("at character {at}: expected an address, a network (10.0.0.0/8) or a range (a..b)")
                    })?);
                }
            }
        }
        Ok(match ty {
            Type::Bytes => Test::InBytes(bytes),
            Type::Int => Test::InInts(ints),
            _ => Test::InIps(nets),
        })
    }

    /// A field or function call, then any indexes: the node, its type, and whether it
    /// stands for each element of an array (`[*]`).
    fn value(&mut self) -> Result<(Node, Type, bool), String> {
        let at = self.here();
        let Some(name) = self.word() else {
            return self.err("a field or a function");
        };
        let (mut node, mut ty, mut each) = if FUNCTIONS.contains(&name.as_str()) {
            self.call(&name, at)?
        } else {
            let Some(field) = Field::by_name(&name) else {
                return Err(format!(
                    "at character {at}: {name:?} is not a field load balancing rules can use"
                ));
            };
            match (field.scope(), self.mode) {
                (Scope::Proxied, Mode::DnsOnly) => {
                    return Err(format!(
                        "at character {at}: {name} is only known to proxied load balancers"
                    ))
                }
                (Scope::DnsOnly, Mode::Proxied) => {
                    return Err(format!(
                        "at character {at}: {name} is only known to DNS-only (not proxied) load balancers"
                    ))
                }
                _ => {}
            }
            if matches!(field, Field::IpSrc | Field::EcsAddress | Field::EcsPresent) {
                self.reads_client = true;
            }
            (Node::Field(field), field.ty(), false)
        };
        while self.eat_sym("[") {
            let at = self.here();
            if each {
                return Err(format!(
                    "at character {at}: nothing can follow [*] but a comparison"
                ));
            }
            match (ty, self.peek().cloned()) {
                (Type::Array(elem), Some(Kind::Sym("*"))) => {
                    self.pos += 1;
                    node = Node::Each(Box::new(node));
                    ty = elem.ty();
                    each = true;
                }
                (Type::Array(elem), Some(Kind::Word(w))) => {
                    let i = w.parse::<usize>().map_err(|_| {
                        format!("at character {at}: an array index is a whole number or *")
                    })?;
                    self.pos += 1;
                    node = Node::At(Box::new(node), i);
                    ty = elem.ty();
                }
                (Type::Map, Some(Kind::Str(k))) => {
                    self.pos += 1;
                    let key = if matches!(node, Node::Field(Field::Headers)) {
                        k.to_ascii_lowercase()
                    } else {
                        k
                    };
                    node = Node::Key(Box::new(node), key);
                    ty = Type::Array(Scalar::Bytes);
                }
                (Type::Map, _) => return self.err("a name in quotes"),
                (Type::Array(_), _) => return self.err("an index or *"),
                _ => return Err(format!("at character {at}: {ty} cannot be indexed")),
            }
            self.expect_sym("]")?;
        }
        Ok((node, ty, each))
    }

    fn call(&mut self, name: &str, at: usize) -> Result<(Node, Type, bool), String> {
        self.expect_sym("(")?;
        self.nest()?;
        let arg_at = self.here();
        let out = match name {
            "any" | "all" => {
                let (n, t) = self.or()?;
                if t != Type::Array(Scalar::Bool) {
                    return Err(format!(
                        "at character {arg_at}: {name}() takes a comparison on [*] (an array of Booleans), not {t}"
                    ));
                }
                let node = if name == "any" {
                    Node::Any(Box::new(n))
                } else {
                    Node::All(Box::new(n))
                };
                (node, Type::Bool, false)
            }
            _ => {
                let (n, t, each) = self.value()?;
                let (arg_ok, result) = match name {
                    "lower" => (t == Type::Bytes, Scalar::Bytes),
                    "len" => (
                        t == Type::Bytes || (matches!(t, Type::Array(_)) && !each),
                        Scalar::Int,
                    ),
                    _ => (t == Type::Bytes, Scalar::Bool),
                };
                if !arg_ok {
                    return Err(format!(
                        "at character {arg_at}: {name}() does not take {}",
                        ty_each(t, each)
                    ));
                }
                let node = match name {
                    "lower" => Node::Lower(Box::new(n), each),
                    "len" => Node::Len(Box::new(n), each),
                    _ => {
                        self.expect_sym(",")?;
                        let lit = self.string()?;
                        if name == "starts_with" {
                            Node::StartsWith(Box::new(n), lit, each)
                        } else {
                            Node::EndsWith(Box::new(n), lit, each)
                        }
                    }
                };
                if each {
                    (node, Type::Array(result), false)
                } else {
                    (node, result.ty(), false)
                }
            }
        };
        self.expect_sym(")")
            .map_err(|e| format!("{e} (closing {name}() opened at character {at})"))?;
        self.depth -= 1;
        Ok(out)
    }
}

fn ty_each(ty: Type, each: bool) -> Type {
    match (ty, each) {
        (Type::Bytes, true) => Type::Array(Scalar::Bytes),
        (Type::Int, true) => Type::Array(Scalar::Int),
        (Type::Bool, true) => Type::Array(Scalar::Bool),
        _ => ty,
    }
}

fn first_line(s: &str) -> String {
    s.lines()
        .rfind(|l| !l.trim().is_empty())
        .unwrap_or(s)
        .trim()
        .to_owned()
}

fn net(w: &str) -> Option<Net> {
    if let Some((a, b)) = w.split_once("..") {
        let (a, b) = (a.parse::<IpAddr>().ok()?, b.parse::<IpAddr>().ok()?);
        return (a.is_ipv4() == b.is_ipv4() && a <= b).then_some(Net::Range(a, b));
    }
    if w.contains('/') {
        return w.parse::<ipnet::IpNet>().ok().map(|n| Net::Cidr(n.trunc()));
    }
    let ip = w.parse::<IpAddr>().ok()?;
    Some(Net::Range(ip, ip))
}

// ---- evaluation ----

impl Node {
    fn eval<'a>(&self, f: &Facts<'a>) -> Value<'a> {
        match self {
            Node::Field(field) => f.get(*field),
            Node::Key(map, key) => key_of(map, key, f),
            Node::At(arr, i) => match arr.eval(f) {
                Value::Array(mut v) if *i < v.len() => v.swap_remove(*i),
                _ => Value::Missing,
            },
            Node::Each(arr) => arr.eval(f),
            Node::Lower(n, each) => map(n.eval(f), *each, &|v| match v {
                Value::Bytes(s) if s.bytes().any(|b| b.is_ascii_uppercase()) => {
                    Value::Bytes(Cow::Owned(s.to_ascii_lowercase()))
                }
                other => other,
            }),
            Node::Len(n, each) => map(n.eval(f), *each, &|v| match v {
                Value::Bytes(s) => Value::Int(s.len() as i64),
                Value::Array(a) => Value::Int(a.len() as i64),
                _ => Value::Missing,
            }),
            Node::StartsWith(n, lit, each) => map(n.eval(f), *each, &|v| match v {
                Value::Bytes(s) => Value::Bool(s.starts_with(lit.as_str())),
                _ => Value::Missing,
            }),
            Node::EndsWith(n, lit, each) => map(n.eval(f), *each, &|v| match v {
                Value::Bytes(s) => Value::Bool(s.ends_with(lit.as_str())),
                _ => Value::Missing,
            }),
            Node::Any(n) => Value::Bool(match n.eval(f) {
                Value::Array(a) => a.contains(&Value::Bool(true)),
                _ => false,
            }),
            Node::All(n) => Value::Bool(match n.eval(f) {
                Value::Array(a) => a.iter().all(|v| *v == Value::Bool(true)),
                _ => false,
            }),
            Node::Compare(n, test, each) => {
                let v = n.eval(f);
                if *each {
                    match v {
                        Value::Array(a) => {
                            Value::Array(a.iter().map(|e| Value::Bool(test.on(e))).collect())
                        }
                        _ => Value::Missing,
                    }
                } else {
                    Value::Bool(test.on(&v))
                }
            }
            Node::Not(n) => match n.eval(f) {
                Value::Bool(b) => Value::Bool(!b),
                _ => Value::Bool(true),
            },
            Node::And(all) => Value::Bool(all.iter().all(|n| truth(n, f))),
            Node::Or(all) => Value::Bool(all.iter().any(|n| truth(n, f))),
            Node::Xor(a, b) => Value::Bool(truth(a, f) ^ truth(b, f)),
        }
    }
}

fn truth(n: &Node, f: &Facts<'_>) -> bool {
    matches!(n.eval(f), Value::Bool(true))
}

/// `map["key"]` without building the map when it is a field (the common case).
fn key_of<'a>(map: &Node, key: &str, f: &Facts<'a>) -> Value<'a> {
    let pairs = match map {
        Node::Field(Field::Headers) => {
            let Some(h) = &f.http else {
                return Value::Missing;
            };
            let v: Vec<Value<'a>> = h
                .headers
                .iter()
                .filter(|(n, _)| n == key)
                .map(|(_, v)| Value::Bytes(v.clone()))
                .collect();
            return if v.is_empty() {
                Value::Missing
            } else {
                Value::Array(v)
            };
        }
        other => other.eval(f),
    };
    match pairs {
        Value::Map(m) => {
            let v: Vec<Value<'a>> = m
                .into_iter()
                .filter(|(n, _)| n == key)
                .map(|(_, v)| Value::Bytes(v))
                .collect();
            if v.is_empty() {
                Value::Missing
            } else {
                Value::Array(v)
            }
        }
        _ => Value::Missing,
    }
}

fn map<'a>(v: Value<'a>, each: bool, f: &dyn Fn(Value<'a>) -> Value<'a>) -> Value<'a> {
    match (each, v) {
        (true, Value::Array(a)) => Value::Array(a.into_iter().map(f).collect()),
        (true, _) => Value::Missing,
        (false, v) => f(v),
    }
}

impl Test {
    /// Whether a value passes; a missing value, or one of another type, never does.
    fn on(&self, v: &Value<'_>) -> bool {
        use std::cmp::Ordering::{Equal, Greater, Less};
        let order = |lit: &Literal| match (v, lit) {
            (Value::Bytes(a), Literal::Bytes(b)) => Some(a.as_ref().cmp(b.as_str())),
            (Value::Int(a), Literal::Int(b)) => Some(a.cmp(b)),
            (Value::Ip(a), Literal::Ip(b)) => Some(a.cmp(b)),
            _ => None,
        };
        match self {
            Test::Eq(l) => order(l) == Some(Equal),
            Test::Ne(l) => order(l).is_some_and(|o| o != Equal),
            Test::Lt(l) => order(l) == Some(Less),
            Test::Le(l) => matches!(order(l), Some(Less | Equal)),
            Test::Gt(l) => order(l) == Some(Greater),
            Test::Ge(l) => matches!(order(l), Some(Greater | Equal)),
            Test::Contains(s) => matches!(v, Value::Bytes(b) if b.contains(s.as_str())),
            Test::Matches(re) => matches!(v, Value::Bytes(b) if re.is_match(b)),
            Test::InBytes(set) => matches!(v, Value::Bytes(b) if set.iter().any(|s| s == b)),
            Test::InInts(set) => {
                matches!(v, Value::Int(n) if set.iter().any(|(a, b)| a <= n && n <= b))
            }
            Test::InIps(set) => matches!(v, Value::Ip(ip) if set.iter().any(|n| n.contains(ip))),
        }
    }
}
