//! `x-kubernetes-validations`: compiling rules when the CRD is loaded, and evaluating them
//! at admission the way kube-apiserver's `apiextensions-apiserver/pkg/apiserver/schema/cel`
//! does.
//!
//! kube-cel supplies the Kubernetes CEL function library (`quantity`, `isURL`, `sets.*`,
//! ...) on top of the `cel` interpreter. Everything around it is done here: binding
//! `self`/`oldSelf` to values typed by the schema (escaped property names, `date-time`,
//! `duration` and `byte` formats, `metadata.name` at the resource root), correlating
//! old values (object fields by name, `map` list items by key), transition rules and
//! `optionalOldSelf`, ratcheting of unchanged values, messages, reasons and field paths.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::ValidationRule;
use kube_cel::KubeCelExt;
use kube_cel::cel::common::ast::{Expr, IdedExpr};
use kube_cel::cel::objects::{Key, Map, OptionalValue};
use kube_cel::cel::{Context, ExecutionError, Program, Value as CelValue};
use serde_json::Value;

use crate::errors::FieldError;
use crate::formats;
use crate::path::FieldPath;
use crate::schema::Node;

/// The `reason`s a rule may give.
pub(crate) const REASONS: [&str; 4] =
    ["FieldValueDuplicate", "FieldValueForbidden", "FieldValueInvalid", "FieldValueRequired"];

/// kube-apiserver's limit on an evaluated `messageExpression`.
const MAX_MESSAGE_EXPRESSION_BYTES: usize = 5 * 1024;

/// A compiled `x-kubernetes-validations` entry.
pub(crate) struct Rule {
    pub rule: String,
    pub program: Program,
    pub message: Option<String>,
    pub message_expression: Option<Program>,
    pub reason: Option<String>,
    pub field_path: Option<FieldPath>,
    pub uses_old_self: bool,
    pub optional_old_self: bool,
    /// The fields of `self` and `oldSelf` the rule and its message read (CEL names);
    /// `None` when they use a value whole.
    pub reads: Option<BTreeSet<String>>,
}

impl std::fmt::Debug for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rule").field("rule", &self.rule).finish_non_exhaustive()
    }
}

impl Rule {
    /// `ruleErrorString`: the message if there is one, else the rule.
    fn error_string(&self) -> &str {
        match self.message.as_deref().map(str::trim) {
            Some(m) if !m.is_empty() => m,
            _ => self.rule.trim(),
        }
    }

    /// `ruleMessageOrDefault`.
    fn message_or_default(&self) -> String {
        match self.message.as_deref().map(str::trim) {
            Some(m) if !m.is_empty() => m.to_owned(),
            _ => format!("failed rule: {}", self.error_string()),
        }
    }
}

/// What part of a rule failed to compile.
pub(crate) enum CompileFailure {
    Rule(String),
    MessageExpression(String),
    FieldPath(String),
}

/// Compiles one rule against the schema node it is attached to.
pub(crate) fn compile(raw: &ValidationRule, node: &Node) -> Result<Rule, CompileFailure> {
    let program = Program::compile(&raw.rule).map_err(|e| CompileFailure::Rule(format!("compilation failed: {e}")))?;
    let optional_old_self = raw.optional_old_self == Some(true);
    check_expression(&program.expression().expr, node, optional_old_self)
        .map_err(|e| CompileFailure::Rule(format!("compilation failed: {e}")))?;
    let uses_old_self = program.references().has_variable("oldSelf");

    let message_expression = match raw.message_expression.as_deref().map(str::trim) {
        Some(expr) if !expr.is_empty() => {
            let compiled = Program::compile(expr)
                .map_err(|e| CompileFailure::MessageExpression(format!("messageExpression compilation failed: {e}")))?;
            check_expression(&compiled.expression().expr, node, false)
                .map_err(|e| CompileFailure::MessageExpression(format!("messageExpression compilation failed: {e}")))?;
            Some(compiled)
        }
        _ => None,
    };

    let field_path = match raw.field_path.as_deref().map(str::trim) {
        Some(fp) if !fp.is_empty() => Some(
            parse_field_path(fp, node)
                .map_err(|e| CompileFailure::FieldPath(format!("fieldPath must be a valid path: {e}")))?,
        ),
        _ => None,
    };

    let reads = fields_read(&program.expression().expr).and_then(|mut reads| {
        if let Some(message) = &message_expression {
            reads.extend(fields_read(&message.expression().expr)?);
        }
        Some(reads)
    });
    Ok(Rule {
        rule: raw.rule.clone(),
        program,
        message: raw.message.clone(),
        message_expression,
        reason: raw.reason.clone(),
        field_path,
        uses_old_self,
        optional_old_self,
        reads,
    })
}

