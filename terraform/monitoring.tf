# Monitoring: notification channels, alert policies for Argo Workflows and for the relay itself,
# log-based metrics, and the dashboard. docs/monitoring.md maps the team's monitoring list to what
# is defined here; tests/test_monitoring.py checks the wiring.
#
# Two notification paths, on purpose:
#   * Argo policies notify the Pub/Sub channel: Cloud Monitoring publishes the incident to the alerts
#     topic and the relay formats, routes and threads it like any other alert.
#   * Policies about the relay's own health notify the e-mail channel ONLY. An alert saying "the
#     relay is broken" must not need the relay to arrive.
#
# Queries are PromQL (Managed Service for Prometheus metrics under their plain Prometheus names,
# GKE system metrics as kubernetes_io:<path>). The Argo controller's metric names depend on its
# version (client_golang in 3.4/3.5, OpenTelemetry from 3.6): local.argo_metrics holds both sets and
# var.argo_version_family picks one. argo/podmonitoring.yaml keeps exactly the metrics used here.

locals {
  # --- Selectors -------------------------------------------------------------------------------
  # Managed Prometheus sets job = <PodMonitoring name> and namespace = <the scraped pod's namespace>
  # on every scraped series (argo/podmonitoring.yaml), plus cluster and location.
  argo_controller_job = "argo-workflow-controller"
  argo_server_job     = "argo-server"

  argo_target_sel = "cluster=\"${var.cluster_name}\",location=\"${var.cluster_location}\",namespace=\"${var.argo_namespace}\""
  controller_sel  = "${local.argo_target_sel},job=\"${local.argo_controller_job}\""
  server_sel      = "${local.argo_target_sel},job=\"${local.argo_server_job}\""

  # GKE system metrics (kubernetes.io/container/*) are k8s_container time series.
  gke_container_sel        = "monitored_resource=\"k8s_container\",cluster_name=\"${var.cluster_name}\",location=\"${var.cluster_location}\""
  controller_container_sel = "${local.gke_container_sel},namespace_name=\"${var.argo_namespace}\",container_name=\"${var.argo_controller_container}\""
  server_container_sel     = "${local.gke_container_sel},namespace_name=\"${var.argo_namespace}\",container_name=\"${var.argo_server_container}\""
  workflow_namespace_regex = join("|", var.workflow_namespaces)
  # Argo runs a step's user code in the container named main (init and wait are Argo's own).
  step_container_sel = "${local.gke_container_sel},namespace_name=~\"${local.workflow_namespace_regex}\",container_name=\"main\""

  # --- Argo controller metrics by version family ---------------------------------------------------
  # Names as Argo's source exposes them (workflow/metrics in 3.4/3.5, util/telemetry from 3.6):
  #   3.4/3.5: argo_workflows_count{status}, argo_workflows_pods_count{status},
  #            argo_workflows_queue_depth_count, log_messages{level}; no leader metric (use up).
  #   3.6/3.7: argo_workflows_gauge{status}, argo_workflows_total_count{phase,namespace} (counter),
  #            argo_workflows_pods_gauge{phase}, argo_workflows_queue_depth_gauge,
  #            argo_workflows_log_messages{level}, argo_workflows_is_leader.
  # In 3.6 the metric's own namespace label clashes with the target's namespace label, so Managed
  # Prometheus (honor_labels false) stores it as exported_namespace.
  # Counters first appear at their first increment: "X unless X offset 10m" catches a series born
  # within the window, which increase() alone cannot see (no earlier sample).
  argo_metrics = {
    "3.5" = {
      workflows_by_phase    = "sum by (status) (argo_workflows_count{${local.controller_sel}})"
      completed_by_phase    = "sum by (status) (argo_workflows_count{${local.controller_sel},status=~\"Succeeded|Failed|Error\"})"
      runs                  = "sum(argo_workflows_count{${local.controller_sel},status=~\"Succeeded|Failed|Error\"})"
      failed_workflows      = "sum(delta(argo_workflows_count{${local.controller_sel},status=~\"Failed|Error\"}[10m]))"
      pods_by_phase         = "sum by (status) (argo_workflows_pods_count{${local.controller_sel}})"
      pending_pods          = "sum(argo_workflows_pods_count{${local.controller_sel},status=\"Pending\"})"
      queue_depth           = "max by (queue_name) (argo_workflows_queue_depth_count{${local.controller_sel},queue_name=\"workflow_queue\"})"
      queue_depth_all       = "max by (queue_name) (argo_workflows_queue_depth_count{${local.controller_sel}})"
      controller_log_errors = "sum(rate(log_messages{${local.controller_sel},level=\"error\"}[5m]))"
      controller_alive      = "max(up{${local.controller_sel}})"
      controller_alive_what = "`up` (1 when Managed Prometheus could scrape the controller; 3.5 has no leader metric)"
    }
    "3.6" = {
      workflows_by_phase    = "sum by (status) (argo_workflows_gauge{${local.controller_sel}})"
      completed_by_phase    = "sum by (phase) (increase(argo_workflows_total_count{${local.controller_sel},phase=~\"Succeeded|Failed|Error\"}[1h]))"
      runs                  = "sum(increase(argo_workflows_total_count{${local.controller_sel},phase=~\"Succeeded|Failed|Error\"}[1h]))"
      failed_workflows      = "(sum by (exported_namespace) (argo_workflows_total_count{${local.controller_sel},phase=~\"Failed|Error\"} unless argo_workflows_total_count{${local.controller_sel},phase=~\"Failed|Error\"} offset 10m) or sum by (exported_namespace) (increase(argo_workflows_total_count{${local.controller_sel},phase=~\"Failed|Error\"}[10m])))"
      pods_by_phase         = "sum by (phase) (argo_workflows_pods_gauge{${local.controller_sel}})"
      pending_pods          = "sum(argo_workflows_pods_gauge{${local.controller_sel},phase=\"Pending\"})"
      queue_depth           = "max by (queue_name) (argo_workflows_queue_depth_gauge{${local.controller_sel},queue_name=\"workflow_queue\"})"
      queue_depth_all       = "max by (queue_name) (argo_workflows_queue_depth_gauge{${local.controller_sel}})"
      controller_log_errors = "sum(rate(argo_workflows_log_messages{${local.controller_sel},level=\"error\"}[5m]))"
      controller_alive      = "max(argo_workflows_is_leader{${local.controller_sel}})"
      controller_alive_what = "`argo_workflows_is_leader` (1 on the leader; absent when no controller is scraped)"
    }
  }
  argo = local.argo_metrics[var.argo_version_family]

  # --- Queries shared by policies and dashboard (version-independent) ------------------------------
  # Custom metrics of argo/*.yaml, exposed with the argo_workflows_ prefix by every Argo version.
  # Their series expire metricsTTL (10m) after the last update: alert on presence over a window.
  controller_errors_query = "sum by (cause) (increase(argo_workflows_error_count{${local.controller_sel}}[10m])) > 0 or sum by (cause) (argo_workflows_error_count{${local.controller_sel}} unless argo_workflows_error_count{${local.controller_sel}} offset 10m) > 0"
  server_errors_query     = "sum(increase(grpc_server_handled_total{${local.server_sel},grpc_code=~\"Unknown|Internal|Unavailable|DataLoss\"}[10m])) > ${var.argo_server_errors_threshold}"
  server_down_query       = "(max(up{${local.server_sel}}) or vector(0)) < 1"
  operation_p95_query     = "histogram_quantile(0.95, sum by (le) (rate(argo_workflows_operation_duration_seconds_bucket{${local.controller_sel}}[10m])))"
  workflow_p95_query      = "max by (workflow_template) (quantile_over_time(0.95, argo_workflows_alert_relay_workflow_duration_seconds{${local.controller_sel}}[${var.workflow_duration_window_hours}h]))"
  step_completed_query    = "max by (workflow_template, step) (max_over_time(argo_workflows_alert_relay_step_duration_seconds{${local.controller_sel}}[15m]))"
  step_running_query      = "max by (namespace_name, pod_name) (kubernetes_io:container_uptime{${local.step_container_sel}})"
  step_too_long_query     = "(${local.step_completed_query} > ${var.step_duration_threshold_seconds}) or (${local.step_running_query} > ${var.step_duration_threshold_seconds})"
  exit_handler_query      = "max by (status) (max_over_time(argo_workflows_alert_relay_step_result_total{${local.controller_sel},step=\"publish\",workflow_template=\"alert-relay-exit-handler\",status!=\"Succeeded\"}[15m])) > 0"

  server_cpu_query     = "max by (pod_name) (rate(kubernetes_io:container_cpu_core_usage_time{${local.server_container_sel}}[5m]))"
  server_memory_query  = "max by (pod_name) (kubernetes_io:container_memory_used_bytes{${local.server_container_sel},memory_type=\"non-evictable\"})"
  control_cpu_query    = "max by (pod_name) (rate(kubernetes_io:container_cpu_core_usage_time{${local.controller_container_sel}}[5m]))"
  control_memory_query = "max by (pod_name) (kubernetes_io:container_memory_used_bytes{${local.controller_container_sel},memory_type=\"non-evictable\"})"
  # CPU or memory over the threshold in one condition; label_replace tags which one.
  server_resources_query     = "label_replace(${local.server_cpu_query} > ${var.argo_server_cpu_cores}, \"resource\", \"cpu\", \"\", \"\") or label_replace(${local.server_memory_query} > ${var.argo_server_memory_mib} * 1048576, \"resource\", \"memory\", \"\", \"\")"
  controller_resources_query = "label_replace(${local.control_cpu_query} > ${var.controller_cpu_cores}, \"resource\", \"cpu\", \"\", \"\") or label_replace(${local.control_memory_query} > ${var.controller_memory_mib} * 1048576, \"resource\", \"memory\", \"\", \"\")"
  workflow_result_sel        = "argo_workflows_alert_relay_workflow_result_total{${local.controller_sel}}"
  workflow_duration_sel      = "argo_workflows_alert_relay_workflow_duration_seconds{${local.controller_sel}}"
  dashboard_stats_range      = "7d"

  dashboard_queries = {
    server_errors         = "sum by (grpc_code) (rate(grpc_server_handled_total{${local.server_sel},grpc_code!=\"OK\"}[5m]))"
    server_requests       = "sum by (grpc_service) (rate(grpc_server_handled_total{${local.server_sel}}[5m]))"
    server_cpu            = local.server_cpu_query
    server_memory         = local.server_memory_query
    controller_errors     = "sum by (cause) (increase(argo_workflows_error_count{${local.controller_sel}}[10m]))"
    controller_log_errors = local.argo.controller_log_errors
    controller_cpu        = local.control_cpu_query
    controller_memory     = local.control_memory_query
    controller_alive      = local.argo.controller_alive
    queue_depth           = local.argo.queue_depth_all
    operation_p95         = local.operation_p95_query
    pods_by_phase         = local.argo.pods_by_phase
    workflows_by_phase    = local.argo.workflows_by_phase
    completed_by_phase    = local.argo.completed_by_phase
    runs                  = local.argo.runs
    results_by_pipeline   = "sum by (workflow_template, status) (${local.workflow_result_sel})"
    duration_last         = "max by (workflow_template) (${local.workflow_duration_sel})"
    duration_mean         = "avg by (workflow_template) (avg_over_time(${local.workflow_duration_sel}[${local.dashboard_stats_range}]))"
    duration_median       = "max by (workflow_template) (quantile_over_time(0.5, ${local.workflow_duration_sel}[${local.dashboard_stats_range}]))"
    duration_max          = "max by (workflow_template) (max_over_time(${local.workflow_duration_sel}[${local.dashboard_stats_range}]))"
    duration_min          = "min by (workflow_template) (min_over_time(${local.workflow_duration_sel}[${local.dashboard_stats_range}]))"
    duration_p95          = "max by (workflow_template) (quantile_over_time(0.95, ${local.workflow_duration_sel}[${local.dashboard_stats_range}]))"
    workflow_retries      = "sum by (workflow_template) (max by (workflow_template, step) (max_over_time(argo_workflows_alert_relay_step_retries{${local.controller_sel}}[1h])))"
    workflow_cpu          = "sum by (namespace_name) (rate(kubernetes_io:container_cpu_core_usage_time{${local.step_container_sel}}[5m]))"
    workflow_memory       = "sum by (namespace_name) (kubernetes_io:container_memory_used_bytes{${local.step_container_sel},memory_type=\"non-evictable\"})"
    step_results          = "sum by (workflow_template, step, status) (argo_workflows_alert_relay_step_result_total{${local.controller_sel}})"
    step_duration         = "max by (workflow_template, step) (argo_workflows_alert_relay_step_duration_seconds{${local.controller_sel}})"
    step_retries          = "max by (workflow_template, step) (argo_workflows_alert_relay_step_retries{${local.controller_sel}})"
    step_cpu              = "topk(10, sum by (namespace_name, pod_name) (rate(kubernetes_io:container_cpu_core_usage_time{${local.step_container_sel}}[5m])))"
    step_memory           = "topk(10, sum by (namespace_name, pod_name) (kubernetes_io:container_memory_used_bytes{${local.step_container_sel},memory_type=\"non-evictable\"}))"
    steps_running         = "topk(10, ${local.step_running_query})"
    exit_handler_results  = "sum by (status) (argo_workflows_alert_relay_step_result_total{${local.controller_sel},step=\"publish\",workflow_template=\"alert-relay-exit-handler\"})"
  }

  # Everything the dashboard template interpolates (dashboards/argo.json.tftpl).
  dashboard_vars = {
    q                               = local.dashboard_queries
    display_name                    = "${var.name_prefix}: Argo Workflows on ${var.cluster_name}"
    argo_version_family             = var.argo_version_family
    stats_range                     = local.dashboard_stats_range
    workflow_duration_p95_seconds   = var.workflow_duration_p95_seconds
    step_duration_threshold_seconds = var.step_duration_threshold_seconds
    queue_depth_threshold           = var.queue_depth_threshold
    dead_letter_subscription        = google_pubsub_subscription.dead_letters.name
    relay_errors_metric             = google_logging_metric.relay_errors.name
    relay_outcomes_metric           = google_logging_metric.relay_outcomes.name
    publisher_undelivered_metric    = google_logging_metric.publisher_undelivered.name
  }

  # --- Relay services and their logs ---------------------------------------------------------------
  relay_service_names = concat([module.relay.service_name], [for m in module.ingest : m.service_name])
  relay_services_filter = join(" AND ", [
    "resource.type=\"cloud_run_revision\"",
    "resource.labels.service_name=(${join(" OR ", [for s in local.relay_service_names : "\"${s}\""])})",
  ])

  # The publisher's last resort (shared/publisher.py): one stdout JSON line with this marker, which
  # GKE's logging agent turns into jsonPayload.alert_relay.
  publisher_undelivered_filter = "jsonPayload.alert_relay=\"UNDELIVERED_EVENT\""

  monitoring_notification_agent = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-monitoring-notification.iam.gserviceaccount.com"
}

