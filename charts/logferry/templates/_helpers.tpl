{{/*
Named templates of the logferry chart.

Templates meant for other charts (see README "Sidecar mode"):
  logferry.sidecar.container   one container (YAML list item) running logferry in files mode
  logferry.sidecar.volumes     the volumes that container needs (list items)
  logferry.sidecar.config      the files-mode logferry.yaml (what the sidecar ConfigMap holds)
Each takes a context with `.Values` (this chart's values, e.g. `.Values.logferry` of a parent
chart), `.Release` and `.Chart`; from a parent chart:
  {{ include "logferry.sidecar.container" (dict "Values" .Values.logferry "Release" .Release "Chart" .Subcharts.logferry.Chart) }}
*/}}

{{- define "logferry.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "logferry.fullname" -}}
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

{{- define "logferry.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "logferry.selectorLabels" -}}
app.kubernetes.io/name: {{ include "logferry.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "logferry.labels" -}}
helm.sh/chart: {{ include "logferry.chart" . }}
{{ include "logferry.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: logferry
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "logferry.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "logferry.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "logferry.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* Mount path of the projected volume with Elasticsearch credentials and certificates. */}}
{{- define "logferry.secretsPath" -}}/var/run/secrets/logferry{{- end }}

{{/* True ("true") when any Elasticsearch Secret is configured. */}}
{{- define "logferry.hasSecrets" -}}
{{- $es := .Values.elasticsearch }}
{{- if and $es.enabled (or $es.auth.basic.existingSecret $es.auth.apiKey.existingSecret $es.auth.bearerToken.existingSecret $es.tls.ca.existingSecret $es.tls.clientCert.existingSecret) }}true{{ end }}
{{- end }}

{{/*
Projected volume with every configured Elasticsearch Secret key, each as a file.
Files: basic/password, api-key/api_key, bearer/token, tls/ca.crt, tls/tls.crt, tls/tls.key.
Takes (dict "Values" .Values "defaultMode" "0400"): 0400 for the root DaemonSet; the non-root
sidecar needs 0444 (the files stay private to the pod's logferry container: only it mounts them).
*/}}
{{- define "logferry.secretsVolume" -}}
{{- $es := .Values.elasticsearch -}}
- name: elasticsearch-credentials
  projected:
    defaultMode: {{ .defaultMode }}
    sources:
      {{- with $es.auth.basic.existingSecret }}
      - secret:
          name: {{ . }}
          items:
            - key: {{ $es.auth.basic.passwordKey }}
              path: basic/password
      {{- end }}
      {{- with $es.auth.apiKey.existingSecret }}
      - secret:
          name: {{ . }}
          items:
            - key: {{ $es.auth.apiKey.key }}
              path: api-key/api_key
      {{- end }}
      {{- with $es.auth.bearerToken.existingSecret }}
      - secret:
          name: {{ . }}
          items:
            - key: {{ $es.auth.bearerToken.key }}
              path: bearer/token
      {{- end }}
      {{- with $es.tls.ca.existingSecret }}
      - secret:
          name: {{ . }}
          items:
            - key: {{ $es.tls.ca.key }}
              path: tls/ca.crt
      {{- end }}
      {{- with $es.tls.clientCert.existingSecret }}
      - secret:
          name: {{ . }}
          items:
            - key: {{ $es.tls.clientCert.certKey }}
              path: tls/tls.crt
            - key: {{ $es.tls.clientCert.keyKey }}
              path: tls/tls.key
      {{- end }}
{{- end }}

{{/* Environment shared by the DaemonSet container and the sidecar. */}}
{{- define "logferry.env" -}}
- name: NODE_NAME
  valueFrom:
    fieldRef:
      fieldPath: spec.nodeName
{{- /* Files mode (sidecar) hashes the pod's identity into document ids. */}}
- name: POD_UID
  valueFrom:
    fieldRef:
      fieldPath: metadata.uid
{{- $basic := .Values.elasticsearch.auth.basic }}
{{- if and .Values.elasticsearch.enabled $basic.existingSecret (not $basic.username) }}
- name: LOGFERRY_ES_USERNAME
  valueFrom:
    secretKeyRef:
      name: {{ $basic.existingSecret }}
      key: {{ $basic.usernameKey }}
{{- end }}
{{- end }}

{{/*
The `elasticsearch` config section built from .Values.elasticsearch (a dict), or an empty dict when
Elasticsearch is disabled. Credentials are only ever file paths into the projected Secret volume.
*/}}
{{- define "logferry.elasticsearchConfig" -}}
{{- $es := .Values.elasticsearch }}
{{- $out := dict }}
{{- if $es.enabled }}
{{- $dir := include "logferry.secretsPath" . }}
{{- if $es.cloudId }}
{{- $_ := set $out "cloud_id" $es.cloudId }}
{{- else }}
{{- $_ := set $out "endpoints" $es.endpoints }}
{{- end }}
{{- $basic := $es.auth.basic.existingSecret }}
{{- $apiKey := $es.auth.apiKey.existingSecret }}
{{- $bearer := $es.auth.bearerToken.existingSecret }}
{{- if gt (len (compact (list $basic $apiKey $bearer))) 1 }}
{{- fail "elasticsearch.auth: set only one of basic.existingSecret, apiKey.existingSecret, bearerToken.existingSecret" }}
{{- end }}
{{- if $basic }}
{{- $_ := set $out "auth" (dict "username" (default "${LOGFERRY_ES_USERNAME}" $es.auth.basic.username) "password_file" (printf "%s/basic/password" $dir)) }}
{{- else if $apiKey }}
{{- $_ := set $out "auth" (dict "api_key_file" (printf "%s/api-key/api_key" $dir)) }}
{{- else if $bearer }}
{{- $_ := set $out "auth" (dict "bearer_token_file" (printf "%s/bearer/token" $dir)) }}
{{- end }}
{{- $tls := dict }}
{{- if $es.tls.ca.existingSecret }}
{{- $_ := set $tls "ca_file" (printf "%s/tls/ca.crt" $dir) }}
{{- end }}
{{- if $es.tls.clientCert.existingSecret }}
{{- $_ := set $tls "cert_file" (printf "%s/tls/tls.crt" $dir) }}
{{- $_ := set $tls "key_file" (printf "%s/tls/tls.key" $dir) }}
{{- end }}
{{- if $es.tls.insecureSkipVerify }}
{{- $_ := set $tls "insecure_skip_verify" true }}
{{- end }}
{{- if $tls }}
{{- $_ := set $out "tls" $tls }}
{{- end }}
{{- end }}
{{- toYaml $out }}
{{- end }}

{{/*
Daemon (DaemonSet) logferry.yaml: chart defaults, then .Values.config merged over them.
*/}}
{{- define "logferry.config" -}}
{{- $varLog := .Values.hostPaths.varLog | trimSuffix "/" }}
{{- $defaults := dict
  "node_name" "${NODE_NAME}"
  "data_dir" .Values.hostPaths.dataDir
  "source" (dict "mode" "kubernetes" "pods_dir" (printf "%s/pods" $varLog) "containers_dir" (printf "%s/containers" $varLog))
  "kubernetes" (dict "enabled" true)
  "server" (dict "listen" (printf "0.0.0.0:%d" (int .Values.port)))
  "shutdown" (dict "drain_timeout" "20s")
}}
{{- if .Values.hostPaths.dockerContainers.enabled }}
{{- $_ := set $defaults.source "docker_containers_dir" .Values.hostPaths.dockerContainers.path }}
{{- end }}
{{- $es := include "logferry.elasticsearchConfig" . | fromYaml }}
{{- if .Values.aggregator.enabled }}
{{- $n := .Values.aggregator.nats }}
{{- $_ := set $defaults "nats" (dict "servers" $n.servers "subject" $n.subject "stream" (dict "name" $n.stream "subjects" (list "logs.>"))) }}
{{- else if $es }}
{{- $_ := set $defaults "elasticsearch" $es }}
{{- end }}
{{- $config := mergeOverwrite (deepCopy $defaults) (deepCopy (default dict .Values.config)) }}
{{- include "logferry.checkConfig" (dict "config" $config "root" .) }}
{{- toYaml $config }}
{{- end }}

{{/*
Sidecar (files mode) logferry.yaml: sidecar defaults, then .Values.sidecar.config merged over them.
*/}}
{{- define "logferry.sidecar.config" -}}
{{- $defaults := dict
  "node_name" "${NODE_NAME}"
  "data_dir" "/var/lib/logferry"
  "source" (dict "mode" "files" "paths" .Values.sidecar.paths "read_from" "beginning")
  "kubernetes" (dict "enabled" false)
  "server" (dict "listen" (printf "127.0.0.1:%d" (int .Values.port)))
  "shutdown" (dict "drain_timeout" "20s")
}}
{{- $es := include "logferry.elasticsearchConfig" . | fromYaml }}
{{- if $es }}
{{- $_ := set $defaults "elasticsearch" $es }}
{{- end }}
{{- if include "logferry.sidecar.airflowTask" . }}
{{- $task := dict
  "dag_id" "${AIRFLOW_DAG_ID:-}"
  "task_id" "${AIRFLOW_TASK_ID:-}"
  "run_id" "${AIRFLOW_RUN_ID:-}"
  "try_number" "${AIRFLOW_TRY_NUMBER:-}"
  "map_index" "${AIRFLOW_MAP_INDEX:-}"
}}
{{- $_ := set $defaults "airflow" (dict "task" $task) }}
{{- end }}
{{- $config := mergeOverwrite (deepCopy $defaults) (deepCopy (default dict .Values.sidecar.config)) }}
{{- /* Variables expand in the text before YAML parsing: quote them (a run id holds ':' and '+'). */}}
{{- $text := toYaml $config }}
{{- range $v := list "DAG_ID" "TASK_ID" "RUN_ID" "TRY_NUMBER" "MAP_INDEX" }}
{{- $ref := printf "${AIRFLOW_%s:-}" $v }}
{{- $text = replace (printf ": %s\n" $ref) (printf ": '%s'\n" $ref) $text }}
{{- end }}
{{- $text }}
{{- end }}

{{/*
"true" when the sidecar ships Airflow task logs (sidecar.config.airflow.enabled) and its
config names no task itself: then the config's airflow.task comes from the AIRFLOW_* variables
that logferry.sidecar.container sets from the worker pod's annotations (downward API).
*/}}
{{- define "logferry.sidecar.airflowTask" -}}
{{- $af := (default dict .Values.sidecar.config).airflow | default dict }}
{{- if and $af.enabled (not $af.task) }}true{{ end }}
{{- end }}

{{/*
Duration string ("20s", "1m30s", "500ms", "1h") to whole seconds, rounded up. Fails on other input.
*/}}
{{- define "logferry.durationSeconds" -}}
{{- $s := toString . }}
{{- if not (regexMatch "^([0-9]+(ms|s|m|h))+$" $s) }}
{{- fail (printf "shutdown.drain_timeout %q: expected a duration such as 20s, 1m30s or 500ms" $s) }}
{{- end }}
{{- $ms := 0 }}
{{- range regexFindAll "[0-9]+(ms|s|m|h)" $s -1 }}
{{- $n := regexFind "^[0-9]+" . | int }}
{{- $unit := trimPrefix (regexFind "^[0-9]+" .) . }}
{{- if eq $unit "ms" }}{{ $ms = add $ms $n }}
{{- else if eq $unit "s" }}{{ $ms = add $ms (mul $n 1000) }}
{{- else if eq $unit "m" }}{{ $ms = add $ms (mul $n 60000) }}
{{- else }}{{ $ms = add $ms (mul $n 3600000) }}
{{- end }}
{{- end }}
{{- div (add $ms 999) 1000 }}
{{- end }}

{{/* Fails when terminationGracePeriodSeconds does not exceed shutdown.drain_timeout. */}}
{{- define "logferry.checkConfig" -}}
{{- $drain := 20 }}
{{- with .config.shutdown }}{{ with .drain_timeout }}
{{- $drain = include "logferry.durationSeconds" . | int }}
{{- end }}{{ end }}
{{- $grace := int .root.Values.terminationGracePeriodSeconds }}
{{- if le $grace $drain }}
{{- fail (printf "terminationGracePeriodSeconds (%d) must be larger than config.shutdown.drain_timeout (%ds): Kubernetes would SIGKILL logferry before it flushed and wrote its checkpoints" $grace $drain) }}
{{- end }}
{{- end }}

{{/* Sidecar volumes (list items): config, pod-local data dir, credentials. Not the logs emptyDir. */}}
{{- define "logferry.sidecar.volumes" -}}
- name: logferry-config
  configMap:
    name: {{ include "logferry.fullname" . }}-sidecar
- name: logferry-data
  emptyDir:
    sizeLimit: 64Mi
{{- if include "logferry.hasSecrets" . }}
{{ include "logferry.secretsVolume" (dict "Values" .Values "defaultMode" "0444") }}
{{- end }}
{{- end }}

{{/*
The sidecar container (a list item). It reads the shared logs emptyDir (`sidecar.logsVolume`,
mounted read-only at `sidecar.logsPath`), ships in files mode, and exits after draining when the
main container POSTs http://127.0.0.1:<port>/quitquitquit (or on SIGTERM). The admin server listens
on 127.0.0.1 only, so nothing outside the pod can stop it; hence no port and no probe.
*/}}
{{- define "logferry.sidecar.container" -}}
- name: logferry
  image: {{ include "logferry.image" . }}
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  args: ["run", "--config", "/etc/logferry/logferry.yaml"]
  env:
    {{- include "logferry.env" . | nindent 4 }}
    {{- if include "logferry.sidecar.airflowTask" . }}
    {{- /* The task of the worker pod, from the annotations Airflow's KubernetesExecutor writes
    (raw values; the labels are sanitised). An absent annotation gives "" (map_index: -1). */}}
    {{- range $k := list "dag_id" "task_id" "run_id" "try_number" "map_index" }}
    - name: AIRFLOW_{{ upper $k }}
      valueFrom:
        fieldRef:
          fieldPath: metadata.annotations['{{ $k }}']
    {{- end }}
    {{- end }}
  volumeMounts:
    - name: logferry-config
      mountPath: /etc/logferry
      readOnly: true
    - name: logferry-data
      mountPath: /var/lib/logferry
    - name: {{ .Values.sidecar.logsVolume }}
      mountPath: {{ .Values.sidecar.logsPath }}
      readOnly: true
    {{- if include "logferry.hasSecrets" . }}
    - name: elasticsearch-credentials
      mountPath: {{ include "logferry.secretsPath" . }}
      readOnly: true
    {{- end }}
  resources:
    {{- toYaml .Values.sidecar.resources | nindent 4 }}
  securityContext:
    {{- toYaml .Values.sidecar.securityContext | nindent 4 }}
{{- end }}

{{/*
Aggregator logferry.yaml: a durable JetStream consumer into Elasticsearch, then
.Values.aggregator.config merged over it.
*/}}
{{- define "logferry.aggregator.config" -}}
{{- $n := .Values.aggregator.nats }}
{{- $defaults := dict
  "data_dir" "/var/lib/logferry"
  "source" (dict "mode" "nats" "nats" (dict "servers" $n.servers "jetstream" (dict "stream" $n.stream "durable" $n.durable "ack_wait" $n.ackWait) "payload" "document"))
  "server" (dict "listen" (printf "0.0.0.0:%d" (int .Values.port)))
  "shutdown" (dict "drain_timeout" "20s")
}}
{{- $es := include "logferry.elasticsearchConfig" . | fromYaml }}
{{- if $es }}
{{- $_ := set $defaults "elasticsearch" $es }}
{{- end }}
{{- toYaml (mergeOverwrite (deepCopy $defaults) (deepCopy (default dict .Values.aggregator.config))) }}
{{- end }}
