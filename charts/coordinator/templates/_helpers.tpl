{{/* The StatefulSet's name: "coordinator" unless fullnameOverride says otherwise. */}}
{{- define "coordinator.fullname" -}}
{{- default "coordinator" .Values.fullnameOverride | trunc 57 | trimSuffix "-" }}
{{- end }}

{{- define "coordinator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "coordinator.labels" -}}
helm.sh/chart: {{ include "coordinator.chart" . }}
{{ include "coordinator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
app.kubernetes.io/name is "coordinator" on purpose, as on the Contrast Coordinator: the
coordinator-ha webhook and handler select Coordinator pods by it.
*/}}
{{- define "coordinator.selectorLabels" -}}
app.kubernetes.io/name: coordinator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "coordinator.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag | toString) }}
{{- end }}
{{- end }}