/// The fields an expression selects from `self` or `oldSelf` (`self.spec`,
/// `has(self.status)`), or `None` when it uses either whole: compares it, iterates it,
/// passes it to a function, or names a variable after it.
fn fields_read(expr: &Expr) -> Option<BTreeSet<String>> {
    fn walk(expr: &Expr, reads: &mut BTreeSet<String>) -> Option<()> {
        let bound = |name: &str| name == "self" || name == "oldSelf";
        match expr {
            Expr::Ident(name) if bound(name) => None,
            Expr::Select(select) => match &select.operand.expr {
                Expr::Ident(name) if bound(name) => {
                    reads.insert(select.field.clone());
                    Some(())
                }
                operand => walk(operand, reads),
            },
            Expr::Call(call) => {
                if let Some(target) = &call.target {
                    walk(&target.expr, reads)?;
                }
                call.args.iter().try_for_each(|arg| walk(&arg.expr, reads))
            }
            Expr::Comprehension(comp) => {
                let shadowing = [Some(&comp.iter_var), comp.iter_var2.as_ref(), Some(&comp.accu_var)];
                if shadowing.into_iter().flatten().any(|var| bound(var)) {
                    return None;
                }
                [&comp.iter_range, &comp.accu_init, &comp.loop_cond, &comp.loop_step, &comp.result]
                    .into_iter()
                    .try_for_each(|part| walk(&part.expr, reads))
            }
            Expr::List(list) => list.elements.iter().try_for_each(|element| walk(&element.expr, reads)),
            Expr::Map(map) => map.entries.iter().try_for_each(|entry| walk_entry(&entry.expr, reads)),
            Expr::Struct(s) => s.entries.iter().try_for_each(|entry| walk_entry(&entry.expr, reads)),
            Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => Some(()),
        }
    }
    fn walk_entry(entry: &kube_cel::cel::common::ast::EntryExpr, reads: &mut BTreeSet<String>) -> Option<()> {
        use kube_cel::cel::common::ast::EntryExpr;
        match entry {
            EntryExpr::StructField(field) => walk(&field.value.expr, reads),
            EntryExpr::MapEntry(entry) => {
                walk(&entry.key.expr, reads)?;
                walk(&entry.value.expr, reads)
            }
        }
    }
    let mut reads = BTreeSet::new();
    walk(expr, &mut reads).map(|()| reads)
}

// ---------------------------------------------------------------------------------------
// Static checks: undeclared identifiers and fields that the schema does not declare, which
// kube-apiserver's type checker refuses when the CRD is applied.

/// What is statically known about a sub-expression.
#[derive(Clone, Copy)]
enum Ty<'a> {
    Unknown,
    Schema(&'a Node),
    /// `self.metadata` at a resource root: only `name` and `generateName`.
    Metadata,
}

/// Namespaces of the Kubernetes CEL libraries (`sets.contains(...)`, `math.greatest(...)`).
const NAMESPACES: [&str; 10] =
    ["sets", "math", "optional", "cel", "strings", "lists", "base64", "format", "jsonpatch", "ip"];
/// Type identifiers (`type(x) == string`).
const TYPE_NAMES: [&str; 12] =
    ["int", "uint", "double", "bool", "string", "bytes", "list", "map", "null_type", "type", "duration", "timestamp"];

struct Scope<'a, 'p> {
    vars: Vec<(&'p str, Ty<'a>)>,
}

fn check_expression(expr: &Expr, node: &Node, optional_old_self: bool) -> Result<(), String> {
    let mut scope = Scope { vars: Vec::new() };
    check(expr, node, optional_old_self, &mut scope).map(|_| ())
}

