{{/* Names ------------------------------------------------------------------------ */}}

{{- define "coordinator-ha.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The release's base name. Component names append "-webhook" or "-handler" (8 characters),
so the base is cut to 54 characters to keep every name a valid DNS label.
*/}}
{{- define "coordinator-ha.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 54 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 54 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 54 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "coordinator-ha.webhookName" -}}
{{- printf "%s-webhook" (include "coordinator-ha.fullname" .) }}
{{- end }}

{{- define "coordinator-ha.handlerName" -}}
{{- printf "%s-handler" (include "coordinator-ha.fullname" .) }}
{{- end }}

{{/* The Secret that holds tls.crt, tls.key and (except in secret mode) ca.crt. */}}
{{- define "coordinator-ha.tlsSecretName" -}}
{{- if eq .Values.tls.mode "secret" }}
{{- required "tls.secret.name is required with tls.mode=secret: the name of a kubernetes.io/tls Secret in the release namespace" .Values.tls.secret.name }}
{{- else }}
{{- printf "%s-tls" (include "coordinator-ha.fullname" .) }}
{{- end }}
{{- end }}

{{- define "coordinator-ha.caSecretName" -}}
{{- printf "%s-ca" (include "coordinator-ha.fullname" .) }}
{{- end }}

{{/* Holds the CA of tls.secret.caBundle in secret mode. */}}
{{- define "coordinator-ha.caConfigMapName" -}}
{{- printf "%s-ca" (include "coordinator-ha.fullname" .) }}
{{- end }}

{{/* Labels ----------------------------------------------------------------------- */}}

{{- define "coordinator-ha.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "coordinator-ha.labels" -}}
helm.sh/chart: {{ include "coordinator-ha.chart" . }}
{{ include "coordinator-ha.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: coordinator-ha
{{- end }}

{{- define "coordinator-ha.selectorLabels" -}}
app.kubernetes.io/name: {{ include "coordinator-ha.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Usage: include "coordinator-ha.componentLabels" (dict "ctx" $ "component" "webhook") */}}
{{- define "coordinator-ha.componentLabels" -}}
{{ include "coordinator-ha.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "coordinator-ha.componentSelectorLabels" -}}
{{ include "coordinator-ha.selectorLabels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* Images ----------------------------------------------------------------------- */}}

{{/* Usage: include "coordinator-ha.imageRef" (dict "image" .Values.image "ctx" $) */}}
{{- define "coordinator-ha.imageRef" -}}
{{- if .image.digest }}
{{- printf "%s@%s" .image.repository .image.digest }}
{{- else }}
{{- printf "%s:%s" .image.repository (default .ctx.Chart.AppVersion .image.tag | toString) }}
{{- end }}
{{- end }}

{{- define "coordinator-ha.image" -}}
{{- include "coordinator-ha.imageRef" (dict "image" .Values.image "ctx" .) }}
{{- end }}

{{/*
The sidecar runs the chart's image unless sidecar.image names another: then its own tag
or digest applies (a digest of the chart's image would not fit another repository).
*/}}
{{- define "coordinator-ha.sidecarImage" -}}
{{- $own := .Values.sidecar.image }}
{{- if or $own.repository $own.tag $own.digest }}
{{- $image := dict "repository" (default .Values.image.repository $own.repository) "tag" $own.tag "digest" $own.digest }}
{{- include "coordinator-ha.imageRef" (dict "image" $image "ctx" .) }}
{{- else }}
{{- include "coordinator-ha.image" . }}
{{- end }}
{{- end }}

{{/* Wiring ----------------------------------------------------------------------- */}}

{{- define "coordinator-ha.handlerUrl" -}}
{{- default (printf "https://%s.%s.svc:443" (include "coordinator-ha.handlerName" .) .Release.Namespace) .Values.sidecar.handlerUrl }}
{{- end }}

{{/*
webhook.objectSelector as a label-selector string for the handler's --pod-selector, in the syntax of
`kubectl get -l`: matchLabels as key=value, matchExpressions as "key in (a,b)",
"key notin (a)", "key" and "!key".
*/}}
{{- define "coordinator-ha.podSelectorString" -}}
{{- $terms := list }}
{{- range $key, $value := .Values.webhook.objectSelector.matchLabels }}
{{- $terms = append $terms (printf "%s=%s" $key $value) }}
{{- end }}
{{- range .Values.webhook.objectSelector.matchExpressions }}
{{- if eq .operator "In" }}
{{- $terms = append $terms (printf "%s in (%s)" .key (join "," .values)) }}
{{- else if eq .operator "NotIn" }}
{{- $terms = append $terms (printf "%s notin (%s)" .key (join "," .values)) }}
{{- else if eq .operator "Exists" }}
{{- $terms = append $terms .key }}
{{- else if eq .operator "DoesNotExist" }}
{{- $terms = append $terms (printf "!%s" .key) }}
{{- end }}
{{- end }}
{{- join "," $terms }}
{{- end }}

{{/*
The same selector as a CEL expression over `variables.labels` (a pod's labels), for the
handler's ValidatingAdmissionPolicy. Keys and values are JSON string literals, which CEL reads
as the same strings. No requirement at all would select every pod: "true".
*/}}
{{- define "coordinator-ha.podSelectorCel" -}}
{{- $terms := list }}
{{- range $key, $value := .Values.webhook.objectSelector.matchLabels }}
{{- $terms = append $terms (printf "(%s in variables.labels && variables.labels[%s] == %s)" (toJson $key) (toJson $key) (toJson (toString $value))) }}
{{- end }}
{{- range .Values.webhook.objectSelector.matchExpressions }}
{{- $key := toJson .key }}
{{- if eq .operator "In" }}
{{- $terms = append $terms (printf "(%s in variables.labels && variables.labels[%s] in %s)" $key $key (toJson .values)) }}
{{- else if eq .operator "NotIn" }}
{{- $terms = append $terms (printf "!(%s in variables.labels && variables.labels[%s] in %s)" $key $key (toJson .values)) }}
{{- else if eq .operator "Exists" }}
{{- $terms = append $terms (printf "%s in variables.labels" $key) }}
{{- else if eq .operator "DoesNotExist" }}
{{- $terms = append $terms (printf "!(%s in variables.labels)" $key) }}
{{- end }}
{{- end }}
{{- default "true" (join " && " $terms) }}
{{- end }}

{{/*
webhook.namespaceSelector, narrowed to handler.namespaces when that is set: a pod injected
where the handler may not look would wait un-Ready forever, since no handler could mark it
recovered. The requirement is appended to the user's matchExpressions (all of them must
hold), and the user's matchLabels stay. Returns YAML; empty when there is no selector.
*/}}
{{- define "coordinator-ha.webhookNamespaceSelector" -}}
{{- $selector := deepCopy (.Values.webhook.namespaceSelector | default dict) }}
{{- with .Values.handler.namespaces }}
{{- $watched := dict "key" "kubernetes.io/metadata.name" "operator" "In" "values" . }}
{{- $_ := set $selector "matchExpressions" (append ($selector.matchExpressions | default list) $watched) }}
{{- end }}
{{- with $selector }}
{{- toYaml . }}
{{- end }}
{{- end }}

{{/* The DNS names that the serving certificate must cover, as a list. */}}
{{- define "coordinator-ha.dnsNames" -}}
{{- $names := list }}
{{- range $svc := list (include "coordinator-ha.webhookName" .) (include "coordinator-ha.handlerName" .) }}
{{- $names = concat $names (list $svc (printf "%s.%s" $svc $.Release.Namespace) (printf "%s.%s.svc" $svc $.Release.Namespace) (printf "%s.%s.svc.cluster.local" $svc $.Release.Namespace)) }}
{{- end }}
{{- toJson $names }}
{{- end }}

{{/* Pods ------------------------------------------------------------------------- */}}

{{/*
Scheduling and security settings shared by the webhook and the handler pods.
Usage: include "coordinator-ha.podSpecCommon" (dict "ctx" $ "component" "webhook" "values" .Values.webhook)
*/}}
{{- define "coordinator-ha.podSpecCommon" -}}
{{- with .ctx.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
securityContext:
  {{- toYaml .ctx.Values.podSecurityContext | nindent 2 }}
{{- with .values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.topologySpreadConstraints }}
topologySpreadConstraints:
  {{- toYaml . | nindent 2 }}
{{- end }}
affinity:
  {{- if .values.affinity }}
  {{- toYaml .values.affinity | nindent 2 }}
  {{- else }}
  podAntiAffinity:
    preferredDuringSchedulingIgnoredDuringExecution:
      - weight: 100
        podAffinityTerm:
          topologyKey: kubernetes.io/hostname
          labelSelector:
            matchLabels:
              {{- include "coordinator-ha.componentSelectorLabels" . | nindent 14 }}
  {{- end }}
{{- end }}

{{/*
Labels of the chart's own pods. `coordinator-ha.io/inject: "false"` keeps the webhook away
from them even when webhook.objectSelector is widened to match them: the webhook configuration
requires that label to be anything but "false". This is what rules out a bootstrap
deadlock, in which the webhook (failurePolicy Fail) would have to answer for its own pods.
*/}}
{{- define "coordinator-ha.podLabels" -}}
{{ include "coordinator-ha.componentLabels" . }}
coordinator-ha.io/inject: "false"
{{- with .values.podLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* TLS -------------------------------------------------------------------------- */}}

{{/*
The CA and serving certificate of tls.mode=helm, computed once per render and shared by
every template that needs them (Secrets, webhook configuration, checksums).

Kept across upgrades: the CA is read back from the <release>-ca Secret with `lookup`, so
the caBundle never drifts; the serving certificate is read back from <release>-tls and
reissued (by the same CA) only when its DNS names changed or it is within
tls.helm.renewBeforeDays of expiry. Without a cluster (`helm template`, `--dry-run`),
lookup returns nothing, and fresh ones are generated.

Returns JSON: {caCert, caKey, caNotAfter, cert, key, notAfter, dnsNames}.
*/}}
{{- define "coordinator-ha.helmTls" -}}
{{- if not (hasKey .Values "__coordinatorHaTls") }}
{{- $renewBefore := mul (int .Values.tls.helm.renewBeforeDays) 86400 }}
{{- $horizon := add (now | unixEpoch | int64) $renewBefore }}
{{- $dnsNames := include "coordinator-ha.dnsNames" . | fromJsonArray }}
{{- $fullname := include "coordinator-ha.fullname" . }}
{{- $out := dict "dnsNames" $dnsNames }}

{{- $ca := dict }}
{{- $caSecret := lookup "v1" "Secret" .Release.Namespace (include "coordinator-ha.caSecretName" .) }}
{{- $caData := dig "data" dict $caSecret }}
{{- $caNotAfter := dig "metadata" "annotations" "coordinator-ha.io/not-after" "" $caSecret }}
{{- if and (index $caData "tls.crt") (index $caData "tls.key") $caNotAfter (gt (toDate "2006-01-02T15:04:05Z07:00" $caNotAfter | unixEpoch | int64) $horizon) }}
{{- $ca = buildCustomCert (index $caData "tls.crt") (index $caData "tls.key") }}
{{- $_ := set $out "caNotAfter" $caNotAfter }}
{{- else }}
{{- $ca = genCA (printf "%s-ca" $fullname) (int .Values.tls.helm.caValidityDays) }}
{{- $_ := set $out "caNotAfter" (now | dateModify (printf "+%dh" (mul (int .Values.tls.helm.caValidityDays) 24)) | date "2006-01-02T15:04:05Z07:00") }}
{{- end }}
{{- $_ := set $out "caCert" $ca.Cert }}
{{- $_ := set $out "caKey" $ca.Key }}

{{- $tlsSecret := lookup "v1" "Secret" .Release.Namespace (include "coordinator-ha.tlsSecretName" .) }}
{{- $tlsData := dig "data" dict $tlsSecret }}
{{- $notAfter := dig "metadata" "annotations" "coordinator-ha.io/not-after" "" $tlsSecret }}
{{- $issuedFor := dig "metadata" "annotations" "coordinator-ha.io/dns-names" "" $tlsSecret }}
{{- if and (index $tlsData "tls.crt") (index $tlsData "tls.key") $notAfter (eq $issuedFor (join "," $dnsNames)) (eq (index $tlsData "ca.crt" | default "" | b64dec) $ca.Cert) (gt (toDate "2006-01-02T15:04:05Z07:00" $notAfter | unixEpoch | int64) $horizon) }}
{{- $_ := set $out "cert" (index $tlsData "tls.crt" | b64dec) }}
{{- $_ := set $out "key" (index $tlsData "tls.key" | b64dec) }}
{{- $_ := set $out "notAfter" $notAfter }}
{{- else }}
{{- $cert := genSignedCert (first $dnsNames) nil $dnsNames (int .Values.tls.helm.certValidityDays) $ca }}
{{- $_ := set $out "cert" $cert.Cert }}
{{- $_ := set $out "key" $cert.Key }}
{{- $_ := set $out "notAfter" (now | dateModify (printf "+%dh" (mul (int .Values.tls.helm.certValidityDays) 24)) | date "2006-01-02T15:04:05Z07:00") }}
{{- end }}
{{- $_ := set .Values "__coordinatorHaTls" $out }}
{{- end }}
{{- toJson (get .Values "__coordinatorHaTls") }}
{{- end }}

{{/* The PEM CA that signed the serving certificate, when Helm knows it. */}}
{{- define "coordinator-ha.caPem" -}}
{{- if eq .Values.tls.mode "helm" }}
{{- (include "coordinator-ha.helmTls" . | fromJson).caCert }}
{{- else if eq .Values.tls.mode "secret" }}
{{- include "coordinator-ha.secretModeCaPem" . }}
{{- end }}
{{- end }}

{{- define "coordinator-ha.secretModeCaPem" -}}
{{- $bundle := required "tls.secret.caBundle is required with tls.mode=secret: the base64-encoded PEM of the CA that signed the Secret's certificate (`npm run certs` prints it)" .Values.tls.secret.caBundle }}
{{- $pem := b64dec $bundle }}
{{- if not (contains "-----BEGIN CERTIFICATE-----" $pem) }}
{{- fail "tls.secret.caBundle must be the base64 encoding of a PEM certificate (-----BEGIN CERTIFICATE-----...); encode it with `base64 -w0 ca.crt`" }}
{{- end }}
{{- $pem }}
{{- end }}

{{/*
The volume with tls.crt, tls.key and ca.crt (the CA that sidecars use to verify the
handler). Usage: include "coordinator-ha.tlsVolume" (dict "ctx" $ "withCa" true)
*/}}
{{- define "coordinator-ha.tlsVolume" -}}
- name: tls
  projected:
    sources:
      - secret:
          name: {{ include "coordinator-ha.tlsSecretName" .ctx }}
          items:
            - key: tls.crt
              path: tls.crt
            - key: tls.key
              path: tls.key
            {{- if and .withCa (ne .ctx.Values.tls.mode "secret") }}
            - key: ca.crt
              path: ca.crt
            {{- end }}
      {{- if and .withCa (eq .ctx.Values.tls.mode "secret") }}
      - configMap:
          name: {{ include "coordinator-ha.caConfigMapName" .ctx }}
          items:
            - key: ca.crt
              path: ca.crt
      {{- end }}
{{- end }}

{{/*
Pod annotations that roll the pods when the certificate material that Helm knows changes.
The servers reload their certificate and CA files on change anyway; the rollout covers
nodes that update mounted Secrets late (up to the kubelet's sync period), so that a
renewed certificate is in use when `helm upgrade --wait` returns. A plain upgrade changes
nothing: the material is kept.
*/}}
{{- define "coordinator-ha.tlsChecksums" -}}
{{- if eq .Values.tls.mode "helm" }}
{{- $tls := include "coordinator-ha.helmTls" . | fromJson }}
checksum/tls: {{ printf "%s%s" $tls.caCert $tls.cert | sha256sum }}
{{- else if eq .Values.tls.mode "secret" }}
checksum/tls: {{ include "coordinator-ha.secretModeCaPem" . | sha256sum }}
{{- end }}
{{- end }}