# --- Notification channels ----------------------------------------------------------------------------

# Incidents of the Argo policies go to the alerts topic, where the relay picks them up.
resource "google_monitoring_notification_channel" "pubsub" {
  project      = var.project_id
  display_name = "${var.name_prefix}: relay (Pub/Sub ${google_pubsub_topic.alerts.name})"
  description  = "Publishes Cloud Monitoring incidents to the alerts topic; the relay routes and formats them."
  type         = "pubsub"
  labels = {
    topic = google_pubsub_topic.alerts.id
  }
  user_labels = {
    component = "alert-relay"
  }

  depends_on = [google_project_service.required]
}

# Alerts about the relay itself: delivered by Cloud Monitoring's own e-mail, never through the relay.
resource "google_monitoring_notification_channel" "email" {
  project      = var.project_id
  display_name = "${var.name_prefix}: relay health (e-mail)"
  description  = "Relay health alerts (dead letters, relay errors, undelivered exit-handler events). Independent of the relay."
  type         = "email"
  labels = {
    email_address = var.alert_email
  }
  user_labels = {
    component = "alert-relay"
  }

  depends_on = [google_project_service.required]
}

# Cloud Monitoring publishes to the channel's topic as its notification service agent. The agent is
# created with the project's first Pub/Sub channel, hence the dependency.
resource "google_pubsub_topic_iam_member" "monitoring_notifications_publish_alerts" {
  project = var.project_id
  topic   = google_pubsub_topic.alerts.name
  role    = "roles/pubsub.publisher"
  member  = local.monitoring_notification_agent

  depends_on = [google_monitoring_notification_channel.pubsub]
}