fn check<'a, 'p>(
    expr: &'p Expr,
    node: &'a Node,
    optional_old_self: bool,
    scope: &mut Scope<'a, 'p>,
) -> Result<Ty<'a>, String> {
    match expr {
        Expr::Ident(name) => {
            if let Some((_, ty)) = scope.vars.iter().rev().find(|(n, _)| n == name) {
                return Ok(*ty);
            }
            match name.as_str() {
                "self" => Ok(Ty::Schema(node)),
                "oldSelf" if optional_old_self => Ok(Ty::Unknown),
                "oldSelf" => Ok(Ty::Schema(node)),
                n if n.starts_with('@') || TYPE_NAMES.contains(&n) => Ok(Ty::Unknown),
                n => Err(format!("undeclared reference to '{n}'")),
            }
        }
        Expr::Select(select) => {
            let operand = check(&select.operand.expr, node, optional_old_self, scope)?;
            select_field(operand, &select.field)
        }
        Expr::Call(call) => {
            let namespace_call = matches!(
                call.target.as_deref(),
                Some(IdedExpr { expr: Expr::Ident(ns), .. })
                    if NAMESPACES.contains(&ns.as_str()) && !scope.vars.iter().any(|(n, _)| n == ns)
            );
            let target = match &call.target {
                Some(target) if !namespace_call => Some(check(&target.expr, node, optional_old_self, scope)?),
                _ => None,
            };
            let mut args = Vec::with_capacity(call.args.len());
            for arg in &call.args {
                args.push(check(&arg.expr, node, optional_old_self, scope)?);
            }
            Ok(match (call.func_name.as_str(), target, args.first()) {
                ("_[_]", None, Some(Ty::Schema(container))) => element_of(container),
                _ => Ty::Unknown,
            })
        }
        Expr::Comprehension(comp) => {
            let range = check(&comp.iter_range.expr, node, optional_old_self, scope)?;
            let element = match range {
                Ty::Schema(n) if n.type_ == "array" => n.items.as_deref().map_or(Ty::Unknown, Ty::Schema),
                _ => Ty::Unknown,
            };
            check(&comp.accu_init.expr, node, optional_old_self, scope)?;
            let depth = scope.vars.len();
            match &comp.iter_var2 {
                // Two-variable form: index/key then value.
                Some(second) => {
                    scope.vars.push((comp.iter_var.as_str(), Ty::Unknown));
                    let value = match range {
                        Ty::Schema(n) if n.type_ == "object" => n.additional_schema().map_or(Ty::Unknown, Ty::Schema),
                        _ => element,
                    };
                    scope.vars.push((second.as_str(), value));
                }
                None => scope.vars.push((comp.iter_var.as_str(), element)),
            }
            scope.vars.push((comp.accu_var.as_str(), Ty::Unknown));
            let result = (|| {
                check(&comp.loop_cond.expr, node, optional_old_self, scope)?;
                check(&comp.loop_step.expr, node, optional_old_self, scope)?;
                check(&comp.result.expr, node, optional_old_self, scope)
            })();
            scope.vars.truncate(depth);
            result.map(|_| Ty::Unknown)
        }
        Expr::List(list) => {
            for element in &list.elements {
                check(&element.expr, node, optional_old_self, scope)?;
            }
            Ok(Ty::Unknown)
        }
        Expr::Map(map) => {
            for entry in &map.entries {
                check_entry(&entry.expr, node, optional_old_self, scope)?;
            }
            Ok(Ty::Unknown)
        }
        Expr::Struct(s) => {
            for entry in &s.entries {
                check_entry(&entry.expr, node, optional_old_self, scope)?;
            }
            Ok(Ty::Unknown)
        }
        Expr::Literal(_) | Expr::Unspecified => Ok(Ty::Unknown),
    }
}

fn check_entry<'a, 'p>(
    entry: &'p kube_cel::cel::common::ast::EntryExpr,
    node: &'a Node,
    optional_old_self: bool,
    scope: &mut Scope<'a, 'p>,
) -> Result<(), String> {
    use kube_cel::cel::common::ast::EntryExpr;
    match entry {
        EntryExpr::StructField(field) => {
            check(&field.value.expr, node, optional_old_self, scope)?;
        }
        EntryExpr::MapEntry(entry) => {
            check(&entry.key.expr, node, optional_old_self, scope)?;
            check(&entry.value.expr, node, optional_old_self, scope)?;
        }
    }
    Ok(())
}

fn element_of(container: &Node) -> Ty<'_> {
    match container.type_.as_str() {
        "array" => container.items.as_deref().map_or(Ty::Unknown, Ty::Schema),
        "object" => container.additional_schema().map_or(Ty::Unknown, Ty::Schema),
        _ => Ty::Unknown,
    }
}

