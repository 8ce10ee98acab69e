//! What `kubectl apply -f examples/basic/` does, against kube-sim's store: read every
//! YAML (or JSON) file of a directory in file-name order, every document in a file in
//! order, default the namespace of namespaced objects, and create each object with the
//! `last-applied-configuration` annotation of client-side apply (or patch it when it
//! already exists).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use kube_sim::{ListOptions, PatchType, ResourceRef, StoreClient};
use serde_json::{Map, Value, json};

/// The annotation kubectl's client-side apply records the applied object in.
pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// The namespace of the kubeconfig's context, which kubectl uses when a document has none.
pub const DEFAULT_NAMESPACE: &str = "default";

/// One document of one file, as the user wrote it.
#[derive(Clone, Debug, PartialEq)]
pub struct Document {
    pub file: PathBuf,
    pub object: Value,
}

impl Document {
    pub fn api_version(&self) -> &str {
        self.object["apiVersion"].as_str().unwrap_or_default()
    }

    pub fn kind(&self) -> &str {
        self.object["kind"].as_str().unwrap_or_default()
    }

    pub fn name(&self) -> &str {
        self.object["metadata"]["name"].as_str().unwrap_or_default()
    }

    pub fn namespace(&self) -> Option<&str> {
        self.object["metadata"]["namespace"].as_str()
    }
}

/// Every document of every `.yaml`, `.yml` and `.json` file directly in `dir`, files in
/// name order (kubectl walks a directory lexically), documents in file order.
pub fn read_dir(dir: &Path) -> anyhow::Result<Vec<Document>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry.with_context(|| format!("reading {}", dir.display()))?.path();
        let manifest = path.extension().and_then(|e| e.to_str()).is_some_and(|e| matches!(e, "yaml" | "yml" | "json"));
        if manifest && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    let mut docs = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
        docs.extend(parse(&file, &text)?);
    }
    if docs.is_empty() {
        bail!("{} holds no manifests (.yaml, .yml or .json)", dir.display());
    }
    Ok(docs)
}

/// The documents of one file. Empty documents are skipped and a `List` is expanded
/// into its items, as kubectl does.
pub fn parse(file: &Path, text: &str) -> anyhow::Result<Vec<Document>> {
    let values: Vec<Value> =
        serde_saphyr::from_multiple(text).with_context(|| format!("parsing {} as YAML", file.display()))?;
    let mut docs = Vec::new();
    for (i, value) in values.into_iter().enumerate() {
        if value.is_null() {
            continue;
        }
        let items = match value["kind"].as_str() {
            Some(kind) if kind.ends_with("List") && value["items"].is_array() => {
                value["items"].as_array().cloned().unwrap_or_default()
            }
            _ => vec![value],
        };
        for object in items {
            let doc = Document { file: file.to_owned(), object };
            if doc.api_version().is_empty() || doc.kind().is_empty() || doc.name().is_empty() {
                bail!("{} document {}: apiVersion, kind and metadata.name are required", file.display(), i + 1);
            }
            docs.push(doc);
        }
    }
    Ok(docs)
}

/// What applying one document did, worded as kubectl prints it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Applied {
    /// `tikvgroup.core.tikv.org/tikv`.
    pub object: String,
    pub namespace: Option<String>,
    pub outcome: Outcome,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Created,
    Configured,
    Unchanged,
}

impl std::fmt::Display for Applied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let outcome = match self.outcome {
            Outcome::Created => "created",
            Outcome::Configured => "configured",
            Outcome::Unchanged => "unchanged",
        };
        write!(f, "{} {outcome}", self.object)
    }
}

/// Applies every CRD of the operator (creating those missing).
pub fn install_crds(client: &StoreClient) -> anyhow::Result<()> {
    let crds = ResourceRef::new("apiextensions.k8s.io", "v1", "customresourcedefinitions");
    for crd in tikv_operator_api::crds::all() {
        let name = crd.metadata.name.clone().unwrap_or_default();
        if client.get(&crds, None, &name).is_ok() {
            continue;
        }
        let object = serde_json::to_value(&crd).with_context(|| format!("encoding CRD {name}"))?;
        client.create(&crds, None, object).with_context(|| format!("creating CRD {name}"))?;
    }
    Ok(())
}