# --- Log-based metrics ----------------------------------------------------------------------------------

# Every ERROR-or-worse line of the relay and ingest functions: dead letters (shared/pipeline.py logs
# "dead-lettered" at ERROR), failed dead-lettering, configuration errors (CRITICAL), crashes and
# platform errors (out of memory, timeouts).
resource "google_logging_metric" "relay_errors" {
  project     = var.project_id
  name        = "${var.name_prefix}/relay_errors"
  description = "ERROR-or-worse log lines of the alert-relay functions, by service and outcome."
  filter      = "${local.relay_services_filter} AND severity>=ERROR"

  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "INT64"
    unit         = "1"
    display_name = "alert-relay error log lines"

    labels {
      key         = "service_name"
      value_type  = "STRING"
      description = "Cloud Run service of the function (relay or ingest)."
    }
    labels {
      key         = "outcome"
      value_type  = "STRING"
      description = "jsonPayload.outcome of the line (dead_lettered, retry, ...), empty for platform lines."
    }
  }

  label_extractors = {
    service_name = "EXTRACT(resource.labels.service_name)"
    outcome      = "EXTRACT(jsonPayload.outcome)"
  }

  depends_on = [google_project_service.required]
}

# Every outcome line (shared/logs.py): delivered, suppressed, retry, dead_lettered, accepted, ...
resource "google_logging_metric" "relay_outcomes" {
  project     = var.project_id
  name        = "${var.name_prefix}/relay_outcomes"
  description = "Outcome log lines of the alert-relay functions (jsonPayload.outcome), by outcome."
  filter      = "${local.relay_services_filter} AND jsonPayload.outcome:*"

  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "INT64"
    unit         = "1"
    display_name = "alert-relay outcomes"

    labels {
      key         = "outcome"
      value_type  = "STRING"
      description = "jsonPayload.outcome: delivered, already_delivered, suppressed, retry, failed, dead_lettered, accepted, invalid, unauthorized, ..."
    }
    labels {
      key         = "service_name"
      value_type  = "STRING"
      description = "Cloud Run service of the function (relay or ingest)."
    }
  }

  label_extractors = {
    outcome      = "EXTRACT(jsonPayload.outcome)"
    service_name = "EXTRACT(resource.labels.service_name)"
  }

  depends_on = [google_project_service.required]
}

