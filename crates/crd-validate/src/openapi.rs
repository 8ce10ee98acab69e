//! OpenAPI value validation, following kube-openapi's `validate.SchemaValidator` (types,
//! formats, bounds, lengths, patterns, enums, item and property counts, `required`,
//! `allOf`/`anyOf`/`oneOf`/`not`) and the way kube-apiserver turns its results into field
//! errors (`kubeOpenAPIResultToFieldErrors`), with update ratcheting: errors inside a value
//! that correlates with an unchanged old value are dropped.
//!
//! Paths inside messages are kube-openapi's (`spec.items[0].name`, map keys joined with
//! `.`), exactly as kube-apiserver reports them.

use serde_json::{Number, Value};

use crate::errors::FieldError;
use crate::formats;
use crate::gofmt;
use crate::path::FieldPath;
use crate::schema::Node;

/// A number as kube-apiserver decodes it from JSON: `int64` when it is an integer literal
/// that fits, `float64` otherwise.
#[derive(Clone, Copy)]
enum Num {
    Int(i64),
    Float(f64),
}

impl Num {
    fn of(n: &Number) -> Self {
        match n.as_i64() {
            Some(i) => Num::Int(i),
            None => Num::Float(n.as_f64().unwrap_or(f64::NAN)),
        }
    }

    fn as_f64(self) -> f64 {
        match self {
            Num::Int(i) => i as f64,
            Num::Float(f) => f,
        }
    }
}

/// `swag.IsFloat64AJSONInteger`.
fn is_json_integer(f: f64) -> bool {
    f.is_finite() && f.fract() == 0.0 && f.abs() <= 9_007_199_254_740_992.0
}

/// The JSON type name kube-openapi infers from a value.
fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) => match Num::of(n) {
            Num::Int(_) => "integer",
            Num::Float(_) => "number",
        },
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// The format kube-openapi infers from a (non-string) value.
fn json_format(v: &Value) -> &'static str {
    match v {
        Value::Number(n) => match Num::of(n) {
            Num::Int(_) => "int64",
            Num::Float(_) => "float64",
        },
        _ => "",
    }
}

fn field_path(name: &str) -> FieldPath {
    let trimmed = name.strip_prefix('.').unwrap_or(name);
    if trimmed.is_empty() { FieldPath::root() } else { FieldPath::new(trimmed) }
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() { name.to_owned() } else { format!("{path}.{name}") }
}

/// A composite error (`errors.New(CompositeErrorCode, ...)`): kube-apiserver reports these
/// without a path.
fn composite(message: String) -> FieldError {
    FieldError::invalid(&FieldPath::root(), Value::String(String::new()), message)
}

/// Validates `value` against `node`. `path` is kube-openapi's path of the value (empty at
/// the root); `old` is the correlated old value on update.
pub(crate) fn validate(node: &Node, value: &Value, path: &str, old: Option<&Value>, out: &mut Vec<FieldError>) {
    if old.is_some_and(|o| o == value) {
        return; // ratcheting: an unchanged value keeps whatever errors it had
    }
    validate_value(node, value, path, old, out);
}

fn validate_value(node: &Node, value: &Value, path: &str, old: Option<&Value>, out: &mut Vec<FieldError>) {
    if value.is_null() {
        check_type(node, value, path, out);
        check_enum(node, value, path, out);
        return;
    }
    check_type(node, value, path, out);
    check_junctors(node, value, path, old, out);
    if let Value::String(s) = value {
        check_string(node, s, path, out);
        check_format(node, s, path, out);
    }
    if let Value::Number(n) = value {
        check_number(node, value, Num::of(n), path, out);
    }
    if let Value::Array(items) = value {
        check_array(node, items, path, old, out);
    }
    check_enum(node, value, path, out);
    if let Value::Object(map) = value {
        check_object(node, map, path, old, out);
    }
}

