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

{{/*
The sinks: block of the agent's configuration, at column 0. Every ConfigMap
(the DaemonSet's and the Logpush receiver's) renders it from here, so both
ship to the same sinks with the same tokens (mounted by
siemship.sinkTokenVolumeMounts). Call with the root context.
*/}}
{{- define "siemship.sinksConfig" -}}
{{- $c := .Values.config -}}
{{- $l := $c.sinks.logscale -}}
sinks:
  logscale:
    # LogScale's ingest URL.
    url: {{ required "config.sinks.logscale.url is required: your LogScale URL, e.g. https://cloud.community.humio.com" $l.url | toJson }}
    # structured (no parser needed) or hec.
    format: {{ $l.format | toJson }}
    # The ingest token: a file from the Secret, never in this ConfigMap.
    token_file: {{ printf "%s/%s" (include "siemship.secretDir" .) .Values.logscale.secretKey | toJson }}
    # Events and uncompressed bytes per request at most.
    batch_events: {{ $l.batch_events | toJson }}
    batch_bytes: {{ $l.batch_bytes | toJson }}
    # A request is sent at most this long after its first event.
    linger: {{ $l.linger | toJson }}
    # Requests in flight.
    concurrency: {{ $l.concurrency | toJson }}
    # One HTTP attempt.
    timeout: {{ $l.timeout | toJson }}
    # gzip or none; gzip level 1 (fastest) to 9.
    compression: {{ $l.compression | toJson }}
    compression_level: {{ $l.compression_level | toJson }}
    # Extra CA certificates (PEM); TLS is always verified.
    ca_file: {{ $l.ca_file | toJson }}
    # Name to verify in the server certificate.
    tls_server_name: {{ $l.tls_server_name | toJson }}
    # Events LogScale rejected for good; empty: <state_dir>/logscale-dead-letter.ndjson.
    dead_letter_file: {{ $l.dead_letter_file | toJson }}
    # First retry delay, largest retry delay, retry period while the token is rejected.
    retry_initial: {{ $l.retry_initial | toJson }}
    retry_max: {{ $l.retry_max | toJson }}
    auth_retry: {{ $l.auth_retry | toJson }}
    # Extra static tags; keep them few and constant.
    tags: {{ $l.tags | toJson }}
    # Events rejected for good: the file is rotated at this size.
    dead_letter_max_bytes: {{ $l.dead_letter_max_bytes | toJson }}
    # An http:// URL to a host other than loopback sends the token in clear text.
    allow_plain_http: {{ $l.allow_plain_http | toJson }}
    # Disk spool (see values.yaml); dir empty: <state_dir>/spool/logscale.
    spool:
      enabled: {{ $l.spool.enabled | toJson }}
      dir: {{ $l.spool.dir | toJson }}
      max_bytes: {{ $l.spool.max_bytes | toJson }}
      when_full: {{ $l.spool.when_full | toJson }}
      mode: {{ $l.spool.mode | toJson }}
      fsync: {{ $l.spool.fsync | toJson }}
{{- range $name, $s := $c.sinks }}
{{- if ne $name "logscale" }}
  {{ $name }}:
    {{- with index $.Values.sinkSecrets $name }}
    token_file: {{ printf "%s/%s" (include "siemship.sinkSecretDir" $name) (.secretKey | default "token") | toJson }}
    {{- end }}
    {{- with index $.Values.sinkTLS $name }}
    {{- $dir := include "siemship.sinkTLSDir" $name }}
    # From the Secret {{ .existingSecret }} (sinkTLS.{{ $name }}).
    ca_file: {{ printf "%s/%s" $dir (include "siemship.sinkTLSKey" (list . "caKey" "ca.crt")) | toJson }}
    {{- if include "siemship.sinkTLSKey" (list . "certKey" "tls.crt") }}
    cert_file: {{ printf "%s/%s" $dir (include "siemship.sinkTLSKey" (list . "certKey" "tls.crt")) | toJson }}
    key_file: {{ printf "%s/%s" $dir (include "siemship.sinkTLSKey" (list . "keyKey" "tls.key")) | toJson }}
    {{- end }}
    {{- end }}
    {{- toYaml $s | nindent 4 }}
{{- end }}
{{- end }}
{{- end -}}