fn select_field<'a>(operand: Ty<'a>, field: &str) -> Result<Ty<'a>, String> {
    match operand {
        Ty::Unknown => Ok(Ty::Unknown),
        Ty::Metadata => match field {
            "name" | "generateName" => Ok(Ty::Unknown),
            _ => Err(format!("undefined field '{field}'")),
        },
        Ty::Schema(node) => {
            if node.resource_root {
                match field {
                    "apiVersion" | "kind" => return Ok(Ty::Unknown),
                    "metadata" => return Ok(Ty::Metadata),
                    _ => {}
                }
            }
            if node.int_or_string || node.type_ != "object" {
                return Ok(Ty::Unknown);
            }
            if let Some(additional) = node.additional_schema() {
                return Ok(Ty::Schema(additional));
            }
            if let Some((_, prop)) = node.properties.iter().find(|(name, _)| escape(name).as_deref() == Some(field)) {
                return Ok(Ty::Schema(prop));
            }
            if node.preserve_unknown || !node.has_properties {
                return Ok(Ty::Unknown);
            }
            Err(format!("undefined field '{field}'"))
        }
    }
}

/// CEL's escaping of property names (`k8s.io/apiserver/pkg/cel.Escape`); `None` for names
/// that cannot be accessed from CEL.
pub(crate) fn escape(ident: &str) -> Option<String> {
    const RESERVED: [&str; 21] = [
        "true",
        "false",
        "null",
        "in",
        "as",
        "break",
        "const",
        "continue",
        "else",
        "for",
        "function",
        "if",
        "import",
        "let",
        "loop",
        "package",
        "namespace",
        "return",
        "var",
        "void",
        "while",
    ];
    let first = ident.chars().next()?;
    if first.is_ascii_digit() {
        return None;
    }
    if RESERVED.contains(&ident) {
        return Some(format!("__{ident}__"));
    }
    let mut out = String::with_capacity(ident.len());
    let mut chars = ident.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '_' if chars.peek() == Some(&'_') => {
                chars.next();
                out.push_str("__underscores__");
            }
            '.' => out.push_str("__dot__"),
            '-' => out.push_str("__dash__"),
            '/' => out.push_str("__slash__"),
            c if c.is_ascii_alphanumeric() || c == '_' => out.push(c),
            _ => return None,
        }
    }
    Some(out)
}

/// Validates a rule's `fieldPath` against the node's schema (`ValidFieldPath`) and returns
/// it normalised.
fn parse_field_path(raw: &str, node: &Node) -> Result<FieldPath, String> {
    let tokens = tokenize_field_path(raw)?;
    let mut path = FieldPath::root();
    let mut schema = node;
    let mut i = 0;
    while i < tokens.len() {
        let name = match tokens[i].as_str() {
            "." => {
                i += 1;
                tokens.get(i).ok_or("unexpected end of JSON path")?.clone()
            }
            "[" => {
                i += 1;
                let quoted = tokens.get(i).ok_or("unexpected end of JSON path")?;
                if quoted.len() < 2 || !quoted.starts_with('\'') || !quoted.ends_with('\'') {
                    return Err(format!("expected single quoted string but got {quoted}"));
                }
                let name = unescape_single_quoted(&quoted[1..quoted.len() - 1])?;
                i += 1;
                match tokens.get(i).map(String::as_str) {
                    Some("]") => {}
                    Some(other) => return Err(format!("expected ] but got {other}")),
                    None => return Err("unexpected end of JSON path".to_owned()),
                }
                name
            }
            other => return Err(format!("expected [ or . but got: {other}")),
        };
        if schema.has_properties {
            let Some(prop) = schema.properties.get(&name) else {
                return Err("does not refer to a valid field".to_owned());
            };
            path = path.child(&name);
            schema = prop;
        } else if let Some(additional) = &schema.additional {
            path = path.key(&name);
            match additional.schema() {
                Some(next) => schema = next,
                None if i + 1 == tokens.len() => {}
                None => return Err("does not refer to a valid field".to_owned()),
            }
        } else {
            return Err("does not refer to a valid field".to_owned());
        }
        i += 1;
    }
    Ok(path)
}

fn tokenize_field_path(raw: &str) -> Result<Vec<String>, String> {
    let mut tokens = Vec::new();
    let chars: Vec<char> = raw.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '.' | '[' | ']' => {
                tokens.push(chars[i].to_string());
                i += 1;
            }
            '\'' => {
                let start = i;
                i += 1;
                while i < chars.len() && !(chars[i] == '\'' && chars[i - 1] != '\\') {
                    i += 1;
                }
                if i >= chars.len() {
                    return Err("unterminated string literal".to_owned());
                }
                i += 1;
                tokens.push(chars[start..i].iter().collect());
            }
            _ => {
                let start = i;
                while i < chars.len() && !matches!(chars[i], '.' | '[' | ']') {
                    i += 1;
                }
                tokens.push(chars[start..i].iter().collect());
            }
        }
    }
    Ok(tokens)
}

