# Variables of the monitoring layer (monitoring.tf): which Argo version's metric names the alert
# policies and the dashboard use, where the cluster is, and the thresholds. alert_email, project_id,
# region and name_prefix are defined in variables.tf.

# --- Argo and the cluster -------------------------------------------------------------------------

variable "argo_version_family" {
  description = "Argo Workflows metric generation the policies and dashboard query: \"3.5\" for controllers 3.4.x and 3.5.x (prometheus client_golang names such as argo_workflows_count, argo_workflows_queue_depth_count, log_messages), \"3.6\" for 3.6.x and 3.7.x (OpenTelemetry names such as argo_workflows_gauge, argo_workflows_total_count, argo_workflows_is_leader). The custom alert_relay_* metrics are the same in both."
  type        = string
  default     = "3.6"

  validation {
    condition     = contains(["3.5", "3.6"], var.argo_version_family)
    error_message = "argo_version_family must be \"3.5\" (Argo 3.4/3.5) or \"3.6\" (Argo 3.6/3.7)."
  }
}

variable "argo_namespace" {
  description = "Kubernetes namespace of the workflow-controller and argo-server Deployments, and of the PodMonitoring resources in argo/podmonitoring.yaml (Managed Prometheus labels their metrics namespace=<this>)."
  type        = string
  default     = "argo"

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", var.argo_namespace))
    error_message = "argo_namespace must be a Kubernetes namespace name."
  }
}

variable "workflow_namespaces" {
  description = "Namespaces where workflow pods run: the workflow and step resource-usage panels and the running-step condition look at containers named main there."
  type        = list(string)
  default     = ["argo"]

  validation {
    condition     = length(var.workflow_namespaces) > 0 && alltrue([for ns in var.workflow_namespaces : can(regex("^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", ns))])
    error_message = "workflow_namespaces must be a non-empty list of Kubernetes namespace names."
  }
}

variable "cluster_name" {
  description = "Name of the GKE cluster running Argo. Managed Prometheus labels its metrics cluster=<name>; GKE system metrics carry cluster_name=<name>. Every query filters on it, so another cluster in the project never trips these policies."
  type        = string

  validation {
    condition     = can(regex("^[a-z]([-a-z0-9]{0,38}[a-z0-9])?$", var.cluster_name))
    error_message = "cluster_name must be a GKE cluster name (lowercase letters, digits, hyphens; at most 40 characters)."
  }
}

variable "cluster_location" {
  description = "Location of the GKE cluster: a zone (europe-west1-b) or a region (europe-west1). Both Managed Prometheus and GKE system metrics carry it as the location label."
  type        = string

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9](-[a-z])?$", var.cluster_location))
    error_message = "cluster_location must be a zone such as europe-west1-b or a region such as europe-west1."
  }
}

variable "argo_controller_container" {
  description = "Container name of the workflow controller in its Deployment: workflow-controller in the upstream install manifests, controller in the argo-workflows Helm chart."
  type        = string
  default     = "workflow-controller"

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", var.argo_controller_container))
    error_message = "argo_controller_container must be a Kubernetes container name."
  }
}

variable "argo_server_container" {
  description = "Container name of the Argo Server in its Deployment (argo-server in the upstream manifests and in the Helm chart)."
  type        = string
  default     = "argo-server"

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", var.argo_server_container))
    error_message = "argo_server_container must be a Kubernetes container name."
  }
}

# --- Route hints on every Argo policy (incident.policy_user_labels, read by the relay's routes) ---

variable "alert_team" {
  description = "Value of the team user label on every policy: the relay's routes can match it (team=\"...\")."
  type        = string
  default     = "ml-platform"

  validation {
    condition     = can(regex("^[a-z][a-z0-9_-]{0,62}$", var.alert_team))
    error_message = "alert_team must be a valid label value: lowercase letters, digits, _ or -, starting with a letter, at most 63 characters."
  }
}

variable "alert_env" {
  description = "Value of the env user label on every policy (prod, staging, ...): the bundled routes send env=\"prod\" + severity=\"critical\" to #platform as well."
  type        = string
  default     = "prod"

  validation {
    condition     = can(regex("^[a-z][a-z0-9_-]{0,62}$", var.alert_env))
    error_message = "alert_env must be a valid label value: lowercase letters, digits, _ or -, starting with a letter, at most 63 characters."
  }
}

# --- Thresholds -----------------------------------------------------------------------------------

variable "workflow_failures_threshold" {
  description = "The workflow-failures policy fires when more than this many workflows failed (Failed or Error) within 10 minutes. 0: every failure. Each failure also reaches Slack through the exit handler; this policy is the safety net for workflows whose exit handler did not run."
  type        = number
  default     = 0

  validation {
    condition     = var.workflow_failures_threshold >= 0 && floor(var.workflow_failures_threshold) == var.workflow_failures_threshold
    error_message = "workflow_failures_threshold must be a whole number >= 0."
  }
}

variable "workflow_duration_p95_seconds" {
  description = "The workflow-duration policy fires when the 95th percentile of a pipeline's run durations (custom metric alert_relay_workflow_duration_seconds, per workflow_template) over workflow_duration_window_hours exceeds this many seconds."
  type        = number
  default     = 3600

  validation {
    condition     = var.workflow_duration_p95_seconds > 0
    error_message = "workflow_duration_p95_seconds must be positive."
  }
}