{{/* Directory of the CA and client certificate of sink NAME (sinkTLS). */}}
{{- define "siemship.sinkTLSDir" -}}/etc/siemship/sink-tls/{{ . }}{{- end -}}

{{/*
A key of a sinkTLS entry: (list ENTRY FIELD DEFAULT). An absent field is
DEFAULT; an empty certKey (or keyKey) means no client certificate.
*/}}
{{- define "siemship.sinkTLSKey" -}}
{{- $e := index . 0 -}}
{{- $f := index . 1 -}}
{{- if hasKey $e $f -}}{{- index $e $f -}}{{- else -}}{{- index . 2 -}}{{- end -}}
{{- end -}}

{{/* The mounts of the sinks' token Secrets and TLS Secrets (siemship.sinkTokenVolumes), at column 0. */}}
{{- define "siemship.sinkTokenVolumeMounts" -}}
- name: logscale-token
  mountPath: {{ include "siemship.secretDir" . }}
  readOnly: true
{{- range $name, $sec := .Values.sinkSecrets }}
- name: sink-{{ $name | replace "_" "-" }}-token
  mountPath: {{ include "siemship.sinkSecretDir" $name }}
  readOnly: true
{{- end }}
{{- range $name, $tls := .Values.sinkTLS }}
- name: sink-{{ $name | replace "_" "-" }}-tls
  mountPath: {{ include "siemship.sinkTLSDir" $name }}
  readOnly: true
{{- end }}
{{- end -}}

{{/* The volumes of the sinks' token Secrets, at column 0. */}}
{{- define "siemship.sinkTokenVolumes" -}}
- name: logscale-token
  secret:
    secretName: {{ include "siemship.secretName" . }}
    items:
      - key: {{ .Values.logscale.secretKey }}
        path: {{ .Values.logscale.secretKey }}
{{- range $name, $sec := .Values.sinkSecrets }}
- name: sink-{{ $name | replace "_" "-" }}-token
  secret:
    secretName: {{ include "siemship.sinkSecretName" (list $ $name) }}
    items:
      - key: {{ $sec.secretKey | default "token" }}
        path: {{ $sec.secretKey | default "token" }}
{{- end }}
{{- range $name, $tls := .Values.sinkTLS }}
{{- $s := index $.Values.config.sinks $name }}
{{- if not $s }}
{{- fail (printf "sinkTLS.%s: there is no sink %s in config.sinks" $name $name) }}
{{- end }}
{{- if ne (toString $s.type) "syslog" }}
{{- fail (printf "sinkTLS.%s: only syslog sinks take a client certificate; config.sinks.%s.type is %q" $name $name (toString $s.type)) }}
{{- end }}
- name: sink-{{ $name | replace "_" "-" }}-tls
  secret:
    secretName: {{ $tls.existingSecret }}
    items:
      - key: {{ include "siemship.sinkTLSKey" (list $tls "caKey" "ca.crt") }}
        path: {{ include "siemship.sinkTLSKey" (list $tls "caKey" "ca.crt") }}
      {{- with include "siemship.sinkTLSKey" (list $tls "certKey" "tls.crt") }}
      - key: {{ . }}
        path: {{ . }}
      - key: {{ include "siemship.sinkTLSKey" (list $tls "keyKey" "tls.key") }}
        path: {{ include "siemship.sinkTLSKey" (list $tls "keyKey" "tls.key") }}
      {{- end }}
{{- end }}
{{- end -}}

