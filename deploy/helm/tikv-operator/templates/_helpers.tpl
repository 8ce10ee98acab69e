{{/* The release's full name: the release name, or <release>-tikv-operator. */}}
{{- define "tikv-operator.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "tikv-operator.serviceAccountName" -}}
{{- default (include "tikv-operator.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}

{{- define "tikv-operator.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "tikv-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "tikv-operator.labels" -}}
{{ include "tikv-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/*
What the operator does in the namespaces it watches: exactly the verbs the code uses
(crates/operator/tests/e2e/rbac.rs checks both ways). Reads of the kinds it caches are
list+watch only (one watch per kind); get only where a task reads the API directly.
*/}}
{{- define "tikv-operator.namespacedRules" -}}
# The five custom resources: watched; a Cluster read directly before instances are
# released without it; groups deleted with their Cluster; instances created, replaced
# (rolling update), patched (finalizers, annotations), deleted (scale-in, replacement);
# finalizers patched on all five; status written by PUT.
- apiGroups: ["core.tikv.org"]
  resources: ["clusters"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["core.tikv.org"]
  resources: ["pdgroups", "tikvgroups"]
  verbs: ["list", "watch", "patch", "delete"]
- apiGroups: ["core.tikv.org"]
  resources: ["pds", "tikvs"]
  verbs: ["list", "watch", "create", "update", "patch", "delete"]
- apiGroups: ["core.tikv.org"]
  resources: ["clusters/status", "pdgroups/status", "pds/status", "tikvgroups/status", "tikvs/status"]
  verbs: ["update"]
# Pods and volumes of the instances.
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list", "watch", "create", "patch", "delete"]
# PVCs: deleted one by one once their store or member is gone, and by label with their
# instance when the Cluster is deleted under deletionPolicy Delete.
- apiGroups: [""]
  resources: ["persistentvolumeclaims"]
  verbs: ["list", "watch", "create", "patch", "delete", "deletecollection"]
- apiGroups: [""]
  resources: ["configmaps", "services"]
  verbs: ["list", "watch", "create", "patch"]
# The cluster's TLS client certificate, read when `tlsCluster` is on (never cached).
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get"]
- apiGroups: ["apps"]
  resources: ["controllerrevisions"]
  verbs: ["list", "watch", "create", "delete"]
- apiGroups: ["policy"]
  resources: ["poddisruptionbudgets"]
  verbs: ["list", "watch", "create", "patch"]
# kube-rs's event recorder: a new Event, or a patch of a repeated one.
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end -}}

{{/*
What is cluster-scoped, whatever the watched namespace: Nodes (their zone and host
labels become the TiKV stores' labels in PD; a pod stuck terminating on a node that is
gone is finished only once the Node is gone) and PersistentVolumes (labelled with the
cluster, group, instance and store ID of the PVC bound to them).
*/}}
{{- define "tikv-operator.clusterRules" -}}
- apiGroups: [""]
  resources: ["nodes"]
  verbs: ["get", "list", "watch"]
- apiGroups: [""]
  resources: ["persistentvolumes"]
  verbs: ["patch"]
{{- end -}}

{{/* Leader election: the Lease in the release namespace, as client-go's elector uses it. */}}
{{- define "tikv-operator.leaseRules" -}}
- apiGroups: ["coordination.k8s.io"]
  resources: ["leases"]
  verbs: ["get", "create", "update"]
{{- end -}}
