{{/* Release-scoped name: `test-<service>` as the program names releases (max 52 for CronJobs). */}}
{{- define "test-job-runner.fullname" -}}
{{- .Release.Name | trunc 52 | trimSuffix "-" -}}
{{- end -}}

{{/* The install-time Job: a new name per run spec, since a Job's pod template is immutable. */}}
{{- define "test-job-runner.jobName" -}}
{{- printf "%s-%s" (include "test-job-runner.fullname" .) .Values.run.id | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The image reference: pinned by digest, or by tag. */}}
{{- define "test-job-runner.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository .Values.image.tag -}}
{{- end -}}
{{- end -}}

{{- define "test-job-runner.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "test-job-runner.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "test-job-runner.labels" -}}
helm.sh/chart: {{ include "test-job-runner.chart" . }}
{{ include "test-job-runner.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: integration-tests
app.kubernetes.io/part-of: integration-tests
ameide.io/service: {{ .Values.service }}
ameide.io/environment: {{ .Values.environment }}
{{- end -}}

{{/* How each runner is told where to write JUnit (the entrypoint script passes these on). */}}
{{- define "test-job-runner.junitEnv" -}}
- name: INTEGRATION_TEST_JUNIT_PATH
  value: {{ .Values.junit.path | quote }}
{{- if eq .Values.runner "gotestsum" }}
- name: GOTESTSUM_JUNITFILE
  value: {{ .Values.junit.path | quote }}
{{- else if eq .Values.runner "jest" }}
- name: JEST_JUNIT_OUTPUT_DIR
  value: {{ dir .Values.junit.path | quote }}
- name: JEST_JUNIT_OUTPUT_NAME
  value: {{ base .Values.junit.path | quote }}
{{- else if eq .Values.runner "pytest" }}
- name: PYTEST_ADDOPTS
  value: {{ printf "--junitxml=%s" .Values.junit.path | quote }}
{{- end }}
{{- end -}}

{{/* The pod spec shared by the install-time Job and the on-demand CronJob. */}}
{{- define "test-job-runner.podTemplate" -}}
metadata:
  labels:
    {{- include "test-job-runner.labels" . | nindent 4 }}
spec:
  restartPolicy: Never
  {{- with .Values.serviceAccount.name }}
  serviceAccountName: {{ . }}
  {{- end }}
  automountServiceAccountToken: {{ .Values.serviceAccount.automountToken }}
  enableServiceLinks: false
  {{- with .Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  securityContext:
    runAsNonRoot: true
    runAsUser: {{ .Values.securityContext.runAsUser }}
    runAsGroup: {{ .Values.securityContext.runAsGroup }}
    fsGroup: {{ .Values.securityContext.fsGroup }}
    seccompProfile:
      type: RuntimeDefault
  containers:
    - name: tests
      image: {{ include "test-job-runner.image" . | quote }}
      imagePullPolicy: {{ .Values.image.pullPolicy }}
      {{- if .Values.junit.printToLog }}
      # The pod's filesystem is gone once it ends: print the report between markers so a
      # pipeline can take it from `kubectl logs`; the suite's exit status is kept. The markers carry
      # a nonce drawn after the suite exited, so nothing the suite printed can pass for the report.
      command:
        - /bin/sh
        - -c
        - '"$0"; rc=$?; n=$(cat /proc/sys/kernel/random/uuid); echo; echo "--- BEGIN JUNIT $n ---"; cat "$1" 2>/dev/null; echo; echo "--- END JUNIT $n ---"; exit $rc'
        - {{ .Values.entrypoint | quote }}
        - {{ .Values.junit.path | quote }}
      {{- else }}
      command:
        - {{ .Values.entrypoint | quote }}
      {{- end }}
      env:
        - name: INTEGRATION_TEST_TIMEOUT
          value: {{ .Values.timeoutSeconds | quote }}
        - name: HOME
          value: /tmp
        {{- with .Values.requiredEnv }}
        - name: INTEGRATION_TEST_REQUIRED_ENV
          value: {{ join "," . | quote }}
        {{- end }}
        {{- include "test-job-runner.junitEnv" . | nindent 8 }}
        {{- range .Values.env }}
        - name: {{ .name }}
          value: {{ .value | quote }}
        {{- end }}
        {{- range .Values.secretEnv }}
        - name: {{ .name }}
          valueFrom:
            secretKeyRef:
              name: {{ .secretName }}
              key: {{ .key | quote }}
        {{- end }}
      securityContext:
        runAsNonRoot: true
        allowPrivilegeEscalation: false
        readOnlyRootFilesystem: true
        capabilities:
          drop: ["ALL"]
        seccompProfile:
          type: RuntimeDefault
      resources:
        {{- toYaml .Values.resources | nindent 8 }}
      volumeMounts:
        - name: tmp
          mountPath: /tmp
        - name: results
          mountPath: {{ dir .Values.junit.path }}
  volumes:
    - name: tmp
      emptyDir:
        sizeLimit: {{ .Values.scratch.tmpSizeLimit }}
    - name: results
      emptyDir:
        sizeLimit: {{ .Values.scratch.resultsSizeLimit }}
{{- end -}}

{{- define "test-job-runner.jobSpec" -}}
backoffLimit: 0
# A pod the cluster took away (eviction, preemption, node pressure) fails the Job by this rule, so the
# Job's own condition says so (reason PodFailurePolicy) after the pod is gone: `make run` counts such a
# run as the infrastructure's and retries it; a suite's own failure is never retried.
podFailurePolicy:
  rules:
    - action: FailJob
      onPodConditions:
        - type: DisruptionTarget
activeDeadlineSeconds: {{ .Values.activeDeadlineSeconds }}
ttlSecondsAfterFinished: {{ .Values.ttlSecondsAfterFinished }}
template:
  {{- include "test-job-runner.podTemplate" . | nindent 2 }}
{{- end -}}
