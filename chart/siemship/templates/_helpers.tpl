{{/* Chart name, overridable. */}}
{{- define "siemship.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Full name: the release name when it already contains the chart name. */}}
{{- define "siemship.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "siemship.selectorLabels" -}}
app.kubernetes.io/name: {{ include "siemship.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "siemship.labels" -}}
{{ include "siemship.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: agent
app.kubernetes.io/part-of: siemship
{{- end -}}

{{- define "siemship.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "siemship.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "siemship.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* The node directory Tetragon exports to, mounted at the same path. */}}
{{- define "siemship.exportDirectory" -}}
{{- if .Values.tetragon.exportDirectory -}}
{{- .Values.tetragon.exportDirectory | trimSuffix "/" -}}
{{- else if .Values.tetragon.newExportDirectory -}}
/var/log/tetragon
{{- else -}}
/var/run/cilium/tetragon
{{- end -}}
{{- end -}}

{{- define "siemship.secretName" -}}
{{- if .Values.logscale.createSecret -}}
{{- printf "%s-logscale" (include "siemship.fullname" .) -}}
{{- else -}}
{{- .Values.logscale.existingSecret -}}
{{- end -}}
{{- end -}}

{{/* Paths inside the container. */}}
{{- define "siemship.configDir" -}}/etc/siemship/config{{- end -}}
{{- define "siemship.secretDir" -}}/etc/siemship/secret{{- end -}}
{{- define "siemship.stateDir" -}}/var/lib/siemship{{- end -}}

{{/* Directory of the token of sink NAME (not logscale). */}}
{{- define "siemship.sinkSecretDir" -}}/etc/siemship/sinks/{{ . }}{{- end -}}

{{/* Secret of sink NAME: the chart's own when createSecret, else existingSecret. Call with (list $ NAME). */}}
{{- define "siemship.sinkSecretName" -}}
{{- $root := index . 0 -}}
{{- $name := index . 1 -}}
{{- $sec := index $root.Values.sinkSecrets $name -}}
{{- if $sec.createSecret -}}
{{- printf "%s-%s" (include "siemship.fullname" $root) ($name | replace "_" "-") -}}
{{- else -}}
{{- required (printf "sinkSecrets.%s.existingSecret is required (or createSecret: true with token)" $name) $sec.existingSecret -}}
{{- end -}}
{{- end -}}