/// Creates every namespace the documents are applied in that does not exist yet.
pub fn ensure_namespaces(client: &StoreClient, docs: &[Document]) -> anyhow::Result<()> {
    let namespaces = ResourceRef::new("", "v1", "namespaces");
    let wanted: BTreeSet<&str> = docs.iter().map(|d| d.namespace().unwrap_or(DEFAULT_NAMESPACE)).collect();
    let existing = client.list(&namespaces, None, &ListOptions::default()).context("listing namespaces")?;
    let existing: BTreeSet<&str> =
        existing["items"].as_array().into_iter().flatten().filter_map(|ns| ns["metadata"]["name"].as_str()).collect();
    for ns in wanted.difference(&existing) {
        client
            .create(&namespaces, None, json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}))
            .with_context(|| format!("creating namespace {ns}"))?;
    }
    Ok(())
}

/// Client-side apply of one document: the object the user wrote, its namespace
/// defaulted, recorded in the last-applied annotation; created if missing, otherwise
/// patched with a three-way JSON merge patch against the previous last-applied
/// configuration (what kubectl sends for custom resources).
pub fn apply(client: &StoreClient, doc: &Document) -> anyhow::Result<Applied> {
    let store = client.store();
    let Some(info) = store.resource_for_kind(doc.api_version(), doc.kind()) else {
        bail!(
            "{}: no matches for kind {:?} in version {:?} (are the CRDs installed?)",
            doc.file.display(),
            doc.kind(),
            doc.api_version()
        );
    };
    let resource = ResourceRef::new(&info.group, &info.version, &info.plural);
    let namespace = info.namespaced.then(|| doc.namespace().unwrap_or(DEFAULT_NAMESPACE).to_owned());
    let modified = with_last_applied(&doc.object, namespace.as_deref())?;
    let object_name = if info.group.is_empty() {
        format!("{}/{}", info.singular, doc.name())
    } else {
        format!("{}.{}/{}", info.singular, info.group, doc.name())
    };
    let ns = namespace.as_deref();
    let what = || format!("applying {object_name} from {}", doc.file.display());
    let outcome = match client.get(&resource, ns, doc.name()) {
        Err(e) if e.code == 404 => {
            client.create(&resource, ns, modified).with_context(what)?;
            Outcome::Created
        }
        Err(e) => return Err(e).with_context(what),
        Ok(current) => {
            let original = current["metadata"]["annotations"][LAST_APPLIED]
                .as_str()
                .and_then(|s| serde_json::from_str::<Value>(s).ok());
            let patch = three_way_patch(original.as_ref(), &modified);
            let patched = client.patch(&resource, ns, doc.name(), None, PatchType::Merge, &patch).with_context(what)?;
            if patched["metadata"]["resourceVersion"] == current["metadata"]["resourceVersion"] {
                Outcome::Unchanged
            } else {
                Outcome::Configured
            }
        }
    };
    Ok(Applied { object: object_name, namespace, outcome })
}

/// The object to send: the document with its namespace set (for namespaced kinds) and
/// the annotation holding that same object, as compact JSON with sorted keys and a
/// trailing newline, the way kubectl encodes it.
pub fn with_last_applied(object: &Value, namespace: Option<&str>) -> anyhow::Result<Value> {
    let mut applied = object.clone();
    let Some(meta) = applied.get_mut("metadata").and_then(Value::as_object_mut) else {
        bail!("metadata must be a mapping");
    };
    if let Some(ns) = namespace {
        meta.insert("namespace".into(), Value::String(ns.into()));
    }
    if let Some(annotations) = meta.get_mut("annotations").and_then(Value::as_object_mut) {
        annotations.remove(LAST_APPLIED);
        if annotations.is_empty() {
            meta.remove("annotations");
        }
    }
    let recorded = format!("{}\n", serde_json::to_string(&applied)?);
    let mut sent = applied;
    let annotations = sent["metadata"]
        .as_object_mut()
        .map(|meta| meta.entry("annotations").or_insert_with(|| Value::Object(Map::new())));
    if let Some(Value::Object(annotations)) = annotations {
        annotations.insert(LAST_APPLIED.into(), Value::String(recorded));
    }
    Ok(sent)
}