fn check_type(node: &Node, value: &Value, path: &str, out: &mut Vec<FieldError>) {
    let types = node.types();
    let format = node.format.as_str();
    if types.is_empty() && format.is_empty() {
        return;
    }
    let joined = types.join(",");
    let message =
        |expected: &str, got: &str| format!("{path} in body must be of type {expected}: {}", gofmt::quote(got));
    if value.is_null() {
        if !types.is_empty() && !node.nullable {
            out.push(FieldError::type_invalid(&field_path(path), Value::from("null"), message(&joined, "null")));
        }
        return;
    }
    let got = json_type(value);
    let got_format = json_format(value);
    let numeric_type = types.contains(&"number") || types.contains(&"integer");
    let float_int = got == "number" && types.contains(&"integer") && value.as_f64().is_some_and(is_json_integer);
    let int_float = got == "integer" && types.contains(&"number");
    let is_text = matches!(value, Value::String(_) | Value::Array(_));
    if !is_text && !format.is_empty() {
        let lower_int = format == "int64" && got_format == "int32";
        let ok = types.contains(&got) || got_format == format || float_int || int_float || lower_int;
        if !ok {
            out.push(FieldError::type_invalid(&field_path(path), Value::from(got_format), message(format, got_format)));
            return;
        }
    }
    if !numeric_type && !format.is_empty() && is_text {
        return;
    }
    if !(types.contains(&got) || float_int || int_float) {
        out.push(FieldError::type_invalid(&field_path(path), Value::from(got), message(&joined, got)));
    }
}

fn check_junctors(node: &Node, value: &Value, path: &str, old: Option<&Value>, out: &mut Vec<FieldError>) {
    let run = |branch: &Node| {
        let mut errs = Vec::new();
        validate_value(branch, value, path, old, &mut errs);
        errs
    };
    let quoted = gofmt::quote(path);
    if !node.any_of.is_empty() {
        let mut best: Option<Vec<FieldError>> = None;
        let mut any_valid = false;
        for branch in &node.any_of {
            let errs = run(branch);
            if errs.is_empty() {
                any_valid = true;
                break;
            }
            if best.as_ref().is_none_or(|b| errs.len() < b.len()) {
                best = Some(errs);
            }
        }
        if !any_valid {
            out.push(composite(format!("{quoted} must validate at least one schema (anyOf)")));
            out.extend(best.unwrap_or_default());
        }
    }
    if !node.one_of.is_empty() {
        let mut best: Option<Vec<FieldError>> = None;
        let mut valid = 0;
        for branch in &node.one_of {
            let errs = run(branch);
            if errs.is_empty() {
                valid += 1;
                best = None;
            } else if valid == 0 && best.as_ref().is_none_or(|b| errs.len() < b.len()) {
                best = Some(errs);
            }
        }
        if valid != 1 {
            let found =
                if valid == 0 { "Found none valid".to_owned() } else { format!("Found {valid} valid alternatives") };
            out.push(composite(format!("{quoted} must validate one and only one schema (oneOf). {found}")));
            out.extend(best.unwrap_or_default());
        }
    }
    if !node.all_of.is_empty() {
        let mut valid = 0;
        for branch in &node.all_of {
            let errs = run(branch);
            if errs.is_empty() {
                valid += 1;
            }
            out.extend(errs);
        }
        if valid != node.all_of.len() {
            let none = if valid == 0 { ". None validated" } else { "" };
            out.push(composite(format!("{quoted} must validate all the schemas (allOf){none}")));
        }
    }
    if let Some(not) = &node.not
        && run(not).is_empty()
    {
        out.push(composite(format!("{quoted} must not validate the schema (not)")));
    }
}

fn check_string(node: &Node, s: &str, path: &str, out: &mut Vec<FieldError>) {
    let len = s.chars().count() as i64;
    let fp = field_path(path);
    if let Some(max) = node.max_length
        && len > max
    {
        out.push(FieldError::too_long(&fp, max));
        return;
    }
    if let Some(min) = node.min_length
        && len < min
    {
        out.push(FieldError::invalid(
            &fp,
            Value::from(s),
            format!("{path} in body should be at least {min} chars long"),
        ));
        return;
    }
    if let Some((pattern, compiled)) = &node.pattern {
        let matched = compiled.as_ref().is_some_and(|re| re.is_match(s));
        if !matched {
            out.push(FieldError::invalid(&fp, Value::from(s), format!("{path} in body should match '{pattern}'")));
        }
    }
}