# Exit-handler events that no path could deliver (the whole event is in the log line).
resource "google_logging_metric" "publisher_undelivered" {
  project     = var.project_id
  name        = "${var.name_prefix}/publisher_undelivered"
  description = "alert-relay publish gave up on Pub/Sub and the ingest URL and left the event in its log (jsonPayload.alert_relay=UNDELIVERED_EVENT)."
  filter      = local.publisher_undelivered_filter

  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "INT64"
    unit         = "1"
    display_name = "alert-relay undelivered exit-handler events"

    labels {
      key         = "namespace"
      value_type  = "STRING"
      description = "Namespace of the workflow whose event was not delivered."
    }
  }

  label_extractors = {
    namespace = "EXTRACT(jsonPayload.event.workflow.namespace)"
  }

  depends_on = [google_project_service.required]
}

# --- Argo policies: notify the Pub/Sub channel (through the relay) ------------------------------------

# Every Argo policy of one PromQL condition on fixed settings is one entry here, created by
# google_monitoring_alert_policy.argo below; docs/monitoring.md names them argo["<key>"]. Each entry
# spells out every setting:
#   display_name, severity       of the policy
#   component                    user_labels.component (team, env and source = "argo" are added)
#   extra_channels               notified besides the Pub/Sub channel
#   condition                    the condition's display name
#   query, duration, evaluation_interval, alert_rule
#                                the PromQL condition (rule_group "argo")
#   disable_metric_validation    true on Prometheus metrics: they exist only once scraped, so the
#                                apply must not fail before the Argo side is up
#   auto_close                   alert_strategy.auto_close
#   subject, content             the markdown documentation
# The policies whose number depends on variables (did not run, no workflow completed) follow it.
locals {
  argo_alert_policies = {
    controller_errors = {
      display_name              = "Argo controller errors (${var.cluster_name})"
      severity                  = "ERROR"
      component                 = "workflow-controller"
      extra_channels            = []
      condition                 = "argo_workflows_error_count increased"
      query                     = local.controller_errors_query
      duration                  = "0s"
      evaluation_interval       = "60s"
      alert_rule                = "ArgoControllerErrors"
      disable_metric_validation = true
      auto_close                = "1800s"
      subject                   = "Argo workflow controller reported errors on ${var.cluster_name}"
      content                   = <<-EOT
        The Argo workflow controller counted errors in the last 10 minutes (`argo_workflows_error_count`, by `cause`):
        - `OperationPanic`: the controller panicked while operating on a workflow (a bug; the workflow may be stuck).
        - `CronWorkflowSubmissionError`: a CronWorkflow could not submit its workflow (RBAC, quota, invalid spec): **the scheduled run did not start**.
        - `CronWorkflowSpecError`: a CronWorkflow's spec is invalid.

        **Next steps**: `kubectl -n ${var.argo_namespace} logs deploy/workflow-controller | grep -i error`, then `argo cron list -A` / `argo cron get NAME` for cron causes.

        Query:
        ```
        ${local.controller_errors_query}
        ```
      EOT
    }
    workflow_failures = {
      display_name              = "Argo workflows failing (${var.cluster_name})"
      severity                  = "WARNING"
      component                 = "workflows"
      extra_channels            = []
      condition                 = "Failed or Error workflows in 10 minutes > ${var.workflow_failures_threshold}"
      query                     = "${local.argo.failed_workflows} > ${var.workflow_failures_threshold}"
      duration                  = "0s"
      evaluation_interval       = "60s"
      alert_rule                = "ArgoWorkflowFailures"
      disable_metric_validation = true
      auto_close                = "1800s"
      subject                   = "Argo workflows failed on ${var.cluster_name}"
      content                   = <<-EOT
        More than ${var.workflow_failures_threshold} workflow(s) ended Failed or Error in the last 10 minutes (controller metrics, Argo ${var.argo_version_family} names).

        Each failed workflow also posts its own message through the exit handler, with the failed steps. This policy is the
        safety net for workflows whose exit handler did not run (terminated workflows, a missing `alert-relay-exit-handler`
        template in the namespace, a broken publisher).

        **Next steps**: `argo list -A --status Failed,Error --since 1h`, then `argo get -n NS NAME`.

        Query:
        ```
        ${local.argo.failed_workflows} > ${var.workflow_failures_threshold}
        ```
      EOT
    }
    queue_depth = {
      display_name              = "Argo controller queue backlog (${var.cluster_name})"
      severity                  = "WARNING"
      component                 = "workflow-controller"
      extra_channels            = []
      condition                 = "workflow_queue depth > ${var.queue_depth_threshold} for 10 minutes"
      query                     = "${local.argo.queue_depth} > ${var.queue_depth_threshold}"
      duration                  = "600s"
      evaluation_interval       = "60s"
      alert_rule                = "ArgoQueueDepth"
      disable_metric_validation = true
      auto_close                = "1800s"
      subject                   = "Argo controller workflow queue is backing up on ${var.cluster_name}"
      content                   = <<-EOT
        The controller's `workflow_queue` has held more than ${var.queue_depth_threshold} items for 10 minutes: it cannot keep
        up, so workflows start and progress late.

        **Next steps**: the controller's CPU and memory (dashboard), throttling of the Kubernetes API, `--workflow-workers`
        and `parallelism` settings, a flood of submissions.

        Query:
        ```
        ${local.argo.queue_depth} > ${var.queue_depth_threshold}
        ```
      EOT
    }
    pods_pending = {
      display_name              = "Argo workflow pods pending (${var.cluster_name})"
      severity                  = "WARNING"
      component                 = "workflows"
      extra_channels            = []
      condition                 = "Pending workflow pods for ${var.pending_pods_minutes} minutes"
      query                     = "${local.argo.pending_pods} > 0"
      duration                  = "${var.pending_pods_minutes * 60}s"
      evaluation_interval       = "60s"
      alert_rule                = "ArgoPodsPending"
      disable_metric_validation = true
      auto_close                = "1800s"
      subject                   = "Argo workflow pods have been Pending for ${var.pending_pods_minutes} minutes on ${var.cluster_name}"
      content                   = <<-EOT
        The controller has reported at least one Pending workflow pod continuously for ${var.pending_pods_minutes} minutes:
        no node capacity (GPUs!), a ResourceQuota, an image that cannot be pulled, or an unschedulable nodeSelector/toleration.

        **Next steps**: `kubectl get pods -A --field-selector=status.phase=Pending -l workflows.argoproj.io/workflow`,
        then `kubectl describe pod` for the scheduler's events; the cluster autoscaler's status.

        Query:
        ```
        ${local.argo.pending_pods} > 0
        ```
      EOT
    }
    controller_down = {
      display_name              = "Argo controller down or without leader (${var.cluster_name})"
      severity                  = "CRITICAL"
      component                 = "workflow-controller"
      extra_channels            = []
      condition                 = "No live leading controller for 5 minutes"
      query                     = "(${local.argo.controller_alive} or vector(0)) < 1"
      duration                  = "300s"
      evaluation_interval       = "60s"
      alert_rule                = "ArgoControllerDown"
      disable_metric_validation = true
      auto_close                = "1800s"
      subject                   = "Argo workflow controller is down or has no leader on ${var.cluster_name}"
      content                   = <<-EOT
        For 5 minutes, ${local.argo.controller_alive_what} was below 1 or missing. No workflow is being scheduled or
        progressed, and exit handlers do not run: **workflow alerts are silent while this lasts**.

        **Next steps**: `kubectl -n ${var.argo_namespace} get pods -l app=workflow-controller`, its events and logs (crash loop,
        OOMKilled, lost leader lease); the PodMonitoring `${local.argo_controller_job}` status if the pod is fine.

        Query:
        ```
        (${local.argo.controller_alive} or vector(0)) < 1
        ```
      EOT
    }
    operation_duration = {
      display_name              = "Argo controller operations slow (${var.cluster_name})"
      severity                  = "WARNING"
      component                 = "workflow-controller"
      extra_channels            = []
      condition                 = "Operation duration p95 > ${var.operation_duration_p95_seconds}s for 15 minutes"
      query                     = "${local.operation_p95_query} > ${var.operation_duration_p95_seconds}"
      duration                  = "900s"
      evaluation_interval       = "60s"
      alert_rule                = "ArgoOperationDuration"
      disable_metric_validation = true
      auto_close                = "1800s"
      subject                   = "Argo controller operations are slow on ${var.cluster_name}"
      content                   = <<-EOT
        The 95th percentile of the time the controller spends on one workflow operation (reconciling a workflow) has been above
        ${var.operation_duration_p95_seconds}s for 15 minutes. Large workflows (thousands of nodes), a slow Kubernetes API or a
        CPU-starved controller are the usual causes.

        Query:
        ```
        ${local.operation_p95_query} > ${var.operation_duration_p95_seconds}
        ```
      EOT
    }
    workflow_duration = {
      display_name              = "Argo workflow duration p95 over ${var.workflow_duration_p95_seconds}s (${var.cluster_name})"
      severity                  = "WARNING"
      component                 = "workflows"
      extra_channels            = []
      condition                 = "p95 of a pipeline's durations over ${var.workflow_duration_window_hours}h > ${var.workflow_duration_p95_seconds}s"
      query                     = "${local.workflow_p95_query} > ${var.workflow_duration_p95_seconds}"
      duration                  = "0s"
      evaluation_interval       = "300s"
      alert_rule                = "ArgoWorkflowDurationP95"
      disable_metric_validation = true
      auto_close                = "86400s"
      subject                   = "Argo pipelines are getting slow on ${var.cluster_name}"
      content                   = <<-EOT
        For at least one pipeline (`workflow_template`), the 95th percentile of its run durations over the last
        ${var.workflow_duration_window_hours}h is above ${var.workflow_duration_p95_seconds}s (custom metric
        `argo_workflows_alert_relay_workflow_duration_seconds`, set when a run completes).

        **Next steps**: the dashboard's duration and step-duration panels show which step grew; compare input sizes, node
        types and Pending times.

        Query:
        ```
        ${local.workflow_p95_query} > ${var.workflow_duration_p95_seconds}
        ```
      EOT
    }
    step_too_long = {
      # One PromQL condition per policy. Left: a step that already finished but took too long (custom
      # metric, per pipeline and step). Right: a step still running past the threshold; the custom gauge
      # is only set when a step completes, so the step container's uptime (GKE system metric) catches it
      # while users are still waiting.
      display_name              = "Argo step running too long (${var.cluster_name})"
      severity                  = "WARNING"
      component                 = "steps"
      extra_channels            = []
      condition                 = "A step took or is taking > ${var.step_duration_threshold_seconds}s"
      query                     = local.step_too_long_query
      duration                  = "0s"
      evaluation_interval       = "60s"
      alert_rule                = "ArgoStepTooLong"
      disable_metric_validation = true
      auto_close                = "3600s"
      subject                   = "An Argo step is taking longer than ${var.step_duration_threshold_seconds}s on ${var.cluster_name}"
      content                   = <<-EOT
        A workflow step is taking longer than ${var.step_duration_threshold_seconds}s: either it completed after that long
        (labels `workflow_template`, `step`), or its `main` container is still running (labels `namespace_name`, `pod_name`;
        Argo names pods `<workflow>-<template>-<hash>`).

        **Next steps**: `argo get -n NS WORKFLOW`, `argo logs -n NS WORKFLOW POD`; check for a hung download, a GPU that is
        not used, retries hiding in the step.

        Query:
        ```
        ${local.step_too_long_query}
        ```
      EOT
    }
    server_errors = {
      display_name              = "Argo Server errors (${var.cluster_name})"
      severity                  = "ERROR"
      component                 = "argo-server"
      extra_channels            = []
      condition                 = "Server-side gRPC errors in 10 minutes > ${var.argo_server_errors_threshold}"
      query                     = local.server_errors_query
      duration                  = "0s"
      evaluation_interval       = "60s"
      alert_rule                = "ArgoServerErrors"
      disable_metric_validation = true
      auto_close                = "1800s"
      subject                   = "Argo Server is failing requests on ${var.cluster_name}"
      content                   = <<-EOT
        The Argo Server (UI and API) answered more than ${var.argo_server_errors_threshold} calls with a server-side error
        in 10 minutes (`grpc_server_handled_total`, gRPC codes Unknown, Internal, Unavailable, DataLoss; the REST API goes
        through the same gRPC handlers). Client-side codes (NotFound, PermissionDenied, Canceled, ...) do not count.

        **Next steps**: `kubectl -n ${var.argo_namespace} logs deploy/argo-server`, the archive database if persistence is on,
        SSO/RBAC configuration after a change; the server's CPU and memory (dashboard).

        Query:
        ```
        ${local.server_errors_query}
        ```
      EOT
    }
    server_down = {
      display_name              = "Argo Server down (${var.cluster_name})"
      severity                  = "ERROR"
      component                 = "argo-server"
      extra_channels            = []
      condition                 = "Argo Server not scraped for 5 minutes"
      query                     = local.server_down_query
      duration                  = "300s"
      evaluation_interval       = "60s"
      alert_rule                = "ArgoServerDown"
      disable_metric_validation = true
      auto_close                = "1800s"
      subject                   = "Argo Server (UI and API) is down on ${var.cluster_name}"
      content                   = <<-EOT
        Managed Prometheus has not scraped a healthy argo-server (`up` of the PodMonitoring `${local.argo_server_job}`) for
        5 minutes: the pod is gone, crash-looping, or not answering. Users cannot open the Argo UI or submit through the API;
        workflows keep running (the controller is separate).

        **Next steps**: `kubectl -n ${var.argo_namespace} get pods -l app=argo-server`, its events and logs; the TLS settings of
        the PodMonitoring if the pod is healthy (argo/podmonitoring.yaml).

        Query:
        ```
        ${local.server_down_query}
        ```
      EOT
    }
    server_resources = {
      # One PromQL condition: CPU or memory, tagged with resource="cpu" / "memory". GKE system
      # metrics always exist, so the condition keeps metric validation.
      display_name              = "Argo Server CPU or memory high (${var.cluster_name})"
      severity                  = "WARNING"
      component                 = "argo-server"
      extra_channels            = []
      condition                 = "argo-server CPU > ${var.argo_server_cpu_cores} cores or memory > ${var.argo_server_memory_mib} MiB"
      query                     = local.server_resources_query
      duration                  = "900s"
      evaluation_interval       = "60s"
      alert_rule                = "ArgoServerResources"
      disable_metric_validation = false
      auto_close                = "1800s"
      subject                   = "Argo Server is using a lot of CPU or memory on ${var.cluster_name}"
      content                   = <<-EOT
        An argo-server container has used more than ${var.argo_server_cpu_cores} CPU cores or ${var.argo_server_memory_mib} MiB
        of non-evictable memory for 15 minutes (GKE system metrics). Heavy UI use (large workflow lists, many watches) or
        a slow archive database are typical; throttling or an OOM kill follows.

        Query (label `resource` says which):
        ```
        ${local.server_resources_query}
        ```
      EOT
    }
    controller_resources = {
      # One PromQL condition: CPU or memory, tagged with resource="cpu" / "memory". GKE system
      # metrics always exist, so the condition keeps metric validation.
      display_name              = "Argo controller CPU or memory high (${var.cluster_name})"
      severity                  = "WARNING"
      component                 = "workflow-controller"
      extra_channels            = []
      condition                 = "workflow-controller CPU > ${var.controller_cpu_cores} cores or memory > ${var.controller_memory_mib} MiB"
      query                     = local.controller_resources_query
      duration                  = "900s"
      evaluation_interval       = "60s"
      alert_rule                = "ArgoControllerResources"
      disable_metric_validation = false
      auto_close                = "1800s"
      subject                   = "Argo workflow controller is using a lot of CPU or memory on ${var.cluster_name}"
      content                   = <<-EOT
        The workflow-controller container has used more than ${var.controller_cpu_cores} CPU cores or
        ${var.controller_memory_mib} MiB of non-evictable memory for 15 minutes (GKE system metrics). Many or very large
        workflows, no TTL/podGC (the controller keeps everything in its informers), or a retry storm are typical.

        Query (label `resource` says which):
        ```
        ${local.controller_resources_query}
        ```
      EOT
    }
    # The exit handler itself failed: the alert for that workflow may be lost, so this one goes to the
    # relay AND to e-mail.
    exit_handler_failed = {
      display_name              = "Argo exit handler (alert-relay publish) failed (${var.cluster_name})"
      severity                  = "ERROR"
      component                 = "exit-handler"
      extra_channels            = [google_monitoring_notification_channel.email.id]
      condition                 = "alert-relay-exit-handler/publish ended Failed or Error"
      query                     = local.exit_handler_query
      duration                  = "0s"
      evaluation_interval       = "60s"
      alert_rule                = "ArgoExitHandlerFailed"
      disable_metric_validation = true
      auto_close                = "1800s"
      subject                   = "The alert-relay exit handler failed on ${var.cluster_name}: a workflow alert may be missing"
      content                   = <<-EOT
        The `publish` step of the `alert-relay-exit-handler` WorkflowTemplate ended Failed or Error after its retries. The
        workflow's own alert was then either left in the pod's log (the "undelivered exit-handler event" e-mail says so) or
        never produced (the pod could not start: missing ServiceAccount, image pull, Workload Identity).

        **Next steps**: `argo list -A --since 1h`, find the workflow whose onExit node failed, `argo logs` of that node;
        argo/README.md, "RBAC and Workload Identity".

        Query:
        ```
        ${local.exit_handler_query}
        ```
      EOT
    }
  }
}

