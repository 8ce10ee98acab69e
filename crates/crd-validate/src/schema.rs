//! The schema model ([`Node`]) built from a CRD's `openAPIV3Schema`, and the checks
//! kube-apiserver runs on a CRD schema before it accepts the CRD: structurality
//! (`ValidateStructural`), the CRD-specific restrictions
//! (`ValidateCustomResourceDefinitionOpenAPISchema`) and compilation of the
//! `x-kubernetes-validations` rules.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    JSONSchemaProps, JSONSchemaPropsOrArray, JSONSchemaPropsOrBool,
};
use regex::Regex;
use serde_json::Value;

use crate::cel::{self, Rule};
use crate::errors::{FieldErrorKind, SchemaError};
use crate::gofmt;
use crate::path::FieldPath;

/// `additionalProperties`: given as a boolean (no schema for the values) or a schema.
#[derive(Debug)]
pub(crate) enum Additional {
    NoSchema,
    Schema(Box<Node>),
}

impl Additional {
    pub(crate) fn schema(&self) -> Option<&Node> {
        match self {
            Additional::Schema(node) => Some(node),
            Additional::NoSchema => None,
        }
    }
}

/// One schema node, with everything the validator needs at admission time.
#[derive(Debug, Default)]
pub(crate) struct Node {
    pub type_: String,
    pub format: String,
    pub nullable: bool,
    pub int_or_string: bool,
    pub preserve_unknown: bool,
    pub embedded: bool,
    /// Whether `properties` was given (even empty).
    pub has_properties: bool,
    pub properties: BTreeMap<String, Node>,
    pub additional: Option<Additional>,
    pub items: Option<Box<Node>>,
    pub default: Option<Value>,
    pub list_type: Option<String>,
    pub list_map_keys: Vec<String>,
    pub enum_: Option<Vec<Value>>,
    pub maximum: Option<f64>,
    pub exclusive_maximum: bool,
    pub minimum: Option<f64>,
    pub exclusive_minimum: bool,
    pub multiple_of: Option<f64>,
    pub max_length: Option<i64>,
    pub min_length: Option<i64>,
    /// The pattern, and its compiled form when it compiles.
    pub pattern: Option<(String, Option<Regex>)>,
    pub max_items: Option<i64>,
    pub min_items: Option<i64>,
    pub max_properties: Option<i64>,
    pub min_properties: Option<i64>,
    pub unique_items: bool,
    pub required: Vec<String>,
    pub all_of: Vec<Node>,
    pub any_of: Vec<Node>,
    pub one_of: Vec<Node>,
    pub not: Option<Box<Node>>,
    /// Compiled `x-kubernetes-validations`.
    pub rules: Vec<Rule>,
    /// The root of a resource (the CRD root or an `x-kubernetes-embedded-resource`):
    /// CEL sees `apiVersion`, `kind` and `metadata.name`/`generateName` there.
    pub resource_root: bool,
    /// Set by [`Node::mark_rules`].
    pub subtree_rules: bool,
}

impl Node {
    /// The OpenAPI types the value may have (`integer,string` for int-or-string).
    pub(crate) fn types(&self) -> Vec<&str> {
        if self.int_or_string {
            vec!["integer", "string"]
        } else if self.type_.is_empty() {
            vec![]
        } else {
            vec![self.type_.as_str()]
        }
    }

    pub(crate) fn additional_schema(&self) -> Option<&Node> {
        self.additional.as_ref().and_then(Additional::schema)
    }

    /// Whether any node in this subtree has CEL rules (valid after [`Node::mark_rules`]).
    pub(crate) fn has_rules(&self) -> bool {
        self.subtree_rules
    }