fn check_format(node: &Node, s: &str, path: &str, out: &mut Vec<FieldError>) {
    // kube-apiserver drops unsupported formats from string schemas and checks the rest.
    if node.type_ != "string" && !node.type_.is_empty() {
        return;
    }
    if formats::check(&node.format, s) == Some(false) {
        out.push(FieldError::type_invalid(
            &field_path(path),
            Value::from(s),
            format!("{path} in body must be of type {}: {}", node.format, gofmt::quote(s)),
        ));
    }
}

/// `IsValueValidAgainstRange`: whether a number fits the schema's single type and format.
fn fits(n: Num, type_: &str, format: &str) -> bool {
    let text = match n {
        Num::Int(i) => i.to_string(),
        Num::Float(f) => float_as_decimal(f),
    };
    match type_ {
        "integer" => match format {
            "int32" => text.parse::<i32>().is_ok(),
            _ => text.parse::<i64>().is_ok(),
        },
        _ => match format {
            "float" => n.as_f64().abs() <= f64::from(f32::MAX),
            _ => true,
        },
    }
}

/// `strconv.FormatFloat(f, 'f', -1, 64)`.
fn float_as_decimal(f: f64) -> String {
    if f.is_finite() && f.fract() == 0.0 { format!("{f:.0}") } else { format!("{f}") }
}

fn show_bound(bound: f64, data: Num, native: bool) -> String {
    match data {
        Num::Int(_) if native => (bound as i64).to_string(),
        _ => gofmt::float(bound),
    }
}

fn check_number(node: &Node, value: &Value, n: Num, path: &str, out: &mut Vec<FieldError>) {
    let types = node.types();
    let (type_, format) = match types.as_slice() {
        ["integer"] => {
            ("integer", if ["int32", "int64"].contains(&node.format.as_str()) { node.format.as_str() } else { "" })
        }
        ["number"] => {
            ("number", if ["float", "double"].contains(&node.format.as_str()) { node.format.as_str() } else { "" })
        }
        _ => ("", ""),
    };
    let fp = field_path(path);
    if !type_.is_empty() && !fits(n, type_, format) {
        let message = if format.is_empty() {
            format!("Checked value must be of type {type_} (default format) in {path}")
        } else {
            format!("Checked value must be of type {type_} with format {format} in {path}")
        };
        out.push(composite(message));
    }
    let bound_native = |b: f64| {
        let as_num = if is_json_integer(b) { Num::Int(b as i64) } else { Num::Float(b) };
        type_.is_empty() || fits(as_num, type_, format)
    };
    if let Some(factor) = node.multiple_of {
        let native = bound_native(factor);
        let failed = match n {
            Num::Int(i) if native => {
                let f = factor as i64;
                if f <= 0 {
                    out.push(FieldError::invalid(
                        &fp,
                        Value::from(f),
                        format!("factor MultipleOf declared for {path} must be positive: {f}"),
                    ));
                    false
                } else {
                    i % f != 0
                }
            }
            _ => {
                if factor <= 0.0 {
                    out.push(FieldError::invalid(
                        &fp,
                        Value::from(factor),
                        format!("factor MultipleOf declared for {path} must be positive: {}", gofmt::float(factor)),
                    ));
                    false
                } else {
                    let data = n.as_f64();
                    let mult = if factor < 1.0 { 1.0 / factor * data } else { data / factor };
                    !is_json_integer(mult)
                }
            }
        };
        if failed {
            out.push(FieldError::invalid(
                &fp,
                value.clone(),
                format!("{path} in body should be a multiple of {}", show_bound(factor, n, native)),
            ));
        }
    }
    if let Some(min) = node.minimum {
        let native = bound_native(min);
        let below = match n {
            Num::Int(i) if native => {
                let m = min as i64;
                if node.exclusive_minimum { i <= m } else { i < m }
            }
            _ => {
                let d = n.as_f64();
                if node.exclusive_minimum { d <= min } else { d < min }
            }
        };
        if below {
            let relation = if node.exclusive_minimum { "greater than" } else { "greater than or equal to" };
            out.push(FieldError::invalid(
                &fp,
                value.clone(),
                format!("{path} in body should be {relation} {}", show_bound(min, n, native)),
            ));
        }
    }
    if let Some(max) = node.maximum {
        let native = bound_native(max);
        let above = match n {
            Num::Int(i) if native => {
                let m = max as i64;
                if node.exclusive_maximum { i >= m } else { i > m }
            }
            _ => {
                let d = n.as_f64();
                if node.exclusive_maximum { d >= max } else { d > max }
            }
        };
        if above {
            let relation = if node.exclusive_maximum { "less than" } else { "less than or equal to" };
            out.push(FieldError::invalid(
                &fp,
                value.clone(),
                format!("{path} in body should be {relation} {}", show_bound(max, n, native)),
            ));
        }
    }
}

