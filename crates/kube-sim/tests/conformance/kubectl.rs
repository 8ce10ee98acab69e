//! The installed kubectl against the emulator, with only the kubeconfig: apply, get
//! (server-side Tables), describe, patch kinds, scale, wait, delete --wait, events.

use std::time::Duration;

use crate::common::{Sim, wait_for};

const CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gadgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {plural: gadgets, singular: gadget, kind: Gadget, shortNames: [gd]}
  versions:
  - name: v1
    served: true
    storage: true
    subresources:
      status: {}
      scale: {specReplicasPath: .spec.replicas, statusReplicasPath: .status.replicas}
    additionalPrinterColumns:
    - {name: Replicas, type: integer, jsonPath: .spec.replicas}
    - {name: Ready, type: string, jsonPath: '.status.conditions[?(@.type=="Ready")].status'}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              replicas: {type: integer}
              color: {type: string}
          status:
            type: object
            properties:
              replicas: {type: integer}
              conditions:
                type: array
                items: {type: object, x-kubernetes-preserve-unknown-fields: true}
"#;

const GADGET: &str = r#"
apiVersion: example.com/v1
kind: Gadget
metadata:
  name: g1
  labels: {app: demo}
spec:
  replicas: 2
  color: red
"#;

fn install(s: &Sim) {
    s.apply_yaml(CRD);
    s.kubectl_ok(&["wait", "--for=condition=Established", "crd/gadgets.example.com", "--timeout=10s"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_resource_round_trip() {
    let s = Sim::start().await;
    install(&s);
    assert_eq!(s.apply_yaml(GADGET).trim(), "gadget.example.com/g1 created");
    assert_eq!(s.apply_yaml(GADGET).trim(), "gadget.example.com/g1 unchanged");
    let table = s.kubectl_ok(&["get", "gadgets"]);
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "REPLICAS", "READY"]);
    assert!(table.lines().nth(1).unwrap().starts_with("g1 "), "{table}");
    assert!(s.kubectl_ok(&["get", "gd", "-l", "app=demo", "-o", "name"]).contains("gadget.example.com/g1"));
    assert!(s.kubectl_ok(&["get", "gd", "-l", "app=other", "-o", "name"]).trim().is_empty());

    let applied = s.apply_yaml(&GADGET.replace("red", "blue"));
    assert_eq!(applied.trim(), "gadget.example.com/g1 configured");
    s.kubectl_ok(&["patch", "gadget", "g1", "--type", "merge", "-p", r#"{"spec":{"replicas":3}}"#]);
    s.kubectl_ok(&[
        "patch",
        "gadget",
        "g1",
        "--type",
        "json",
        "-p",
        r#"[{"op":"replace","path":"/spec/color","value":"green"}]"#,
    ]);
    let smp = s.kubectl(&["patch", "gadget", "g1", "-p", r#"{"spec":{"replicas":4}}"#]);
    assert!(!smp.status.success());
    assert!(String::from_utf8_lossy(&smp.stderr).contains("application/strategic-merge-patch+json is not supported"));
    s.kubectl_ok(&["scale", "gadget", "g1", "--replicas=5"]);
    assert_eq!(s.kubectl_ok(&["get", "gadget", "g1", "-o", "jsonpath={.spec.replicas} {.spec.color}"]), "5 green");
    let yaml = s.kubectl_ok(&["get", "gadget", "g1", "-o", "yaml"]);
    assert!(
        yaml.contains("kubectl.kubernetes.io/last-applied-configuration") && yaml.contains("resourceVersion:"),
        "{yaml}"
    );

    s.kubectl_ok(&[
        "patch",
        "gadget",
        "g1",
        "--subresource=status",
        "--type",
        "merge",
        "-p",
        r#"{"status":{"replicas":5,"conditions":[{"type":"Ready","status":"True"}]}}"#,
    ]);
    assert!(s.kubectl_ok(&["wait", "--for=condition=Ready", "gadget/g1", "--timeout=10s"]).contains("condition met"));
    assert!(
        s.kubectl_ok(&["get", "gadgets"])
            .lines()
            .nth(1)
            .unwrap()
            .split_whitespace()
            .collect::<Vec<_>>()
            .starts_with(&["g1", "5", "True"])
    );
    let described = s.kubectl_ok(&["describe", "gadget", "g1"]);
    assert!(described.contains("Name:         g1") && described.contains("Replicas:  5"), "{described}");

    let unknown = s.kubectl_stdin(&["apply", "-f", "-"], Some(&GADGET.replace("color: red", "colour: red")));
    assert!(!unknown.status.success());
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains("unknown field \"spec.colour\""),
        "{}",
        String::from_utf8_lossy(&unknown.stderr)
    );

    assert_eq!(
        s.kubectl_ok(&["delete", "gadget", "g1", "--wait=true", "--timeout=10s"]).trim(),
        "gadget.example.com \"g1\" deleted"
    );
    s.kubectl_ok(&["delete", "crd", "gadgets.example.com", "--wait=true", "--timeout=10s"]);
    let gone = s.kubectl(&["get", "gadgets"]);
    assert!(!gone.status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_describe_events_and_immutable_fields() {
    let s = Sim::start().await;
    let pod = r#"
apiVersion: v1
kind: Pod
metadata: {name: web, labels: {app: web}}
spec:
  containers:
  - name: app
    image: nginx:1.25
    env: [{name: A, value: "1"}]
"#;
    s.apply_yaml(pod);
    let pods = s.kubectl_ok(&["get", "pods", "-o", "wide"]);
    let header: Vec<&str> = pods.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE"]);
    assert!(pods.contains("web    0/1     Pending"), "{pods}");
    s.kubectl_ok(&["patch", "pod", "web", "-p", r#"{"spec":{"containers":[{"name":"app","image":"nginx:1.26"}]}}"#]);
    assert_eq!(s.kubectl_ok(&["get", "pod", "web", "-o", "jsonpath={.spec.containers[0].image}"]), "nginx:1.26");
    let refused = s.kubectl_stdin(&["apply", "-f", "-"], Some(&pod.replace("value: \"1\"", "value: \"2\"")));
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("The Pod \"web\" is invalid: spec: Forbidden: pod updates may not change fields other than"),
        "{err}"
    );

    // An event recorded through events.k8s.io/v1 shows in describe and `get events`.
    let uid = s.kubectl_ok(&["get", "pod", "web", "-o", "jsonpath={.metadata.uid}"]);
    let event = format!(
        r#"{{"apiVersion":"events.k8s.io/v1","kind":"Event","metadata":{{"name":"web.1","namespace":"default"}},
        "eventTime":"2024-01-01T00:00:00.000000Z","reportingController":"test-controller","reportingInstance":"t-1",
        "action":"Check","reason":"Checked","note":"all good","type":"Normal",
        "regarding":{{"apiVersion":"v1","kind":"Pod","name":"web","namespace":"default","uid":"{uid}"}}}}"#
    );
    s.kubectl_stdin(&["create", "-f", "-"], Some(&event));
    let described = s.kubectl_ok(&["describe", "pod", "web"]);
    assert!(described.contains("Checked") && described.contains("all good"), "{described}");
    let events = s.kubectl_ok(&["get", "events"]);
    assert!(events.contains("pod/web") && events.contains("Checked"), "{events}");

    let watch = std::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(s.sim.kubeconfig_path())
        .arg("--cache-dir")
        .arg(s.dir.path().join("kubectl-cache"))
        .args(["get", "pods", "-w", "--request-timeout=5s"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(10, "kubectl to open its watch", || async {
        s.sim.requests().count(|r| r.verb == kube_sim::Verb::Watch && r.user_agent.starts_with("kubectl")) > 0
    })
    .await;
    s.kubectl_ok(&["label", "pod", "web", "seen=yes"]);
    s.kubectl_ok(&["delete", "pod", "web", "--wait=true", "--timeout=10s"]);
    let out =
        tokio::time::timeout(Duration::from_secs(15), tokio::task::spawn_blocking(move || watch.wait_with_output()))
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    let lines = String::from_utf8_lossy(&out.stdout);
    assert!(lines.lines().filter(|l| l.starts_with("web ")).count() >= 2, "{lines}");
}