resource "google_monitoring_alert_policy" "argo" {
  for_each = local.argo_alert_policies

  project               = var.project_id
  display_name          = each.value.display_name
  combiner              = "OR"
  severity              = each.value.severity
  notification_channels = concat([google_monitoring_notification_channel.pubsub.id], each.value.extra_channels)
  user_labels = {
    team      = var.alert_team
    env       = var.alert_env
    source    = "argo"
    component = each.value.component
  }

  conditions {
    display_name = each.value.condition
    condition_prometheus_query_language {
      query                     = each.value.query
      duration                  = each.value.duration
      evaluation_interval       = each.value.evaluation_interval
      alert_rule                = each.value.alert_rule
      rule_group                = "argo"
      disable_metric_validation = each.value.disable_metric_validation
    }
  }

  alert_strategy {
    auto_close = each.value.auto_close
  }

  documentation {
    mime_type = "text/markdown"
    subject   = each.value.subject
    content   = each.value.content
  }

  depends_on = [google_project_service.required]
}

# "The workflow did not run at all": an expected pipeline reported no completion (any status) in the
# lookback window. The custom counter of argo/*.yaml exists for 10 minutes after each completion, so
# its absence over the window means no run finished.
resource "google_monitoring_alert_policy" "argo_workflow_did_not_run" {
  for_each = toset(var.expected_workflows)

  project               = var.project_id
  display_name          = "Argo pipeline ${each.value} did not run (${var.cluster_name})"
  combiner              = "OR"
  severity              = "ERROR"
  notification_channels = [google_monitoring_notification_channel.pubsub.id]
  user_labels = {
    team      = var.alert_team
    env       = var.alert_env
    source    = "argo"
    component = "workflows"
  }

  conditions {
    display_name = "No ${each.value} completion in ${var.did_not_run_lookback_hours}h"
    condition_prometheus_query_language {
      query                     = "absent_over_time(argo_workflows_alert_relay_workflow_result_total{${local.controller_sel},workflow_template=\"${each.value}\"}[${var.did_not_run_lookback_hours}h])"
      duration                  = "0s"
      evaluation_interval       = "300s"
      alert_rule                = "ArgoWorkflowDidNotRun"
      rule_group                = "argo"
      disable_metric_validation = true
    }
  }

  alert_strategy {
    auto_close = "86400s"
  }

  documentation {
    mime_type = "text/markdown"
    subject   = "Argo pipeline ${each.value} has not completed for ${var.did_not_run_lookback_hours}h on ${var.cluster_name}"
    content   = <<-EOT
      No run of **${each.value}** finished (with any status) in the last ${var.did_not_run_lookback_hours} hours: no
      `argo_workflows_alert_relay_workflow_result_total{workflow_template="${each.value}"}` series in the window.

      Likely causes: the CronWorkflow is suspended or its schedule changed, the controller could not submit it
      (see the controller-errors policy, cause `CronWorkflowSubmissionError`), the run is stuck Pending/Running, or the
      workflow lost its `metrics.prometheus` block (argo/README.md, "Custom metrics").

      **Next steps**: `argo cron get ${each.value}`, `argo list -A --prefix ${each.value}`.
    EOT
  }

  depends_on = [google_project_service.required]
}