fn check_array(node: &Node, items: &[Value], path: &str, old: Option<&Value>, out: &mut Vec<FieldError>) {
    if let Some(item_node) = node.items.as_deref() {
        for (i, item) in items.iter().enumerate() {
            let old_item = old.and_then(|o| crate::cel::correlate_item(node, item, o));
            validate(item_node, item, &format!("{path}[{i}]"), old_item, out);
        }
    }
    let size = items.len() as i64;
    let fp = field_path(path);
    if let Some(min) = node.min_items
        && size < min
    {
        out.push(FieldError::invalid(
            &fp,
            Value::from(size),
            format!("{path} in body should have at least {min} items"),
        ));
    }
    if let Some(max) = node.max_items
        && size > max
    {
        out.push(FieldError::too_many(&fp, size, max));
    }
    if node.unique_items {
        let mut seen: Vec<String> = Vec::with_capacity(items.len());
        let duplicated = items.iter().any(|item| {
            let key = gofmt::canonical_json(item);
            let dup = seen.contains(&key);
            seen.push(key);
            dup
        });
        if duplicated {
            out.push(FieldError::invalid(&fp, Value::from(""), format!("{path} in body shouldn't contain duplicates")));
        }
    }
}

/// Go's `reflect.DeepEqual` after converting the value to the enum value's type, as
/// kube-openapi compares enum members.
fn enum_matches(value: &Value, member: &Value) -> bool {
    match (value, member) {
        (Value::Null, _) => false, // a nil value never matches, not even a null member
        (Value::Number(v), Value::Number(m)) => match (Num::of(v), Num::of(m)) {
            (Num::Int(a), Num::Int(b)) => a == b,
            (Num::Float(a), Num::Int(b)) => a.is_finite() && a.trunc() == b as f64,
            (a, Num::Float(b)) => a.as_f64() == b,
        },
        _ => value == member,
    }
}

fn check_enum(node: &Node, value: &Value, path: &str, out: &mut Vec<FieldError>) {
    let Some(members) = &node.enum_ else {
        return;
    };
    if members.is_empty() || members.iter().any(|m| enum_matches(value, m)) {
        return;
    }
    let supported: Vec<String> = members
        .iter()
        .map(|m| match m {
            Value::String(s) => s.clone(),
            other => gofmt::canonical_json(other),
        })
        .collect();
    out.push(FieldError::not_supported(&field_path(path), value.clone(), &supported));
}

fn check_object(
    node: &Node,
    map: &serde_json::Map<String, Value>,
    path: &str,
    old: Option<&Value>,
    out: &mut Vec<FieldError>,
) {
    let size = map.len() as i64;
    let fp = field_path(path);
    if let Some(min) = node.min_properties
        && size < min
    {
        out.push(FieldError::invalid(
            &fp,
            Value::from(size),
            format!("{path} in body should have at least {min} properties"),
        ));
    }
    if let Some(max) = node.max_properties
        && size > max
    {
        out.push(FieldError::too_many(&fp, size, max));
    }
    let root = path.is_empty();
    let old_child = |key: &str| {
        // The root's apiVersion and kind never ratchet.
        if root && (key == "apiVersion" || key == "kind") { None } else { old.and_then(|o| o.get(key)) }
    };
    if let Some(additional) = node.additional_schema() {
        for (key, child) in map {
            if !node.properties.contains_key(key) {
                validate(additional, child, &format!("{path}.{key}"), old_child(key), out);
            }
        }
    }
    for (name, prop) in &node.properties {
        if let Some(child) = map.get(name) {
            validate(prop, child, &join(path, name), old_child(name), out);
        }
    }
    for name in &node.required {
        if !map.contains_key(name) {
            out.push(FieldError::required(&field_path(&format!("{path}.{name}")), ""));
        }
    }
}
