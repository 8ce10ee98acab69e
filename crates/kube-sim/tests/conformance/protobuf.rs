//! Protobuf request bodies, as kubectl's typed commands send them: `create namespace`,
//! `create configmap|secret|service|pdb` and `debug node` reach the store as the JSON a
//! JSON client would have sent; custom resources still refuse protobuf with 415;
//! responses stay JSON for clients that accept both.

use base64::Engine;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as metav1;
use k8s_pb::apimachinery::pkg::runtime::{TypeMeta, Unknown};
use prost::Message;
use serde_json::Value;

use crate::common::{Sim, api_err};

const PROTOBUF: &str = "application/vnd.kubernetes.protobuf";

/// `metadata` with `name`, for a `k8s\0` + `runtime.Unknown` body of kind `kind`: enough
/// for ConfigMap-shaped messages (field 1 is metadata in every object message).
fn body(api_version: &str, kind: &str, name: &str) -> Vec<u8> {
    let cm = k8s_pb::api::core::v1::ConfigMap {
        metadata: Some(metav1::ObjectMeta { name: Some(name.into()), ..Default::default() }),
        data: [("a".to_string(), "b".to_string())].into(),
        ..Default::default()
    };
    let unknown = Unknown {
        type_meta: Some(TypeMeta { api_version: Some(api_version.into()), kind: Some(kind.into()) }),
        raw: Some(cm.encode_to_vec()),
        ..Default::default()
    };
    let mut out = b"k8s\0".to_vec();
    out.extend(unknown.encode_to_vec());
    out
}

fn post(uri: &str, body: Vec<u8>) -> http::Request<Vec<u8>> {
    http::Request::post(uri)
        .header(http::header::CONTENT_TYPE, PROTOBUF)
        .header(http::header::ACCEPT, "application/vnd.kubernetes.protobuf, application/json")
        .body(body)
        .unwrap()
}

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap()
}