resource "google_monitoring_alert_policy" "argo_no_workflow_completed" {
  count = var.alert_when_no_workflow_completes ? 1 : 0

  project               = var.project_id
  display_name          = "Argo: no workflow completed (${var.cluster_name})"
  combiner              = "OR"
  severity              = "WARNING"
  notification_channels = [google_monitoring_notification_channel.pubsub.id]
  user_labels = {
    team      = var.alert_team
    env       = var.alert_env
    source    = "argo"
    component = "workflows"
  }

  conditions {
    display_name = "No workflow completion in ${var.did_not_run_lookback_hours}h"
    condition_prometheus_query_language {
      query                     = "absent_over_time(${local.workflow_result_sel}[${var.did_not_run_lookback_hours}h])"
      duration                  = "0s"
      evaluation_interval       = "300s"
      alert_rule                = "ArgoNoWorkflowCompleted"
      rule_group                = "argo"
      disable_metric_validation = true
    }
  }

  alert_strategy {
    auto_close = "86400s"
  }

  documentation {
    mime_type = "text/markdown"
    subject   = "No Argo workflow completed for ${var.did_not_run_lookback_hours}h on ${var.cluster_name}"
    content   = <<-EOT
      Not a single workflow carrying the alert-relay metrics finished in the last ${var.did_not_run_lookback_hours} hours
      on ${var.cluster_name}. Either nothing was scheduled (then raise `did_not_run_lookback_hours` or set
      `alert_when_no_workflow_completes = false`), or the controller is not processing workflows.

      **Next steps**: check the controller-down and queue-depth policies, `argo list -A --running`, `argo cron list -A`.
    EOT
  }

  depends_on = [google_project_service.required]
}