{{/* The Logpush receiver: its name, labels and paths. Its pods carry their
own app.kubernetes.io/name, so the DaemonSet's selector never matches them. */}}
{{- define "siemship.logpushName" -}}
{{- printf "%s-logpush" (include "siemship.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "siemship.logpushSelectorLabels" -}}
app.kubernetes.io/name: {{ printf "%s-logpush" (include "siemship.name" .) | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "siemship.logpushLabels" -}}
{{ include "siemship.logpushSelectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: logpush-receiver
app.kubernetes.io/part-of: siemship
{{- end -}}

{{- define "siemship.logpushSecretName" -}}
{{- if .Values.logpush.auth.createSecret -}}
{{- printf "%s-auth" (include "siemship.logpushName" .) | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- required "logpush.auth.existingSecret is required (or createSecret: true with secret)" .Values.logpush.auth.existingSecret -}}
{{- end -}}
{{- end -}}

{{- define "siemship.logpushTLSDir" -}}/etc/siemship/logpush/tls{{- end -}}
{{- define "siemship.logpushAuthDir" -}}/etc/siemship/logpush/auth{{- end -}}

{{/* The Falcon Deployment (falcon_stream and/or falcon_api sources): its
name, labels, ServiceAccount, Secret, paths and the names of the Lease and
the offsets ConfigMap (the
agent's leader_election.lease_name and offsets_configmap, and the Role's
resourceNames). Its pods carry their own app.kubernetes.io/name. */}}
{{- define "siemship.falconName" -}}
{{- printf "%s-falcon" (include "siemship.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "siemship.falconSelectorLabels" -}}
app.kubernetes.io/name: {{ printf "%s-falcon" (include "siemship.name" .) | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "siemship.falconLabels" -}}
{{ include "siemship.falconSelectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: falcon-stream
app.kubernetes.io/part-of: siemship
{{- end -}}

{{- define "siemship.falconLeaseName" -}}
{{- include "siemship.falconName" . -}}
{{- end -}}

{{- define "siemship.falconOffsetsName" -}}
{{- printf "%s-falcon-offsets" (include "siemship.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "siemship.falconSecretName" -}}
{{- if .Values.falcon.credentials.createSecret -}}
{{- printf "%s-api" (include "siemship.falconName" .) | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- required "falcon.credentials.existingSecret is required (or createSecret: true with clientId and clientSecret)" .Values.falcon.credentials.existingSecret -}}
{{- end -}}
{{- end -}}

{{- define "siemship.falconCredentialsDir" -}}/etc/siemship/falcon{{- end -}}

{{/* The falcon_api source's own Secret (falcon.api.credentials.existingSecret) is mounted here. */}}
{{- define "siemship.falconAPICredentialsDir" -}}/etc/siemship/falcon-api{{- end -}}

{{/*
A key of the falcon_api client in its Secret: (list $ "clientIdKey") or
(list $ "clientSecretKey"); empty falls back to falcon.credentials' key.
*/}}
{{- define "siemship.falconAPIKey" -}}
{{- $root := index . 0 -}}
{{- $field := index . 1 -}}
{{- index $root.Values.falcon.api.credentials $field | default (index $root.Values.falcon.credentials $field) -}}
{{- end -}}

{{/* The directory of the falcon_api client's files: its own Secret's, else falcon.credentials'. */}}
{{- define "siemship.falconAPIDir" -}}
{{- if .Values.falcon.api.credentials.existingSecret -}}
{{- include "siemship.falconAPICredentialsDir" . -}}
{{- else -}}
{{- include "siemship.falconCredentialsDir" . -}}
{{- end -}}
{{- end -}}

{{/*
The keys of falcon.credentials' Secret that the pods mount, one a line:
the stream's when it runs, the falcon_api client's when it shares that
Secret; each once. Empty when no source reads the Secret.
*/}}
{{- define "siemship.falconCredentialKeys" -}}
{{- $f := .Values.falcon -}}
{{- $keys := list -}}
{{- if $f.stream.enabled -}}
{{- $keys = concat $keys (list $f.credentials.clientIdKey $f.credentials.clientSecretKey) -}}
{{- end -}}
{{- if and $f.api.enabled (not $f.api.credentials.existingSecret) -}}
{{- $keys = concat $keys (list (include "siemship.falconAPIKey" (list . "clientIdKey")) (include "siemship.falconAPIKey" (list . "clientSecretKey"))) -}}
{{- end -}}
{{- $keys | uniq | join "\n" -}}
{{- end -}}