/// The object as stored, less what the server assigns per object.
fn comparable(s: &Sim, args: &[&str]) -> Value {
    let mut args = args.to_vec();
    args.extend(["-o", "json"]);
    let mut v = json(&s.kubectl_ok(&args));
    let meta = v["metadata"].as_object_mut().unwrap();
    for k in ["uid", "resourceVersion", "creationTimestamp", "name", "managedFields"] {
        meta.remove(k);
    }
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_typed_create_commands() {
    let s = Sim::start().await;
    assert_eq!(s.kubectl_ok(&["create", "namespace", "db"]).trim(), "namespace/db created");
    assert_eq!(s.kubectl_ok(&["get", "ns", "db", "-o", "jsonpath={.status.phase}"]), "Active");

    let out = s.kubectl_ok(&["create", "configmap", "x", "-n", "db", "--from-literal=a=b", "--from-literal=empty="]);
    assert_eq!(out.trim(), "configmap/x created");
    let yaml = s.kubectl_ok(&["get", "cm", "x", "-n", "db", "-o", "yaml"]);
    assert!(yaml.contains("data:\n  a: b\n  empty: \"\"\n") && yaml.contains("name: x\n  namespace: db"), "{yaml}");

    let secret = ["create", "secret", "generic", "s", "-n", "db", "--from-literal=k=v", "--from-literal=pw=p@ss:w0rd"];
    assert_eq!(s.kubectl_ok(&secret).trim(), "secret/s created");
    let data = json(&s.kubectl_ok(&["get", "secret", "s", "-n", "db", "-o", "jsonpath={.data}"]));
    let decoded = |k: &str| {
        let bytes = base64::engine::general_purpose::STANDARD.decode(data[k].as_str().unwrap()).unwrap();
        String::from_utf8(bytes).unwrap()
    };
    assert_eq!((decoded("k").as_str(), decoded("pw").as_str()), ("v", "p@ss:w0rd"));
    assert_eq!(s.kubectl_ok(&["get", "secret", "s", "-n", "db", "-o", "jsonpath={.type}"]), "Opaque");

    // Each typed command's object is the one its JSON (`--dry-run=client -o json`) makes.
    let cases: [(&[&str], &str); 5] = [
        (&["configmap", "--from-literal=a=b", "--from-literal=c="], "configmap"),
        (&["secret", "generic", "--from-literal=user=u", "--type=kubernetes.io/basic-auth"], "secret"),
        (
            &["secret", "docker-registry", "--docker-server=r.io", "--docker-username=u", "--docker-password=p"],
            "secret",
        ),
        (&["service", "nodeport", "--tcp=80:http", "--node-port=30080"], "service"),
        (&["poddisruptionbudget", "--selector=app=x", "--min-available=50%"], "pdb"),
    ];
    for (i, (args, resource)) in cases.iter().enumerate() {
        let (pb, js) = (format!("pb-{i}"), format!("js-{i}"));
        let name_at = if args[0] == "secret" || args[0] == "service" { 2 } else { 1 };
        let with = |name: &str| {
            let mut a = vec!["create"];
            a.extend(&args[..name_at]);
            a.push(name);
            a.extend(&args[name_at..]);
            a.into_iter().map(str::to_string).collect::<Vec<_>>()
        };
        let pb_args = with(&pb);
        s.kubectl_ok(&pb_args.iter().map(String::as_str).collect::<Vec<_>>());
        let mut js_args = with(&js);
        js_args.extend(["--dry-run=client".into(), "-o".into(), "json".into()]);
        let manifest = s.kubectl_ok(&js_args.iter().map(String::as_str).collect::<Vec<_>>());
        let created = s.kubectl_stdin(&["create", "-f", "-"], Some(&manifest));
        assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
        let mut a = comparable(&s, &["get", resource, &pb]);
        let mut b = comparable(&s, &["get", resource, &js]);
        if *resource == "service" {
            for v in [&mut a, &mut b] {
                let spec = v["spec"].as_object_mut().unwrap();
                spec.remove("clusterIP");
                spec.remove("clusterIPs");
                spec.remove("selector");
                v["metadata"].as_object_mut().unwrap().remove("labels");
            }
            assert_eq!(a["spec"]["ports"][0]["nodePort"], 30080, "{a}");
        }
        assert_eq!(a, b, "kubectl create {args:?}");
    }
    // Every one of those writes was protobuf; none was refused.
    assert_eq!(s.sim.requests().count(|r| r.code == 415), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_debug_node_creates_a_pod_over_protobuf() {
    let s = Sim::start_with(kube_sim::Config { nodes: 1, ..Default::default() }).await;
    s.kubectl_ok(&["debug", "node/node-1", "--image=busybox", "--profile=general"]);
    let pods = json(&s.kubectl_ok(&["get", "pods", "-o", "json"]));
    let spec = &pods["items"][0]["spec"];
    assert_eq!(spec["nodeName"], "node-1");
    assert_eq!((&spec["hostPID"], &spec["hostNetwork"]), (&Value::Bool(true), &Value::Bool(true)), "{spec}");
    assert_eq!(spec["volumes"][0]["hostPath"]["path"], "/");
    assert_eq!(spec["containers"][0]["volumeMounts"][0]["mountPath"], "/host");
    assert_eq!(spec["restartPolicy"], "Never");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protobuf_bodies_over_http() {
    let s = Sim::start().await;
    // A built-in kind: created, and answered in JSON.
    let text =
        s.client.request_text(post("/api/v1/namespaces/default/configmaps", body("v1", "ConfigMap", "c1"))).await;
    let created = json(&text.unwrap());
    assert_eq!((&created["metadata"]["name"], &created["data"]["a"]), (&Value::from("c1"), &Value::from("b")));
    let req =
        post("/api/v1/namespaces/default/configmaps", body("v1", "ConfigMap", "c2")).map(kube::client::Body::from);
    let resp = s.client.send(req).await.unwrap();
    assert_eq!(resp.status(), 201);
    assert_eq!(resp.headers()[http::header::CONTENT_TYPE], "application/json");

    // The wrong kind for the URL is refused as for JSON.
    let err = s.client.request_text(post("/api/v1/namespaces", body("v1", "ConfigMap", "c3"))).await.unwrap_err();
    assert_eq!(api_err(err).code, 400);

    // Custom resources take no protobuf, whatever the envelope says.
    s.apply_yaml(
        r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: gizmos.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {plural: gizmos, kind: Gizmo}
  versions:
  - name: v1
    served: true
    storage: true
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
"#,
    );
    s.kubectl_ok(&["wait", "--for=condition=Established", "crd/gizmos.example.com", "--timeout=10s"]);
    let uri = "/apis/example.com/v1/namespaces/default/gizmos";
    let err = s.client.request_text(post(uri, body("example.com/v1", "Gizmo", "g1"))).await.unwrap_err();
    let status = api_err(err);
    assert_eq!((status.code, status.reason.as_str()), (415, "UnsupportedMediaType"), "{status:?}");
    // And a built-in kind the decoder does not map is refused the same way.
    let uri = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions";
    let err = s
        .client
        .request_text(post(uri, body("apiextensions.k8s.io/v1", "CustomResourceDefinition", "x.example.com")))
        .await
        .unwrap_err();
    assert_eq!(api_err(err).code, 415);
}
