{{/* Names and labels shared by every template. */}}

{{- define "saga-shop.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* One service's object name: <release>-saga-shop-<service>. Call with (list $ "inventory"). */}}
{{- define "saga-shop.serviceName" -}}
{{- $root := index . 0 -}}
{{- printf "%s-%s" (include "saga-shop.fullname" $root) (index . 1) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "saga-shop.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: saga-shop
{{- end -}}

{{/* Selector of one service's pods. Call with (list $ "inventory"). */}}
{{- define "saga-shop.selectorLabels" -}}
{{- $root := index . 0 -}}
app.kubernetes.io/name: {{ $root.Chart.Name }}
app.kubernetes.io/instance: {{ $root.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{/* A service's values: `defaults` overlaid with services.<name>. Call with (list $ "inventory"). */}}
{{- define "saga-shop.serviceValues" -}}
{{- $root := index . 0 -}}
{{- $own := index $root.Values.services (index . 1) -}}
{{- toYaml (mergeOverwrite (deepCopy $root.Values.defaults) (deepCopy $own)) -}}
{{- end -}}

{{- define "saga-shop.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{- define "saga-shop.secretName" -}}
{{- .Values.secrets.existingSecret | default (printf "%s-credentials" (include "saga-shop.fullname" .)) -}}
{{- end -}}

{{/* env entries reading credentials from the Secret. Call with (list $ (list "NAME" ...)). */}}
{{- define "saga-shop.secretEnv" -}}
{{- $root := index . 0 -}}
{{- range $name := index . 1 }}
- name: {{ $name }}
  valueFrom:
    secretKeyRef:
      name: {{ include "saga-shop.secretName" $root }}
      key: {{ $name }}
      {{- if has $name $root.Values.optionalSecretEnv }}
      optional: true
      {{- end }}
{{- end }}
{{- end -}}

{{/* Pod-level settings shared by the Deployments and the migration Job. */}}
{{- define "saga-shop.podCommon" -}}
automountServiceAccountToken: false
{{- with .Values.serviceAccountName }}
serviceAccountName: {{ . }}
{{- end }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- end -}}