variable "workflow_duration_window_hours" {
  description = "Window, in hours, over which the workflow-duration policy computes the 95th percentile."
  type        = number
  default     = 24

  validation {
    condition     = var.workflow_duration_window_hours >= 1 && var.workflow_duration_window_hours <= 720 && floor(var.workflow_duration_window_hours) == var.workflow_duration_window_hours
    error_message = "workflow_duration_window_hours must be a whole number from 1 to 720."
  }
}

variable "step_duration_threshold_seconds" {
  description = "A step \"takes so long that users notice\" beyond this many seconds: a completed step (custom metric alert_relay_step_duration_seconds) or a step container still running (GKE container uptime of containers named main)."
  type        = number
  default     = 1800

  validation {
    condition     = var.step_duration_threshold_seconds >= 60
    error_message = "step_duration_threshold_seconds must be at least 60."
  }
}

variable "queue_depth_threshold" {
  description = "The queue-depth policy fires when the controller's workflow_queue holds more than this many items for 10 minutes (the controller cannot keep up)."
  type        = number
  default     = 20

  validation {
    condition     = var.queue_depth_threshold >= 0
    error_message = "queue_depth_threshold must be >= 0."
  }
}

variable "pending_pods_minutes" {
  description = "The pending-pods policy fires when the controller has reported at least one Pending workflow pod continuously for this many minutes (no capacity, quota, image pull or scheduling problems)."
  type        = number
  default     = 15

  validation {
    condition     = var.pending_pods_minutes >= 1 && var.pending_pods_minutes <= 1380 && floor(var.pending_pods_minutes) == var.pending_pods_minutes
    error_message = "pending_pods_minutes must be a whole number from 1 to 1380 (an alert condition lasts at most 23 hours)."
  }
}

variable "operation_duration_p95_seconds" {
  description = "The operation-duration policy fires when the 95th percentile of the controller's workflow operation duration (argo_workflows_operation_duration_seconds; buckets 5..30 s) exceeds this many seconds for 15 minutes."
  type        = number
  default     = 15

  validation {
    condition     = var.operation_duration_p95_seconds > 0 && var.operation_duration_p95_seconds <= 30
    error_message = "operation_duration_p95_seconds must be in (0, 30]: the histogram's largest finite bucket is 30 s."
  }
}

variable "argo_server_errors_threshold" {
  description = "The Argo Server policy fires when it answered more than this many API calls with a server-side gRPC error (Unknown, Internal, Unavailable, DataLoss) within 10 minutes."
  type        = number
  default     = 5

  validation {
    condition     = var.argo_server_errors_threshold >= 0
    error_message = "argo_server_errors_threshold must be >= 0."
  }
}

variable "expected_workflows" {
  description = "Pipelines that must complete at least once every did_not_run_lookback_hours: values of the workflow_template label of the custom metrics (a CronWorkflow's or WorkflowTemplate's name, e.g. asr-nightly). One \"did not run\" policy each."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for w in var.expected_workflows : can(regex("^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$", w))])
    error_message = "expected_workflows must hold Kubernetes object names."
  }
}

variable "did_not_run_lookback_hours" {
  description = "\"Did not run\" window, in hours: an expected pipeline with no completion (any status) in this window raises an alert. Leave slack over the schedule (26 for a nightly job)."
  type        = number
  default     = 26

  validation {
    condition     = var.did_not_run_lookback_hours >= 1 && var.did_not_run_lookback_hours <= 24 * 35 && floor(var.did_not_run_lookback_hours) == var.did_not_run_lookback_hours
    error_message = "did_not_run_lookback_hours must be a whole number from 1 to 840 (35 days)."
  }
}

variable "alert_when_no_workflow_completes" {
  description = "Also alert when no workflow at all completed in the cluster within did_not_run_lookback_hours (a stuck controller, a broken cron, a paused cluster)."
  type        = bool
  default     = true
}

variable "argo_server_cpu_cores" {
  description = "The Argo Server resource policy fires when one argo-server container uses more than this many CPU cores (5-minute rate) for 15 minutes."
  type        = number
  default     = 1

  validation {
    condition     = var.argo_server_cpu_cores > 0
    error_message = "argo_server_cpu_cores must be positive."
  }
}

variable "argo_server_memory_mib" {
  description = "The Argo Server resource policy fires when one argo-server container uses more than this many MiB of non-evictable memory for 15 minutes."
  type        = number
  default     = 512

  validation {
    condition     = var.argo_server_memory_mib >= 16
    error_message = "argo_server_memory_mib must be at least 16."
  }
}

variable "controller_cpu_cores" {
  description = "The controller resource policy fires when the workflow-controller container uses more than this many CPU cores (5-minute rate) for 15 minutes."
  type        = number
  default     = 1

  validation {
    condition     = var.controller_cpu_cores > 0
    error_message = "controller_cpu_cores must be positive."
  }
}

variable "controller_memory_mib" {
  description = "The controller resource policy fires when the workflow-controller container uses more than this many MiB of non-evictable memory for 15 minutes."
  type        = number
  default     = 1024

  validation {
    condition     = var.controller_memory_mib >= 16
    error_message = "controller_memory_mib must be at least 16."
  }
}

variable "relay_errors_threshold" {
  description = "The relay-errors policy (e-mail) fires when the relay and ingest functions logged more than this many ERROR-or-worse lines within 10 minutes."
  type        = number
  default     = 0

  validation {
    condition     = var.relay_errors_threshold >= 0 && floor(var.relay_errors_threshold) == var.relay_errors_threshold
    error_message = "relay_errors_threshold must be a whole number >= 0."
  }
}