fn unescape_single_quoted(s: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        out.push(match chars.next() {
            Some('a') => '\u{7}',
            Some('b') => '\u{8}',
            Some('f') => '\u{c}',
            Some('n') => '\n',
            Some('r') => '\r',
            Some('t') => '\t',
            Some('v') => '\u{b}',
            Some('\'') => '\'',
            Some('\\') => '\\',
            Some(other) => return Err(format!("invalid string literal: invalid escape char \\{other}")),
            None => return Err("invalid string literal".to_owned()),
        });
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// Evaluation.

/// Ratcheting state: whether the nearest correlated ancestor is unchanged.
#[derive(Clone, Copy)]
struct Ratchet {
    parent_unchanged: Option<bool>,
}

/// Evaluates every rule of the tree against `obj` (and, on update, the correlated parts of
/// `old`), appending failures to `errs`.
pub(crate) fn validate(root: &Node, obj: &Value, old: Option<&Value>, errs: &mut Vec<FieldError>) {
    if !root.has_rules() {
        return;
    }
    let ratchet = Ratchet { parent_unchanged: None };
    BASE.with(|base| walk(base, root, obj, old, &FieldPath::root(), ratchet, errs));
}

thread_local! {
    /// The function library, registered once per thread rather than for every object
    /// validated (registering it was a tenth of the work of validating a write).
    static BASE: Context<'static> = {
        let mut base = Context::default();
        base.register_all();
        base.add_function("matches", matches);
        base
    };
    /// Compiled `matches` patterns: the interpreter compiles the pattern on every call.
    static PATTERNS: std::cell::RefCell<HashMap<String, Arc<regex::Regex>>> = Default::default();
}

/// Patterns kept at most per thread (the rules' patterns are few; one computed from the
/// object could be anything).
const PATTERNS_KEPT: usize = 256;

/// CEL's `string.matches(pattern)`, as the interpreter's own (the same regex engine and
/// error), with each pattern compiled once.
fn matches(
    ftx: &kube_cel::cel::FunctionContext,
    kube_cel::cel::extractors::This(this): kube_cel::cel::extractors::This<Arc<String>>,
    pattern: Arc<String>,
) -> Result<bool, ExecutionError> {
    let compiled = PATTERNS.with(|patterns| {
        if let Some(re) = patterns.borrow().get(pattern.as_str()) {
            return Ok(re.clone());
        }
        let re = Arc::new(regex::Regex::new(&pattern)?);
        let mut patterns = patterns.borrow_mut();
        if patterns.len() >= PATTERNS_KEPT {
            patterns.clear();
        }
        patterns.insert(pattern.to_string(), re.clone());
        Ok::<_, regex::Error>(re)
    });
    match compiled {
        Ok(re) => Ok(re.is_match(&this)),
        Err(err) => Err(ftx.error(format!("'{pattern}' not a valid regex:\n{err}"))),
    }
}

fn walk(
    ctx: &Context<'_>,
    node: &Node,
    value: &Value,
    old: Option<&Value>,
    path: &FieldPath,
    ratchet: Ratchet,
    errs: &mut Vec<FieldError>,
) {
    if value.is_null() {
        return;
    }
    let old = old.filter(|o| !o.is_null());
    if !node.rules.is_empty() {
        eval_rules(ctx, node, value, old, path, ratchet, errs);
    }
    let child_ratchet = match old {
        Some(o) => Ratchet { parent_unchanged: Some(o == value) },
        None => ratchet,
    };
    match value {
        Value::Array(items) => {
            let Some(item_node) = node.items.as_deref().filter(|n| n.has_rules()) else {
                return;
            };
            for (i, item) in items.iter().enumerate() {
                let old_item = old.and_then(|o| correlate_item(node, item, o));
                walk(ctx, item_node, item, old_item, &path.index(i), child_ratchet, errs);
            }
        }
        Value::Object(map) => {
            if let Some(additional) = node.additional_schema().filter(|n| n.has_rules()) {
                for (key, child) in map {
                    let old_child = old.and_then(|o| o.get(key));
                    walk(ctx, additional, child, old_child, &path.key(key), child_ratchet, errs);
                }
            }
            for (key, child) in map {
                let Some(prop) = node.properties.get(key).filter(|n| n.has_rules()) else {
                    continue;
                };
                let old_child = old.and_then(|o| o.get(key));
                walk(ctx, prop, child, old_child, &path.child(key), child_ratchet, errs);
            }
        }
        _ => {}
    }
}