    /// Records, in every node, whether its subtree has CEL rules.
    pub(crate) fn mark_rules(&mut self) -> bool {
        let mut any = !self.rules.is_empty();
        for prop in self.properties.values_mut() {
            any |= prop.mark_rules();
        }
        if let Some(items) = self.items.as_deref_mut() {
            any |= items.mark_rules();
        }
        if let Some(Additional::Schema(additional)) = self.additional.as_mut() {
            any |= additional.mark_rules();
        }
        self.subtree_rules = any;
        any
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Level {
    Root,
    Item,
    Field,
}

#[derive(Clone, Debug)]
struct Ctx {
    level: Level,
    /// Inside `allOf`/`anyOf`/`oneOf`/`not`.
    nested: bool,
    /// A nested `anyOf` branch of the int-or-string pattern, where `type` is allowed.
    type_allowed: bool,
    inside_resource_meta: bool,
    defaults_forbidden: Option<String>,
    /// The CRD path of the list whose items cannot be correlated with the old object.
    uncorrelatable: Option<String>,
}

const VALID_TYPES: [&str; 6] = ["array", "boolean", "integer", "number", "object", "string"];
const META_FIELDS: [&str; 3] = ["apiVersion", "kind", "metadata"];

/// Builds the model of one version's schema, collecting every problem.
pub(crate) struct Builder {
    pub problems: Vec<SchemaError>,
}

impl Builder {
    pub(crate) fn new() -> Self {
        Self { problems: Vec::new() }
    }

    fn problem(&mut self, path: &FieldPath, kind: FieldErrorKind, message: impl Into<String>) {
        self.problems.push(SchemaError::NonStructural { path: path.render(), kind, message: message.into() });
    }

    pub(crate) fn build_root(&mut self, props: &JSONSchemaProps, path: &FieldPath) -> Node {
        let ctx = Ctx {
            level: Level::Root,
            nested: false,
            type_allowed: false,
            inside_resource_meta: false,
            defaults_forbidden: None,
            uncorrelatable: None,
        };
        self.build(props, path, &ctx)
    }

    fn build(&mut self, p: &JSONSchemaProps, path: &FieldPath, ctx: &Ctx) -> Node {
        let entered_with = self.problems.len();
        let is_root = ctx.level == Level::Root && !ctx.nested;
        let type_ = p.type_.clone().unwrap_or_default();
        let embedded = p.x_kubernetes_embedded_resource == Some(true);

        self.standard_checks(p, path, ctx, &type_);

        // Children, with the context they are checked in.
        let mut node = Node {
            type_: type_.clone(),
            format: p.format.clone().unwrap_or_default(),
            nullable: p.nullable == Some(true),
            int_or_string: p.x_kubernetes_int_or_string == Some(true),
            preserve_unknown: p.x_kubernetes_preserve_unknown_fields == Some(true),
            embedded,
            has_properties: p.properties.is_some(),
            default: p.default.as_ref().map(|d| d.0.clone()),
            list_type: p.x_kubernetes_list_type.clone(),
            list_map_keys: p.x_kubernetes_list_map_keys.clone().unwrap_or_default(),
            enum_: p.enum_.as_ref().map(|values| values.iter().map(|v| v.0.clone()).collect()),
            maximum: p.maximum,
            exclusive_maximum: p.exclusive_maximum == Some(true),
            minimum: p.minimum,
            exclusive_minimum: p.exclusive_minimum == Some(true),
            multiple_of: p.multiple_of,
            max_length: p.max_length,
            min_length: p.min_length,
            max_items: p.max_items,
            min_items: p.min_items,
            max_properties: p.max_properties,
            min_properties: p.min_properties,
            unique_items: p.unique_items == Some(true),
            required: p.required.clone().unwrap_or_default(),
            resource_root: (is_root || embedded) && !ctx.nested,
            ..Node::default()
        };

        if let Some(pattern) = &p.pattern {
            let compiled = match Regex::new(pattern) {
                Ok(re) => Some(re),
                Err(err) => {
                    self.problem(
                        &path.child("pattern"),
                        FieldErrorKind::Invalid,
                        format!("{}: must be a valid regular expression, but isn't: {err}", gofmt::quote(pattern)),
                    );
                    None
                }
            };
            node.pattern = Some((pattern.clone(), compiled));
        }

        if let Some(additional) = &p.additional_properties {
            node.additional = Some(match additional {
                JSONSchemaPropsOrBool::Bool(_) => Additional::NoSchema,
                JSONSchemaPropsOrBool::Schema(schema) => {
                    let mut sub = ctx.clone();
                    sub.level = Level::Field;
                    sub.type_allowed = false;
                    if ctx.inside_resource_meta {
                        sub.defaults_forbidden =
                            Some("inside additionalProperties applying to object metadata".to_owned());
                    }
                    Additional::Schema(Box::new(self.build(schema, &path.child("additionalProperties"), &sub)))
                }
            });
        }

        if let Some(properties) = &p.properties {
            for (name, schema) in properties {
                let mut sub = ctx.clone();
                sub.level = Level::Field;
                sub.type_allowed = false;
                if (is_root || embedded) && !ctx.nested && META_FIELDS.contains(&name.as_str()) {
                    sub.inside_resource_meta = true;
                    if is_root {
                        sub.defaults_forbidden = Some(format!("in top-level {name}"));
                    }
                }
                let child = self.build(schema, &path.child("properties").key(name), &sub);
                node.properties.insert(name.clone(), child);
            }
        }

        let int_or_string_any_of = is_int_or_string_pattern(p.any_of.as_deref());
        let int_or_string_all_of = p
            .all_of
            .as_deref()
            .and_then(<[JSONSchemaProps]>::first)
            .is_some_and(|first| is_int_or_string_pattern(first.any_of.as_deref()));
        let mut nested_ctx = ctx.clone();
        nested_ctx.nested = true;
        nested_ctx.type_allowed = false;
        if let Some(not) = &p.not {
            node.not = Some(Box::new(self.build(not, &path.child("not"), &nested_ctx)));
        }
        for (i, branch) in p.all_of.iter().flatten().enumerate() {
            let branch_path = path.child("allOf").index(i);
            let built = if i == 0 && int_or_string_all_of {
                self.build_int_or_string_holder(branch, &branch_path, &nested_ctx)
            } else {
                self.build(branch, &branch_path, &nested_ctx)
            };
            node.all_of.push(built);
        }
        for (i, branch) in p.one_of.iter().flatten().enumerate() {
            node.one_of.push(self.build(branch, &path.child("oneOf").index(i), &nested_ctx));
        }
        for (i, branch) in p.any_of.iter().flatten().enumerate() {
            let mut branch_ctx = nested_ctx.clone();
            branch_ctx.type_allowed = int_or_string_any_of;
            node.any_of.push(self.build(branch, &path.child("anyOf").index(i), &branch_ctx));
        }

        match &p.items {
            Some(JSONSchemaPropsOrArray::Schema(items)) => {
                let mut sub = ctx.clone();
                sub.level = Level::Item;
                sub.type_allowed = false;
                if p.x_kubernetes_list_type.as_deref() != Some("map") && sub.uncorrelatable.is_none() {
                    sub.uncorrelatable = Some(path.render());
                }
                node.items = Some(Box::new(self.build(items, &path.child("items"), &sub)));
            }
            Some(JSONSchemaPropsOrArray::Schemas(_)) | None => {}
        }

        self.extension_checks(p, path, &node);
        self.rule_checks(p, path);

        if ctx.nested {
            self.nested_checks(p, path, ctx);
        } else {
            self.structural_checks(p, path, ctx, &node);
            for (kind, branches) in [("allOf", &node.all_of), ("anyOf", &node.any_of), ("oneOf", &node.one_of)] {
                for (i, branch) in branches.iter().enumerate() {
                    self.completeness(branch, Some(&node), path, &path.child(kind).index(i));
                }
            }
            if let Some(not) = &node.not {
                self.completeness(not, Some(&node), path, &path.child("not"));
            }
        }

        // Rules are compiled only when nothing else is wrong in this subtree, as
        // kube-apiserver does (type information for CEL needs a sound schema).
        if !ctx.nested && self.problems.len() == entered_with {
            node.rules = self.compile_rules(p, path, ctx, &node);
        }
        node
    }

    /// `allOf[0]` of the int-or-string pattern: its `anyOf` branches may carry `type`.
    fn build_int_or_string_holder(&mut self, p: &JSONSchemaProps, path: &FieldPath, ctx: &Ctx) -> Node {
        let mut without_any_of = p.clone();
        let any_of = without_any_of.any_of.take().unwrap_or_default();
        let mut node = self.build(&without_any_of, path, ctx);
        let mut branch_ctx = ctx.clone();
        branch_ctx.type_allowed = true;
        for (i, branch) in any_of.iter().enumerate() {
            node.any_of.push(self.build(branch, &path.child("anyOf").index(i), &branch_ctx));
        }
        node
    }

    /// `specStandardValidatorV3.validate` and the top of
    /// `ValidateCustomResourceDefinitionOpenAPISchema`.
    fn standard_checks(&mut self, p: &JSONSchemaProps, path: &FieldPath, ctx: &Ctx, type_: &str) {
        use FieldErrorKind::{Forbidden, Invalid, NotSupported};
        if !type_.is_empty() && !VALID_TYPES.contains(&type_) {
            let supported: Vec<String> = VALID_TYPES.iter().map(|t| gofmt::quote(t)).collect();
            self.problem(
                &path.child("type"),
                NotSupported,
                format!("{}: supported values: {}", gofmt::quote(type_), supported.join(", ")),
            );
        }
        if p.default.is_some()
            && let Some(reason) = &ctx.defaults_forbidden
        {
            self.problem(&path.child("default"), Forbidden, format!("must not be set {reason}"));
        }
        if p.id.is_some() {
            self.problem(&path.child("id"), Forbidden, "id is not supported");
        }
        if p.additional_items.is_some() {
            self.problem(&path.child("additionalItems"), Forbidden, "additionalItems is not supported");
        }
        if p.pattern_properties.as_ref().is_some_and(|m| !m.is_empty()) {
            self.problem(&path.child("patternProperties"), Forbidden, "patternProperties is not supported");
        }
        if p.definitions.as_ref().is_some_and(|m| !m.is_empty()) {
            self.problem(&path.child("definitions"), Forbidden, "definitions is not supported");
        }
        if p.dependencies.is_some() {
            self.problem(&path.child("dependencies"), Forbidden, "dependencies is not supported");
        }
        if p.ref_path.is_some() {
            self.problem(&path.child("$ref"), Forbidden, "$ref is not supported");
        }
        if type_ == "null" {
            self.problem(&path.child("type"), Forbidden, "type cannot be set to null, use nullable as an alternative");
        }
        if matches!(p.items, Some(JSONSchemaPropsOrArray::Schemas(_))) {
            self.problem(&path.child("items"), Forbidden, "items must be a schema object and not an array");
        }
        if ctx.inside_resource_meta && p.x_kubernetes_embedded_resource == Some(true) {
            self.problem(
                &path.child("x-kubernetes-embedded-resource"),
                Forbidden,
                "must not be used inside of resource meta",
            );
        }
        if p.unique_items == Some(true) {
            self.problem(
                &path.child("uniqueItems"),
                Forbidden,
                "uniqueItems cannot be set to true since the runtime complexity becomes quadratic",
            );
        }
        if let Some(additional) = &p.additional_properties
            && p.properties.as_ref().is_some_and(|m| !m.is_empty())
            && matches!(additional, JSONSchemaPropsOrBool::Bool(false) | JSONSchemaPropsOrBool::Schema(_))
        {
            self.problem(
                &path.child("additionalProperties"),
                Forbidden,
                "additionalProperties and properties are mutual exclusive",
            );
        }
        if p.x_kubernetes_preserve_unknown_fields == Some(false) {
            self.problem(
                &path.child("x-kubernetes-preserve-unknown-fields"),
                Invalid,
                "false: must be true or undefined",
            );
        }
    }

    /// The map/list extension checks of `ValidateCustomResourceDefinitionOpenAPISchema`.
    fn extension_checks(&mut self, p: &JSONSchemaProps, path: &FieldPath, node: &Node) {
        use FieldErrorKind::{Forbidden, Invalid, NotSupported, Required};
        let type_ = node.type_.as_str();
        if let Some(map_type) = &p.x_kubernetes_map_type {
            if type_ != "object" {
                self.type_must_be(path, type_, "must be object if x-kubernetes-map-type is specified");
            }
            if map_type != "atomic" && map_type != "granular" {
                self.problem(
                    &path.child("x-kubernetes-map-type"),
                    NotSupported,
                    format!("{}: supported values: \"atomic\", \"granular\"", gofmt::quote(map_type)),
                );
            }
        }
        let items = match &p.items {
            Some(JSONSchemaPropsOrArray::Schema(items)) => Some(items.as_ref()),
            _ => None,
        };
        if let Some(list_type) = &p.x_kubernetes_list_type {
            if type_ != "array" {
                self.type_must_be(path, type_, "must be array if x-kubernetes-list-type is specified");
            } else if list_type == "set"
                && let Some(items) = items
            {
                let items_type = items.type_.as_deref().unwrap_or_default();
                if items_type == "array" && items.x_kubernetes_list_type.as_deref().is_some_and(|t| t != "atomic") {
                    self.problem(
                        &path.child("items").child("x-kubernetes-list-type"),
                        Invalid,
                        "must be atomic as item of a list with x-kubernetes-list-type=set",
                    );
                }
                if items_type == "object" && items.x_kubernetes_map_type.as_deref() != Some("atomic") {
                    self.problem(
                        &path.child("items").child("x-kubernetes-map-type"),
                        Invalid,
                        "must be atomic as item of a list with x-kubernetes-list-type=set",
                    );
                }
            }
            if !["atomic", "set", "map"].contains(&list_type.as_str()) {
                self.problem(
                    &path.child("x-kubernetes-list-type"),
                    NotSupported,
                    format!("{}: supported values: \"atomic\", \"set\", \"map\"", gofmt::quote(list_type)),
                );
            }
        }
        if !node.list_map_keys.is_empty() {
            match p.x_kubernetes_list_type.as_deref() {
                None => self.problem(
                    &path.child("x-kubernetes-list-type"),
                    Required,
                    "must be map if x-kubernetes-list-map-keys is non-empty",
                ),
                Some("map") => {}
                Some(other) => self.problem(
                    &path.child("x-kubernetes-list-type"),
                    Invalid,
                    format!("{}: must be map if x-kubernetes-list-map-keys is non-empty", gofmt::quote(other)),
                ),
            }
        }
        if p.x_kubernetes_list_type.as_deref() == Some("map") {
            if node.list_map_keys.is_empty() {
                self.problem(
                    &path.child("x-kubernetes-list-map-keys"),
                    Required,
                    "must not be empty if x-kubernetes-list-type is map",
                );
            }
            match &p.items {
                None => {
                    self.problem(&path.child("items"), Required, "must have a schema if x-kubernetes-list-type is map")
                }
                Some(JSONSchemaPropsOrArray::Schemas(_)) => self.problem(
                    &path.child("items"),
                    Invalid,
                    "must only have a single schema if x-kubernetes-list-type is map",
                ),
                Some(JSONSchemaPropsOrArray::Schema(items)) => {
                    let items_type = items.type_.as_deref().unwrap_or_default();
                    if items_type != "object" {
                        self.problem(
                            &path.child("items").child("type"),
                            Invalid,
                            format!(
                                "{}: must be object if parent array's x-kubernetes-list-type is map",
                                gofmt::quote(items_type)
                            ),
                        );
                    } else {
                        let mut seen = BTreeSet::new();
                        for key in &node.list_map_keys {
                            match items.properties.as_ref().and_then(|props| props.get(key)) {
                                Some(prop) => {
                                    let t = prop.type_.as_deref().unwrap_or_default();
                                    if t == "array" || t == "object" {
                                        self.problem(
                                            &path.child("items").child("properties").key(key).child("type"),
                                            Invalid,
                                            "must be a scalar type if parent array's x-kubernetes-list-type is map",
                                        );
                                    }
                                }
                                None => self.problem(
                                    &path.child("x-kubernetes-list-map-keys"),
                                    Invalid,
                                    "entries must all be names of item properties",
                                ),
                            }
                            if !seen.insert(key.as_str()) {
                                self.problem(
                                    &path.child("x-kubernetes-list-map-keys"),
                                    Invalid,
                                    "must not contain duplicate entries",
                                );
                            }
                        }
                    }
                }
            }
        }
        // validateMapListKeysMapSet
        if let (Some(list_type @ ("set" | "map")), Some(items)) = (p.x_kubernetes_list_type.as_deref(), items) {
            if items.nullable == Some(true) {
                self.problem(
                    &path.child("items").child("nullable"),
                    Forbidden,
                    format!("cannot be nullable when x-kubernetes-list-type is {list_type}"),
                );
            }
            if list_type == "map" {
                let required: Vec<&String> = items.required.iter().flatten().collect();
                for key in &node.list_map_keys {
                    let Some(prop) = items.properties.as_ref().and_then(|props| props.get(key)) else {
                        continue;
                    };
                    let key_path = path.child("items").child("properties").key(key);
                    if !required.contains(&key) && prop.default.is_none() {
                        self.problem(
                            &key_path.child("default"),
                            Required,
                            "this property is in x-kubernetes-list-map-keys, so it must have a default or be a required property",
                        );
                    }
                    if prop.nullable == Some(true) {
                        self.problem(
                            &key_path.child("nullable"),
                            Forbidden,
                            "this property is in x-kubernetes-list-map-keys, so it cannot be nullable",
                        );
                    }
                }
            }
        }
    }

    fn type_must_be(&mut self, path: &FieldPath, type_: &str, message: &str) {
        if type_.is_empty() {
            self.problem(&path.child("type"), FieldErrorKind::Required, message);
        } else {
            self.problem(&path.child("type"), FieldErrorKind::Invalid, format!("{}: {message}", gofmt::quote(type_)));
        }
    }

    /// The per-rule checks that do not need compilation.
    fn rule_checks(&mut self, p: &JSONSchemaProps, path: &FieldPath) {
        use FieldErrorKind::{Invalid, NotSupported, Required};
        for (i, rule) in p.x_kubernetes_validations.iter().flatten().enumerate() {
            let rule_path = path.child("x-kubernetes-validations").index(i);
            let trimmed_rule = rule.rule.trim();
            let message = rule.message.as_deref().unwrap_or_default();
            let trimmed_message = message.trim();
            if trimmed_rule.is_empty() {
                self.problem(&rule_path.child("rule"), Required, "rule is not specified");
            } else if !message.is_empty() && trimmed_message.is_empty() {
                self.problem(
                    &rule_path.child("message"),
                    Invalid,
                    format!("{}: message must be non-empty if specified", gofmt::quote(message)),
                );
            } else if has_newlines(trimmed_message) {
                self.problem(
                    &rule_path.child("message"),
                    Invalid,
                    format!("{}: message must not contain line breaks", gofmt::quote(message)),
                );
            } else if has_newlines(trimmed_rule) && trimmed_message.is_empty() {
                self.problem(
                    &rule_path.child("message"),
                    Required,
                    "message must be specified if rule contains line breaks",
                );
            }
            if let Some(expr) = &rule.message_expression
                && !expr.is_empty()
                && expr.trim().is_empty()
            {
                self.problem(
                    &rule_path.child("messageExpression"),
                    Required,
                    "messageExpression must be non-empty if specified",
                );
            }
            if let Some(reason) = &rule.reason
                && !cel::REASONS.contains(&reason.as_str())
            {
                let supported: Vec<String> = cel::REASONS.iter().map(|r| gofmt::quote(r)).collect();
                self.problem(
                    &rule_path.child("reason"),
                    NotSupported,
                    format!("{}: supported values: {}", gofmt::quote(reason), supported.join(", ")),
                );
            }
            if let Some(field_path) = &rule.field_path {
                if !field_path.is_empty() && field_path.trim().is_empty() {
                    self.problem(
                        &rule_path.child("fieldPath"),
                        Invalid,
                        format!("{}: fieldPath must be non-empty if specified", gofmt::quote(field_path)),
                    );
                }
                if has_newlines(field_path) {
                    self.problem(
                        &rule_path.child("fieldPath"),
                        Invalid,
                        format!("{}: fieldPath must not contain line breaks", gofmt::quote(field_path)),
                    );
                }
            }
        }
    }

    /// `validateStructuralInvariants` for a node outside of logical junctors.
    fn structural_checks(&mut self, p: &JSONSchemaProps, path: &FieldPath, ctx: &Ctx, node: &Node) {
        use FieldErrorKind::{Forbidden, Invalid, Required};
        let type_ = node.type_.as_str();
        if type_ == "array" && p.items.is_none() {
            self.problem(&path.child("items"), Required, "must be specified");
        }
        if p.additional_properties.is_some() && ctx.level == Level::Root {
            self.problem(&path.child("additionalProperties"), Forbidden, "must not be used at the root");
        }
        if node.int_or_string && node.preserve_unknown {
            self.problem(
                &path.child("x-kubernetes-preserve-unknown-fields"),
                Invalid,
                "true: must be false if x-kubernetes-int-or-string is true",
            );
        }
        if node.int_or_string && node.embedded {
            self.problem(
                &path.child("x-kubernetes-embedded-resource"),
                Invalid,
                "true: must be false if x-kubernetes-int-or-string is true",
            );
        }
        if node.embedded && type_ != "object" {
            self.type_must_be(path, type_, "must be object if x-kubernetes-embedded-resource is true");
        } else if type_.is_empty() && !node.int_or_string && !node.preserve_unknown {
            let message = match ctx.level {
                Level::Root => "must not be empty at the root",
                Level::Item => "must not be empty for specified array items",
                Level::Field => "must not be empty for specified object fields",
            };
            self.problem(&path.child("type"), Required, message);
        }
        if node.embedded && p.additional_properties.is_some() {
            self.problem(
                &path.child("additionalProperties"),
                Forbidden,
                "must not be used if x-kubernetes-embedded-resource is set",
            );
        }
        if ctx.level == Level::Root && !type_.is_empty() && type_ != "object" {
            self.problem(&path.child("type"), Invalid, format!("{}: must be object at the root", gofmt::quote(type_)));
        }
        let check_metadata = ctx.level == Level::Root || node.embedded;
        for field in ["kind", "apiVersion"] {
            if let Some(prop) = node.properties.get(field)
                && check_metadata
                && prop.type_ != "string"
            {
                self.problem(
                    &path.child("properties").key(field).child("type"),
                    Invalid,
                    format!("{}: must be string", gofmt::quote(&prop.type_)),
                );
            }
        }
        if let Some(metadata) = p.properties.as_ref().and_then(|props| props.get("metadata")) {
            let meta_path = path.child("properties").key("metadata");
            if check_metadata && metadata.type_.as_deref() != Some("object") {
                self.problem(
                    &meta_path.child("type"),
                    Invalid,
                    format!("{}: must be object", gofmt::quote(metadata.type_.as_deref().unwrap_or_default())),
                );
            }
            if ctx.level == Level::Root && !only_restricts_names(metadata) {
                self.problem(
                    &meta_path,
                    Forbidden,
                    "must not specify anything other than name and generateName, but metadata is implicitly specified",
                );
            }
        }
        if node.embedded && !node.preserve_unknown && node.properties.is_empty() {
            self.problem(
                &path.child("properties"),
                Required,
                "must not be empty if x-kubernetes-embedded-resource is true without x-kubernetes-preserve-unknown-fields",
            );
        }
    }

    /// `validateNestedValueValidation`: what may not appear inside a logical junctor.
    fn nested_checks(&mut self, p: &JSONSchemaProps, path: &FieldPath, ctx: &Ctx) {
        use FieldErrorKind::Forbidden;
        let forbid = |b: &mut Self, field: &str, message: &str| b.problem(&path.child(field), Forbidden, message);
        if p.type_.as_deref().is_some_and(|t| !t.is_empty()) && !ctx.type_allowed {
            forbid(self, "type", "must be empty to be structural");
        }
        if p.additional_properties.is_some() {
            forbid(self, "additionalProperties", "must be undefined to be structural");
        }
        if p.default.is_some() {
            forbid(self, "default", "must be undefined to be structural");
        }
        if p.title.as_deref().is_some_and(|t| !t.is_empty()) {
            forbid(self, "title", "must be empty to be structural");
        }
        if p.description.as_deref().is_some_and(|t| !t.is_empty()) {
            forbid(self, "description", "must be empty to be structural");
        }
        if p.nullable == Some(true) {
            forbid(self, "nullable", "must be false to be structural");
        }
        if p.external_docs.is_some() {
            forbid(self, "externalDocs", "must be undefined to be structural");
        }
        if p.x_kubernetes_preserve_unknown_fields == Some(true) {
            forbid(self, "x-kubernetes-preserve-unknown-fields", "must be false to be structural");
        }
        if p.x_kubernetes_embedded_resource == Some(true) {
            forbid(self, "x-kubernetes-embedded-resource", "must be false to be structural");
        }
        if p.x_kubernetes_int_or_string == Some(true) {
            forbid(self, "x-kubernetes-int-or-string", "must be false to be structural");
        }
        if p.x_kubernetes_list_map_keys.as_ref().is_some_and(|k| !k.is_empty()) {
            forbid(self, "x-kubernetes-list-map-keys", "must be empty to be structural");
        }
        if p.x_kubernetes_list_type.is_some() {
            forbid(self, "x-kubernetes-list-type", "must be undefined to be structural");
        }
        if p.x_kubernetes_map_type.is_some() {
            forbid(self, "x-kubernetes-map-type", "must be undefined to be structural");
        }
        if p.x_kubernetes_validations.as_ref().is_some_and(|v| !v.is_empty()) {
            forbid(self, "x-kubernetes-validations", "must be empty to be structural");
        }
        if p.properties.as_ref().is_some_and(|props| props.contains_key("metadata")) {
            self.problem(
                &path.child("properties").key("metadata"),
                Forbidden,
                "must not be specified in a nested context",
            );
        }
    }

    /// `validateStructuralCompleteness`: whatever a junctor branch talks about must also be
    /// specified in the structural part of the schema.
    fn completeness(&mut self, branch: &Node, s: Option<&Node>, s_path: &FieldPath, v_path: &FieldPath) {
        let Some(s) = s else {
            self.problem(s_path, FieldErrorKind::Required, format!("because it is defined in {}", v_path.render()));
            return;
        };
        for (kind, branches) in [("allOf", &branch.all_of), ("anyOf", &branch.any_of), ("oneOf", &branch.one_of)] {
            for (i, sub) in branches.iter().enumerate() {
                self.completeness(sub, Some(s), s_path, &v_path.child(kind).index(i));
            }
        }
        if let Some(not) = &branch.not {
            self.completeness(not, Some(s), s_path, &v_path.child("not"));
        }
        if let Some(items) = &branch.items {
            self.completeness(items, s.items.as_deref(), &s_path.child("items"), &v_path.child("items"));
        }
        for (name, prop) in &branch.properties {
            let sp = s_path.child("properties").key(name);
            let vp = v_path.child("properties").key(name);
            match s.properties.get(name) {
                Some(s_prop) => self.completeness(prop, Some(s_prop), &sp, &vp),
                None => {
                    self.problem(&sp, FieldErrorKind::Required, format!("because it is defined in {}", vp.render()))
                }
            }
        }
    }

    fn compile_rules(&mut self, p: &JSONSchemaProps, path: &FieldPath, ctx: &Ctx, node: &Node) -> Vec<Rule> {
        let mut rules = Vec::new();
        for (i, raw) in p.x_kubernetes_validations.iter().flatten().enumerate() {
            let rule_path = path.child("x-kubernetes-validations").index(i);
            match cel::compile(raw, node) {
                Ok(rule) => {
                    if rule.uses_old_self {
                        if let Some(list) = &ctx.uncorrelatable {
                            self.problems.push(SchemaError::CelCompile {
                                path: rule_path.child("rule").render(),
                                rule: raw.rule.clone(),
                                message: format!(
                                    "oldSelf cannot be used on the uncorrelatable portion of the schema within {list}"
                                ),
                            });
                            continue;
                        }
                    } else if let Some(optional) = raw.optional_old_self {
                        self.problem(
                            &rule_path.child("optionalOldSelf"),
                            FieldErrorKind::Invalid,
                            format!("{optional}: may not be set if oldSelf is not used in rule"),
                        );
                        continue;
                    }
                    rules.push(rule);
                }
                Err(failure) => {
                    let (field, message) = match failure {
                        cel::CompileFailure::Rule(m) => ("rule", m),
                        cel::CompileFailure::MessageExpression(m) => ("messageExpression", m),
                        cel::CompileFailure::FieldPath(m) => ("fieldPath", m),
                    };
                    self.problems.push(SchemaError::CelCompile {
                        path: rule_path.child(field).render(),
                        rule: raw.rule.clone(),
                        message,
                    });
                }
            }
        }
        rules
    }
}

fn has_newlines(s: &str) -> bool {
    s.contains('\n') || s.contains('\r')
}

/// The exact `anyOf: [{type: integer}, {type: string}]` of an int-or-string field.
fn is_int_or_string_pattern(any_of: Option<&[JSONSchemaProps]>) -> bool {
    let Some([first, second]) = any_of else {
        return false;
    };
    let only_type = |p: &JSONSchemaProps, t: &str| {
        let expected = JSONSchemaProps { type_: Some(t.to_owned()), ..JSONSchemaProps::default() };
        *p == expected
    };
    only_type(first, "integer") && only_type(second, "string")
}

/// Whether the root `metadata` schema restricts at most `name` and `generateName`.
fn only_restricts_names(metadata: &JSONSchemaProps) -> bool {
    let mut rest = metadata.clone();
    if let Some(props) = &rest.properties {
        let names_only = props.keys().all(|k| k == "name" || k == "generateName");
        if names_only {
            rest.properties = None;
        }
    }
    rest.type_ = None;
    rest.default = None;
    rest == JSONSchemaProps::default()
}
