{{/*
Names. The full name is the release name when it already contains the chart name (release
"supportgate" gives "supportgate"), else "<release>-<chart>"; truncated to 63 characters.
*/}}
{{- define "supportgate.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "supportgate.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "supportgate.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Selector labels: stable for the life of a release (Deployment selectors are immutable). */}}
{{- define "supportgate.selectorLabels" -}}
app.kubernetes.io/name: {{ include "supportgate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels of every object: the standard ones, then commonLabels. */}}
{{- define "supportgate.labels" -}}
helm.sh/chart: {{ include "supportgate.chart" . }}
{{ include "supportgate.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: supportgate
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "supportgate.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "supportgate.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The Secret holding tls.crt/tls.key: written by supportgate itself, or by cert-manager. */}}
{{- define "supportgate.tlsSecretName" -}}
{{- printf "%s-tls" (include "supportgate.fullname" .) }}
{{- end }}

{{- define "supportgate.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{/* Namespaces the webhook never intercepts: the release's own, kube-system, and any extra. */}}
{{- define "supportgate.excludedNamespaces" -}}
{{- concat (list .Release.Namespace "kube-system") .Values.webhook.excludeNamespaces | uniq | toJson }}
{{- end }}
