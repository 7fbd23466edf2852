{{/* Names: the release's full name, cut to the 63 characters a label value allows. */}}
{{- define "gemma-operator.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "gemma-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "gemma-operator.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Selector labels: never app.kubernetes.io/managed-by=gemma-operator, which marks serving pods. */}}
{{- define "gemma-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "gemma-operator.labels" -}}
{{ include "gemma-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: gemma-operator
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* repository@digest when a digest pins the image, else repository:tag. */}}
{{- define "gemma-operator.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{- define "gemma-operator.leaseName" -}}
{{- default (include "gemma-operator.fullname" .) .Values.leaderElection.leaseName -}}
{{- end -}}

{{- define "gemma-operator.configPath" -}}/etc/gemma-operator/accelerators.yaml{{- end -}}

{{/*
RBAC, rule by rule: exactly what the operator uses (docs/install.md explains each).

Rules for namespaced resources: in a ClusterRole for cluster-wide installs, in a Role per
watched namespace otherwise.
*/}}
{{- define "gemma-operator.namespacedRules" -}}
# GemmaDeployments: kopf lists and watches them, and adds a finalizer (patch) to those with an autoscaling timer.
- apiGroups: [serving.gemma.dev]
  resources: [gemmadeployments]
  verbs: [get, list, watch, patch]
# Status is written by the operator alone, through the status subresource.
- apiGroups: [serving.gemma.dev]
  resources: [gemmadeployments/status]
  verbs: [patch]
# Children carry ownerReferences with blockOwnerDeletion; clusters with the
# OwnerReferencesPermissionEnforcement admission plugin require this to set it.
- apiGroups: [serving.gemma.dev]
  resources: [gemmadeployments/finalizers]
  verbs: [update]
# Children are written by server-side apply: patch, and create for an object that is new.
# The serving Deployment and Service are removed by the garbage collector; delete is for the endpoint
# picker's, when spec.routing.inferencePool is turned off.
- apiGroups: [apps]
  resources: [deployments]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [""]
  resources: [services]
  verbs: [get, list, watch, create, patch, delete]
# A PodDisruptionBudget exists only with more than one replica: deleted when scaled back to one.
- apiGroups: [policy]
  resources: [poddisruptionbudgets]
  verbs: [get, list, watch, create, patch, delete]
# Opt-in per GemmaDeployment (spec.monitoring.serviceMonitor); deleted when turned off.
- apiGroups: [monitoring.coreos.com]
  resources: [servicemonitors]
  verbs: [get, create, patch, delete]
# spec.routing.inferencePool: the InferencePool and its endpoint picker's ServiceAccount, Role, RoleBinding and
# configuration, deleted when turned off. The operator holds every permission the picker's Role grants (the read
# rules below and on pods), so the API server lets it create that Role and bind it without escalate or bind.
- apiGroups: [inference.networking.k8s.io]
  resources: [inferencepools]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [""]
  resources: [serviceaccounts, configmaps]
  verbs: [get, create, patch, delete]
- apiGroups: [rbac.authorization.k8s.io]
  resources: [roles, rolebindings]
  verbs: [get, create, patch, delete]
# Granted to the picker, which reads them where their CRDs exist; the operator itself never does.
- apiGroups: [inference.networking.x-k8s.io]
  resources: [inferenceobjectives, inferencemodelrewrites]
  verbs: [get, list, watch]
# The weight cache claim (spec.serving.cache.size).
- apiGroups: [""]
  resources: [persistentvolumeclaims]
  verbs: [get, create, patch]
# Serving pods for status and smoke checks, and every pod's GPU requests for the free-GPU hint.
# get: the endpoint picker's Role grants it, so the operator must hold it.
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, watch]
# The Deployments' ReplicaSets: a serving pod counts only if one of them is its controller (by uid).
- apiGroups: [apps]
  resources: [replicasets]
  verbs: [list, watch]
# No rule on Secrets, not even get: the serving pods read the token by reference (docs/security.md).
# Warning events on GemmaDeployments (kopf posts core/v1 Events; it never patches them).
- apiGroups: [""]
  resources: [events]
  verbs: [create]
{{- end -}}

{{/* Cluster-scoped reads, needed in both modes. */}}
{{- define "gemma-operator.clusterRules" -}}
# The node inventory: GPU products, GPU counts, architectures and edge roles.
- apiGroups: [""]
  resources: [nodes]
  verbs: [list, watch]
# kopf's resource discovery: it notices a CRD installed (or upgraded) after it started.
- apiGroups: [apiextensions.k8s.io]
  resources: [customresourcedefinitions]
  verbs: [list, watch]
{{- end -}}