/// The old item that corresponds to `item`: for `x-kubernetes-list-type: map` the one with
/// the same key values; items of other lists do not correlate.
pub(crate) fn correlate_item<'o>(list: &Node, item: &Value, old_list: &'o Value) -> Option<&'o Value> {
    if list.list_type.as_deref() != Some("map") || list.list_map_keys.is_empty() {
        return None;
    }
    let item = item.as_object()?;
    let key_of = |obj: &serde_json::Map<String, Value>| -> Vec<Option<Value>> {
        list.list_map_keys.iter().map(|k| obj.get(k).cloned()).collect()
    };
    let wanted = key_of(item);
    old_list.as_array()?.iter().find(|candidate| candidate.as_object().is_some_and(|c| key_of(c) == wanted))
}

fn eval_rules(
    ctx: &Context<'_>,
    node: &Node,
    value: &Value,
    old: Option<&Value>,
    path: &FieldPath,
    ratchet: Ratchet,
    errs: &mut Vec<FieldError>,
) {
    // Only the fields the rules read are converted: at a resource's root, a rule on its
    // name would otherwise have the whole object, status included, built for it.
    let reads = node.rules.iter().try_fold(BTreeSet::new(), |mut all, rule| {
        all.extend(rule.reads.as_ref()?.iter().map(String::as_str));
        Some(all)
    });
    let keep = |name: &str| reads.as_ref().is_none_or(|reads| reads.contains(name));
    let self_value = to_cel_keeping(value, node, &keep);
    let old_value = old.map(|o| to_cel_keeping(o, node, &keep));

    let mut plain = ctx.new_inner_scope();
    plain.add_variable_from_value("self", self_value.clone());
    if let Some(o) = &old_value {
        plain.add_variable_from_value("oldSelf", o.clone());
    }
    let mut optional = ctx.new_inner_scope();
    optional.add_variable_from_value("self", self_value);
    let wrapped = match &old_value {
        Some(o) => OptionalValue::of(o.clone()),
        None => OptionalValue::none(),
    };
    optional.add_variable_from_value("oldSelf", CelValue::Opaque(Arc::new(wrapped)));

    let node_type = Value::String(node.type_.clone());
    let unchanged = match old {
        Some(o) => o == value,
        None => ratchet.parent_unchanged.unwrap_or(false),
    };

    for rule in &node.rules {
        if rule.uses_old_self && old.is_none() && !rule.optional_old_self {
            continue; // transition rules need a value to compare with
        }
        let activation = if rule.optional_old_self { &optional } else { &plain };
        let result = rule.program.execute(activation);
        match result {
            Ok(CelValue::Bool(true)) => {}
            Err(e) => errs.push(FieldError::invalid(path, node_type.clone(), evaluation_error(&e, rule))),
            Ok(_) => {
                if !rule.uses_old_self && unchanged {
                    continue; // ratcheted: the value was already like this
                }
                let error_path = match &rule.field_path {
                    Some(rel) => path.join(rel),
                    None => path.clone(),
                };
                let detail = rule
                    .message_expression
                    .as_ref()
                    .and_then(|expr| evaluate_message(expr, &plain))
                    .unwrap_or_else(|| rule.message_or_default());
                errs.push(match rule.reason.as_deref() {
                    Some("FieldValueForbidden") => FieldError::forbidden(&error_path, detail),
                    Some("FieldValueRequired") => FieldError::required(&error_path, detail),
                    Some("FieldValueDuplicate") => FieldError::duplicate(&error_path, node_type.clone()),
                    _ => FieldError::invalid(&error_path, node_type.clone(), detail),
                });
            }
        }
    }
}

fn evaluate_message(expr: &Program, activation: &Context<'_>) -> Option<String> {
    match expr.execute(activation) {
        Ok(CelValue::String(s)) => {
            let trimmed = s.trim();
            let acceptable =
                !trimmed.is_empty() && trimmed.len() <= MAX_MESSAGE_EXPRESSION_BYTES && !trimmed.contains('\n');
            acceptable.then(|| trimmed.to_owned())
        }
        _ => None,
    }
}