# --- Relay health: e-mail ONLY (never through the Pub/Sub channel, i.e. never through the relay) ------

resource "google_monitoring_alert_policy" "relay_dead_letters" {
  project               = var.project_id
  display_name          = "alert-relay: dead letters waiting (${var.name_prefix})"
  combiner              = "OR"
  severity              = "CRITICAL"
  notification_channels = [google_monitoring_notification_channel.email.id]
  user_labels = {
    team      = var.alert_team
    env       = var.alert_env
    source    = "alert-relay"
    component = "alert-relay"
  }

  conditions {
    display_name = "Dead-letter subscription backlog > 0"
    condition_threshold {
      filter          = "resource.type = \"pubsub_subscription\" AND resource.labels.subscription_id = \"${google_pubsub_subscription.dead_letters.name}\" AND metric.type = \"pubsub.googleapis.com/subscription/num_undelivered_messages\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"

      aggregations {
        alignment_period   = "300s"
        per_series_aligner = "ALIGN_MAX"
      }

      trigger {
        count = 1
      }
    }
  }

  alert_strategy {
    auto_close = "86400s"
  }

  documentation {
    mime_type = "text/markdown"
    subject   = "alert-relay: alerts were dead-lettered and have NOT reached their destination"
    content   = <<-EOT
      The dead-letter subscription `${google_pubsub_subscription.dead_letters.name}` holds undelivered alerts: the relay gave
      up on them (never deliverable, or ${var.max_delivery_attempts} failed attempts). Nobody has seen these alerts.

      **Next steps**:
      1. Why: `gcloud logging read 'jsonPayload.outcome="dead_lettered"' --project ${var.project_id} --freshness 1d`
         (each line has the reason), or `alert-relay trace EVENT_ID`.
      2. Fix the cause (Slack token, routes, a sink that is down).
      3. Replay the dead letters (README.md, "Replay"); the backlog returns to 0 and this incident closes.
    EOT
  }

  depends_on = [google_project_service.required]
}

