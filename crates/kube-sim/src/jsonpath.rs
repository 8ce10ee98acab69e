//! The JSONPath subset CRD printer columns use: `.a.b`, `.a[0]`, `.a[*].b`, `.a['x.y']`,
//! and filters `[?(@.type=="Ready")]`.

use serde_json::Value;

#[derive(Clone, Debug, PartialEq)]
enum Step {
    Field(String),
    Index(i64),
    All,
    Filter { path: Vec<String>, op_eq: bool, value: String },
}

fn parse(path: &str) -> Option<Vec<Step>> {
    let p = path.trim();
    let p = p.strip_prefix('{').and_then(|x| x.strip_suffix('}')).unwrap_or(p);
    let p = p.strip_prefix('$').unwrap_or(p);
    let mut steps = Vec::new();
    let chars: Vec<char> = p.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '.' => {
                i += 1;
                let start = i;
                while i < chars.len() && chars[i] != '.' && chars[i] != '[' {
                    i += 1;
                }
                let name: String = chars[start..i].iter().collect();
                if name == "*" {
                    steps.push(Step::All);
                } else if !name.is_empty() {
                    steps.push(Step::Field(name));
                }
            }
            '[' => {
                let end = chars[i..].iter().position(|c| *c == ']').map(|e| e + i)?;
                // A filter may contain ']' inside quotes; find the closing ")]" for filters.
                let inner: String = if chars.get(i + 1) == Some(&'?') {
                    let s: String = chars[i..].iter().collect();
                    let close = s.find(")]")?;
                    i += close + 2;
                    s[1..close + 1].to_string()
                } else {
                    let s: String = chars[i + 1..end].iter().collect();
                    i = end + 1;
                    s
                };
                let inner = inner.trim();
                if inner == "*" {
                    steps.push(Step::All);
                } else if let Some(f) = inner.strip_prefix("?(").and_then(|f| f.strip_suffix(')')) {
                    let (lhs, op_eq, rhs) = if let Some((l, r)) = f.split_once("!=") {
                        (l, false, r)
                    } else {
                        let (l, r) = f.split_once("==")?;
                        (l, true, r)
                    };
                    let lhs = lhs.trim().strip_prefix('@')?;
                    let path = lhs.split('.').filter(|s| !s.is_empty()).map(str::to_string).collect();
                    let value = rhs.trim().trim_matches('"').trim_matches('\'').to_string();
                    steps.push(Step::Filter { path, op_eq, value });
                } else if let Ok(n) = inner.parse::<i64>() {
                    steps.push(Step::Index(n));
                } else {
                    steps.push(Step::Field(inner.trim_matches('\'').trim_matches('"').to_string()));
                }
            }
            _ => {
                let start = i;
                while i < chars.len() && chars[i] != '.' && chars[i] != '[' {
                    i += 1;
                }
                steps.push(Step::Field(chars[start..i].iter().collect()));
            }
        }
    }
    Some(steps)
}

fn scalar_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Every value the path selects, in document order.
pub fn find<'a>(obj: &'a Value, path: &str) -> Vec<&'a Value> {
    let Some(steps) = parse(path) else { return vec![] };
    let mut cur = vec![obj];
    for step in &steps {
        let mut next = Vec::new();
        for v in cur {
            match step {
                Step::Field(f) => {
                    if let Some(x) = v.get(f.as_str()) {
                        next.push(x);
                    }
                }
                Step::Index(n) => {
                    if let Some(a) = v.as_array() {
                        let idx = if *n < 0 { a.len() as i64 + n } else { *n };
                        if let Some(x) = usize::try_from(idx).ok().and_then(|i| a.get(i)) {
                            next.push(x);
                        }
                    }
                }
                Step::All => match v {
                    Value::Array(a) => next.extend(a.iter()),
                    Value::Object(m) => next.extend(m.values()),
                    _ => {}
                },
                Step::Filter { path, op_eq, value } => {
                    if let Some(a) = v.as_array() {
                        for item in a {
                            let mut field = item;
                            for p in path {
                                field = &field[p.as_str()];
                            }
                            if (scalar_string(field) == *value) == *op_eq && !field.is_null() {
                                next.push(item);
                            }
                        }
                    }
                }
            }
        }
        cur = next;
    }
    cur
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_indexes_and_filters() {
        let o = json!({"status": {"conditions": [{"type": "Ready", "status": "True"}, {"type": "Synced", "status": "False"}]},
                       "spec": {"list": [1, 2, 3], "m": {"a.b": 5}}});
        assert_eq!(find(&o, ".status.conditions[?(@.type==\"Ready\")].status"), [&json!("True")]);
        assert_eq!(find(&o, ".spec.list[1]"), [&json!(2)]);
        assert_eq!(find(&o, ".spec.list[-1]"), [&json!(3)]);
        assert_eq!(find(&o, ".status.conditions[*].type").len(), 2);
        assert_eq!(find(&o, ".spec.m['a.b']"), [&json!(5)]);
        assert!(find(&o, ".spec.missing").is_empty());
        assert_eq!(find(&o, "{.spec.list[0]}"), [&json!(1)]);
    }
}