fn evaluation_error(e: &ExecutionError, rule: &Rule) -> String {
    let text = match e {
        ExecutionError::NoSuchKey(key) => format!("no such key: {key}"),
        ExecutionError::NoSuchOverload => "no such overload".to_owned(),
        ExecutionError::DivisionByZero(_) => "division by zero".to_owned(),
        ExecutionError::RemainderByZero(_) => "modulus by zero".to_owned(),
        ExecutionError::Overflow(..) => "integer overflow".to_owned(),
        ExecutionError::IndexOutOfBounds(index) => format!("index out of bounds: {index:?}"),
        ExecutionError::UndeclaredReference(name) => format!("undeclared reference to '{name}'"),
        other => other.to_string(),
    };
    if text.starts_with("no such overload") {
        format!(
            "'{text}': call arguments did not match a supported operator, function or macro signature for rule: {}",
            rule.error_string()
        )
    } else {
        format!("{text} evaluating rule: {}", rule.error_string())
    }
}

// ---------------------------------------------------------------------------------------
// JSON -> CEL values, typed by the schema (`UnstructuredToVal`).

fn string_key(s: String) -> Key {
    Key::String(Arc::new(s))
}

fn cel_map(map: HashMap<Key, CelValue>) -> CelValue {
    CelValue::Map(Map { map: Arc::new(map) })
}

fn cel_string(s: &str) -> CelValue {
    CelValue::String(Arc::new(s.to_owned()))
}

/// A value with no schema (under `x-kubernetes-preserve-unknown-fields`).
fn untyped(v: &Value) -> CelValue {
    match v {
        Value::Null => CelValue::Null,
        Value::Bool(b) => CelValue::Bool(*b),
        Value::Number(n) => number(n),
        Value::String(s) => cel_string(s),
        Value::Array(items) => CelValue::List(Arc::new(items.iter().map(untyped).collect())),
        Value::Object(map) => cel_map(map.iter().map(|(k, v)| (string_key(k.clone()), untyped(v))).collect()),
    }
}

fn number(n: &serde_json::Number) -> CelValue {
    if let Some(i) = n.as_i64() {
        CelValue::Int(i)
    } else if let Some(u) = n.as_u64() {
        CelValue::UInt(u)
    } else {
        CelValue::Float(n.as_f64().unwrap_or(f64::NAN))
    }
}

pub(crate) fn to_cel(v: &Value, node: Option<&Node>) -> CelValue {
    match node {
        Some(node) => to_cel_keeping(v, node, &|_| true),
        None => untyped(v),
    }
}

/// As [`to_cel`]; an object with properties holds only the fields `keep` names (by their
/// CEL names), its own fields converted whole.
fn to_cel_keeping(v: &Value, node: &Node, keep: &dyn Fn(&str) -> bool) -> CelValue {
    if v.is_null() {
        return CelValue::Null;
    }
    if node.int_or_string {
        return untyped(v);
    }
    match (node.type_.as_str(), v) {
        ("object" | "", Value::Object(map)) if node.resource_root || node.has_properties => {
            object_to_cel(map, node, keep)
        }
        ("object" | "", Value::Object(map)) => {
            if let Some(additional) = node.additional_schema() {
                cel_map(map.iter().map(|(k, child)| (string_key(k.clone()), to_cel(child, Some(additional)))).collect())
            } else {
                untyped(v)
            }
        }
        ("array", Value::Array(items)) => {
            let item_node = node.items.as_deref();
            CelValue::List(Arc::new(items.iter().map(|i| to_cel(i, item_node)).collect()))
        }
        ("string", Value::String(s)) => typed_string(s, &node.format),
        ("number", Value::Number(n)) => CelValue::Float(n.as_f64().unwrap_or(f64::NAN)),
        ("integer", Value::Number(n)) => match n.as_i64() {
            Some(i) => CelValue::Int(i),
            None => match n.as_f64() {
                Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => CelValue::Int(f as i64),
                _ => number(n),
            },
        },
        _ => untyped(v),
    }
}

/// An object with properties: its declared fields under their escaped names (at a
/// resource root also `apiVersion`, `kind` and the `metadata` view), those `keep` names.
fn object_to_cel(map: &serde_json::Map<String, Value>, node: &Node, keep: &dyn Fn(&str) -> bool) -> CelValue {
    let mut out = HashMap::with_capacity(map.len());
    for (key, child) in map {
        if node.resource_root && (key == "apiVersion" || key == "kind") {
            if child.is_string() && keep(key) {
                out.insert(string_key(key.clone()), untyped(child));
            }
        } else if node.resource_root && key == "metadata" {
            if keep(key) {
                out.insert(string_key(key.clone()), metadata_view(child));
            }
        } else if let Some(prop) = node.properties.get(key)
            && let Some(escaped) = escape(key)
            && keep(&escaped)
        {
            out.insert(string_key(escaped), to_cel(child, Some(prop)));
        }
    }
    cel_map(out)
}