resource "google_monitoring_alert_policy" "relay_errors" {
  project               = var.project_id
  display_name          = "alert-relay: relay errors (${var.name_prefix})"
  combiner              = "OR"
  severity              = "ERROR"
  notification_channels = [google_monitoring_notification_channel.email.id]
  user_labels = {
    team      = var.alert_team
    env       = var.alert_env
    source    = "alert-relay"
    component = "alert-relay"
  }

  conditions {
    display_name = "ERROR log lines of the relay functions in 10 minutes > ${var.relay_errors_threshold}"
    condition_threshold {
      filter          = "resource.type = \"cloud_run_revision\" AND metric.type = \"logging.googleapis.com/user/${google_logging_metric.relay_errors.name}\""
      comparison      = "COMPARISON_GT"
      threshold_value = var.relay_errors_threshold
      duration        = "0s"

      aggregations {
        alignment_period     = "600s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["metric.label.service_name"]
      }

      trigger {
        count = 1
      }
    }
  }

  alert_strategy {
    auto_close = "3600s"
  }

  documentation {
    mime_type = "text/markdown"
    subject   = "alert-relay: the relay functions are logging errors"
    content   = <<-EOT
      The relay or ingest function logged more than ${var.relay_errors_threshold} ERROR-or-worse lines in 10 minutes
      (log-based metric `${google_logging_metric.relay_errors.name}`): dead letters, failed dead-lettering, a configuration
      error (the relay answers 500 and Pub/Sub keeps retrying), crashes or out-of-memory.

      **Next steps**: `gcloud logging read '${local.relay_services_filter} AND severity>=ERROR' --project ${var.project_id} --freshness 1h`.
    EOT
  }

  depends_on = [google_project_service.required]
}

# The publisher's last resort fired: an Argo exit-handler event is only in a pod's log.
resource "google_monitoring_alert_policy" "relay_publisher_undelivered" {
  project               = var.project_id
  display_name          = "alert-relay: exit-handler event not delivered (${var.name_prefix})"
  combiner              = "OR"
  severity              = "CRITICAL"
  notification_channels = [google_monitoring_notification_channel.email.id]
  user_labels = {
    team      = var.alert_team
    env       = var.alert_env
    source    = "alert-relay"
    component = "alert-relay"
  }

  conditions {
    display_name = "alert-relay publish logged UNDELIVERED_EVENT"
    condition_matched_log {
      filter = local.publisher_undelivered_filter
      label_extractors = {
        workflow  = "EXTRACT(jsonPayload.event.workflow.name)"
        namespace = "EXTRACT(jsonPayload.event.workflow.namespace)"
        status    = "EXTRACT(jsonPayload.event.workflow.status)"
      }
    }
  }

  # Required for log-match conditions: at most one notification per 5 minutes.
  alert_strategy {
    notification_rate_limit {
      period = "300s"
    }
    auto_close = "1800s"
  }

  documentation {
    mime_type = "text/markdown"
    subject   = "alert-relay: the alert of workflow $${log.extracted_label.namespace}/$${log.extracted_label.workflow} was not delivered"
    content   = <<-EOT
      An Argo exit handler could reach neither Pub/Sub nor the ingest function and wrote its event to the pod's log
      instead (`jsonPayload.alert_relay="UNDELIVERED_EVENT"`). Workflow: **$${log.extracted_label.namespace}/$${log.extracted_label.workflow}**,
      status **$${log.extracted_label.status}**. Nobody was told about this workflow in Slack.

      **Next steps**:
      1. Read the event: `gcloud logging read '${local.publisher_undelivered_filter}' --project ${var.project_id} --freshness 1d`;
         `jsonPayload.errors` says why each path failed (Workload Identity, topic IAM, egress, ingest token).
      2. Re-send it: `alert-relay publish` with the same values, or publish `jsonPayload.event` to the alerts topic.
    EOT
  }

  depends_on = [google_project_service.required]
}

# --- Dashboard ---------------------------------------------------------------------------------------------

resource "google_monitoring_dashboard" "argo" {
  project        = var.project_id
  dashboard_json = templatefile("${path.module}/dashboards/argo.json.tftpl", local.dashboard_vars)

  depends_on = [google_project_service.required]
}
