{{/* The name of every object: the release's, with "nines" in it. */}}
{{- define "nines.fullname" -}}
{{- if contains "nines" .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-nines" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Labels that select nines' pods. app.kubernetes.io/name is also the
Prometheus job (the ServiceMonitor's jobLabel): the rules select job="nines". */}}
{{- define "nines.selectorLabels" -}}
app.kubernetes.io/name: nines
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: server
{{- end -}}

{{- define "nines.labels" -}}
{{ include "nines.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* The configuration files: the values, else the examples in files/. */}}
{{- define "nines.configFiles" -}}
config.yml: |
{{ .Values.config | default (.Files.Get "files/config.yml") | indent 2 }}
catalog.yml: |
{{ .Values.catalog | default (.Files.Get "files/catalog.yml") | indent 2 }}
backstage-catalog-info.yaml: |
{{ .Values.backstageCatalog | default (.Files.Get "files/backstage-catalog-info.yaml") | indent 2 }}
{{- end -}}