/// `self.metadata` at a resource root shows only `name` and `generateName`.
fn metadata_view(meta: &Value) -> CelValue {
    let mut out = HashMap::new();
    if let Some(map) = meta.as_object() {
        for key in ["name", "generateName"] {
            if let Some(Value::String(s)) = map.get(key) {
                out.insert(string_key(key.to_owned()), cel_string(s));
            }
        }
    }
    cel_map(out)
}

fn typed_string(s: &str, format: &str) -> CelValue {
    use base64::Engine;
    match format {
        "duration" => match formats::parse_duration(s) {
            Some(nanos) => {
                let clamped = i64::try_from(nanos).unwrap_or(if nanos < 0 { i64::MIN } else { i64::MAX });
                CelValue::Duration(chrono::Duration::nanoseconds(clamped))
            }
            None => cel_string(s),
        },
        "date" => match formats::parse_date(s) {
            Some(ts) => CelValue::Timestamp(ts),
            None => cel_string(s),
        },
        "date-time" | "datetime" => match formats::parse_date_time(s) {
            Some(ts) => CelValue::Timestamp(ts),
            None => cel_string(s),
        },
        "byte" => match base64::engine::general_purpose::STANDARD.decode(s) {
            Ok(bytes) => CelValue::Bytes(Arc::new(bytes)),
            Err(_) => cel_string(s),
        },
        _ => cel_string(s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_answers_as_the_interpreters_own_and_compiles_each_pattern_once() {
        let mut plain = Context::default();
        plain.register_all();
        let cases = [("aaa", "self.matches('^a+$')"), ("aab", "self.matches('^a+$')"), ("x", "self.matches('[')")];
        for (text, rule) in cases {
            let program = Program::compile(rule).unwrap();
            let run = |ctx: &Context| {
                let mut scope = ctx.new_inner_scope();
                scope.add_variable_from_value("self", CelValue::String(Arc::new(text.to_owned())));
                format!("{:?}", program.execute(&scope))
            };
            assert_eq!(BASE.with(run), run(&plain), "{text} {rule}");
        }
        assert_eq!(PATTERNS.with(|p| p.borrow().len()), 1, "the good pattern kept once, the bad one not at all");
    }

    #[test]
    fn a_rule_reads_the_fields_it_selects_or_the_whole_value() {
        let reads = |rule: &str| {
            let program = Program::compile(rule).unwrap();
            fields_read(&program.expression().expr).map(|r| r.into_iter().collect::<Vec<_>>())
        };
        let fields = |names: &[&str]| Some(names.iter().map(|n| n.to_string()).collect::<Vec<_>>());
        assert_eq!(reads("self.metadata.name.size() <= 47"), fields(&["metadata"]));
        assert_eq!(reads("!has(self.spec) || self.spec.replicas > 0"), fields(&["spec"]));
        assert_eq!(reads("self.spec.x == oldSelf.spec.x && has(oldSelf.status)"), fields(&["spec", "status"]));
        assert_eq!(reads("self.items.all(i, i.x > 0)"), fields(&["items"]));
        assert_eq!(reads("{'a': self.a}['a'] > 0 && [self.b][0] > 0"), fields(&["a", "b"]));
        assert_eq!(reads("1 < 2"), fields(&[]));
        for whole in ["self == oldSelf", "self.all(k, k != 'a')", "size(self) > 1", "self.size() > 1"] {
            assert_eq!(reads(whole), None, "{whole}");
        }
        assert_eq!(reads("[1, 2].exists(self, self > 1)"), None, "a variable named self");
        assert_eq!(reads("oldSelf.hasValue()"), None, "an optional oldSelf used whole");
    }

    #[test]
    fn escaping_follows_kubernetes() {
        assert_eq!(escape("namespace").as_deref(), Some("__namespace__"));
        assert_eq!(escape("foo-bar").as_deref(), Some("foo__dash__bar"));
        assert_eq!(escape("a.b/c").as_deref(), Some("a__dot__b__slash__c"));
        assert_eq!(escape("a__b").as_deref(), Some("a__underscores__b"));
        assert_eq!(escape("a_b").as_deref(), Some("a_b"));
        assert_eq!(escape("1abc"), None);
        assert_eq!(escape("a b"), None);
    }
}
