{{- define "mlflow.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}{{ .Release.Name | trunc 63 | trimSuffix "-" }}{{- else if hasPrefix .Release.Name .Chart.Name -}}{{ .Chart.Name | trunc 63 | trimSuffix "-" }}{{- else -}}{{ printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" }}{{- end -}}
{{- end -}}
{{- define "mlflow.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: melancia
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}
{{- define "mlflow.selector" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}
{{- define "mlflow.allowedHosts" -}}
{{- $name := include "mlflow.fullname" . -}}
{{- /* MLflow's own defaults: loopback and the private address ranges (pod and Service IPs) */ -}}
{{- $hosts := list "localhost" "localhost:*" "127.0.0.1" "127.0.0.1:*" "10.*" "192.168.*" -}}
{{- range $i := until 16 -}}{{- $hosts = append $hosts (printf "172.%d.*" (add 16 $i)) -}}{{- end -}}
{{- range $host := list $name (printf "%s.%s" $name .Release.Namespace) (printf "%s.%s.svc" $name .Release.Namespace) (printf "%s.%s.svc.cluster.local" $name .Release.Namespace) -}}
{{- $hosts = append (append $hosts $host) (printf "%s:*" $host) -}}
{{- end -}}
{{- join "," (concat $hosts .Values.allowedHosts) -}}
{{- end -}}