/// A JSON merge patch that sets everything `modified` says and removes what the
/// previous apply (`original`) set and `modified` no longer does.
fn three_way_patch(original: Option<&Value>, modified: &Value) -> Value {
    match (original, modified) {
        (Some(Value::Object(original)), Value::Object(modified)) => {
            let mut patch = Map::new();
            for (key, value) in modified {
                patch.insert(key.clone(), three_way_patch(original.get(key), value));
            }
            for key in original.keys().filter(|k| !modified.contains_key(*k)) {
                patch.insert(key.clone(), Value::Null);
            }
            Value::Object(patch)
        }
        _ => modified.clone(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use kube_sim::{KubeSim, Verb};

    fn path(name: &str) -> PathBuf {
        PathBuf::from(name)
    }

    #[test]
    fn every_document_of_a_file_in_order_skipping_empty_ones() {
        let text = "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: first}\n---\n---\n\
                    apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: second\n  namespace: other\n";
        let docs = parse(&path("a.yaml"), text).unwrap();
        let names: Vec<&str> = docs.iter().map(Document::name).collect();
        assert_eq!(names, ["first", "second"]);
        assert_eq!(docs[0].namespace(), None);
        assert_eq!(docs[1].namespace(), Some("other"));
    }

    #[test]
    fn a_list_is_expanded_into_its_items() {
        let text = "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: a}}\n\
                    - {apiVersion: v1, kind: Secret, metadata: {name: b}}\n";
        let docs = parse(&path("l.yaml"), text).unwrap();
        let kinds: Vec<&str> = docs.iter().map(Document::kind).collect();
        assert_eq!(kinds, ["ConfigMap", "Secret"]);
    }

    #[test]
    fn a_document_without_a_name_is_refused_with_its_place() {
        let err = parse(&path("bad.yaml"), "apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n").unwrap_err();
        assert!(err.to_string().contains("bad.yaml document 1"), "{err}");
    }

    #[test]
    fn files_are_read_in_name_order_and_other_files_ignored() {
        let dir = std::env::temp_dir().join(format!("playground-apply-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("10-b.yaml"), "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\n").unwrap();
        std::fs::write(dir.join("02-a.yml"), "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n").unwrap();
        std::fs::write(dir.join("README.md"), "# not a manifest").unwrap();
        let names: Vec<String> = read_dir(&dir).unwrap().iter().map(|d| d.name().to_owned()).collect();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(names, ["a", "b"]);
    }

    #[test]
    fn the_shipped_examples_are_a_cluster_then_pd_then_tikv() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/basic");
        let docs = read_dir(&dir).unwrap();
        let kinds: Vec<&str> = docs.iter().map(Document::kind).collect();
        assert_eq!(kinds, ["Cluster", "PDGroup", "TiKVGroup"]);
    }

    #[test]
    fn the_annotation_records_the_object_with_its_namespace_as_kubectl_does() {
        let object = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": "v"}});
        let sent = with_last_applied(&object, Some("default")).unwrap();
        assert_eq!(sent["metadata"]["namespace"], "default");
        let recorded = sent["metadata"]["annotations"][LAST_APPLIED].as_str().unwrap();
        assert_eq!(
            recorded,
            "{\"apiVersion\":\"v1\",\"data\":{\"k\":\"v\"},\"kind\":\"ConfigMap\",\
             \"metadata\":{\"name\":\"c\",\"namespace\":\"default\"}}\n"
        );
    }

    #[test]
    fn user_annotations_are_kept_in_the_object_and_in_the_record() {
        let object =
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "annotations": {"team": "db"}}});
        let sent = with_last_applied(&object, None).unwrap();
        assert_eq!(sent["metadata"]["annotations"]["team"], "db");
        let recorded: Value =
            serde_json::from_str(sent["metadata"]["annotations"][LAST_APPLIED].as_str().unwrap()).unwrap();
        assert_eq!(recorded["metadata"], json!({"name": "c", "annotations": {"team": "db"}}));
    }

    #[test]
    fn a_field_dropped_from_the_file_is_removed_by_the_patch() {
        let original = json!({"spec": {"replicas": 3, "paused": true}, "metadata": {"name": "x"}});
        let modified = json!({"spec": {"replicas": 5}, "metadata": {"name": "x"}});
        let patch = three_way_patch(Some(&original), &modified);
        assert_eq!(patch, json!({"spec": {"replicas": 5, "paused": null}, "metadata": {"name": "x"}}));
    }

    #[tokio::test]
    async fn applying_the_examples_creates_them_as_kubectl_in_the_default_namespace() {
        let sim = KubeSim::start(kube_sim::Config::default()).await.unwrap();
        let kubectl = sim.store().client("kubectl");
        install_crds(&kubectl).unwrap();
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/basic");
        let docs = read_dir(&dir).unwrap();
        ensure_namespaces(&kubectl, &docs).unwrap();
        let applied: Vec<String> = docs.iter().map(|d| apply(&kubectl, d).unwrap().to_string()).collect();
        assert_eq!(
            applied,
            [
                "cluster.core.tikv.org/basic created",
                "pdgroup.core.tikv.org/pd created",
                "tikvgroup.core.tikv.org/tikv created"
            ]
        );
        let tikvs = ResourceRef::new("core.tikv.org", "v1alpha1", "tikvgroups");
        let group = kubectl.get(&tikvs, Some(DEFAULT_NAMESPACE), "tikv").unwrap();
        let recorded: Value =
            serde_json::from_str(group["metadata"]["annotations"][LAST_APPLIED].as_str().unwrap()).unwrap();
        assert_eq!(recorded["metadata"], json!({"name": "tikv", "namespace": "default"}));
        assert_eq!(recorded["spec"]["replicas"], 3);
        let by_kubectl = sim.requests().count(|r| r.verb == Verb::Create && r.client == "kubectl");
        assert_eq!(by_kubectl, 5 + 3, "the CRDs and the three objects");

        let again = apply(&kubectl, &docs[2]).unwrap();
        assert_eq!(again.outcome, Outcome::Unchanged);
        let mut scaled = docs[2].clone();
        scaled.object["spec"]["replicas"] = json!(5);
        assert_eq!(apply(&kubectl, &scaled).unwrap().outcome, Outcome::Configured);
        assert_eq!(kubectl.get(&tikvs, Some(DEFAULT_NAMESPACE), "tikv").unwrap()["spec"]["replicas"], 5);
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn namespaces_the_documents_name_are_created_and_cluster_scoped_kinds_get_none() {
        let sim = KubeSim::start(kube_sim::Config::default()).await.unwrap();
        let kubectl = sim.store().client("kubectl");
        let docs = parse(
            &path("x.yaml"),
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: db}\n---\n\
             apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata: {name: fast}\nprovisioner: x\n",
        )
        .unwrap();
        ensure_namespaces(&kubectl, &docs).unwrap();
        let applied: Vec<Applied> = docs.iter().map(|d| apply(&kubectl, d).unwrap()).collect();
        assert_eq!(applied[0].namespace.as_deref(), Some("db"));
        assert_eq!(applied[1].namespace, None);
        assert_eq!(applied[1].to_string(), "storageclass.storage.k8s.io/fast created");
        sim.shutdown().await;
    }
}
