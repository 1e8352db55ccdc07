# One service account per job, each with only what that job does. Project-level grants are limited
# to Firestore (its IAM has no per-collection scope) and log writing; everything else is granted on
# the single topic, subscription, secret or service concerned.

# --- relay: the function that delivers ------------------------------------------------------------

resource "google_service_account" "relay" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-relay"
  display_name = "${var.name_prefix} relay function"
  description  = "Runtime identity of the relay: Firestore ledger, dead-letter and status topics, its own secrets."

  depends_on = [google_project_service.required]
}

resource "google_project_iam_member" "relay_firestore" {
  project = var.project_id
  role    = "roles/datastore.user" # read and write documents of the ledger
  member  = google_service_account.relay.member
}

resource "google_project_iam_member" "relay_log_writer" {
  project = var.project_id
  role    = "roles/logging.logWriter"
  member  = google_service_account.relay.member
}

resource "google_pubsub_topic_iam_member" "relay_publishes_dead_letters" {
  project = var.project_id
  topic   = google_pubsub_topic.dead_letter.name
  role    = "roles/pubsub.publisher"
  member  = google_service_account.relay.member
}

resource "google_pubsub_topic_iam_member" "relay_publishes_status" {
  project = var.project_id
  topic   = google_pubsub_topic.status.name
  role    = "roles/pubsub.publisher"
  member  = google_service_account.relay.member
}

resource "google_secret_manager_secret_iam_member" "relay_reads_its_secrets" {
  for_each = local.relay_secrets

  project   = var.project_id
  secret_id = google_secret_manager_secret.this[each.key].secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.relay.member
}

# --- pusher: the identity Pub/Sub pushes to the relay as ------------------------------------------

resource "google_service_account" "pusher" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-pusher"
  display_name = "${var.name_prefix} Pub/Sub push"
  description  = "Signs the OIDC token of the push subscription; the relay's only invoker."

  depends_on = [google_project_service.required]
}

# The relay is invokable by this account alone: no allUsers, no allAuthenticatedUsers.
resource "google_cloud_run_service_iam_member" "relay_invoker_pusher" {
  project  = var.project_id
  location = var.region
  service  = module.relay.service_name
  role     = "roles/run.invoker"
  member   = google_service_account.pusher.member
}

# Pub/Sub mints the push OIDC tokens as the pusher. Projects created before April 2021 need this
# grant explicitly; on newer ones it is redundant and harmless. Scoped to the one account.
resource "google_service_account_iam_member" "pubsub_agent_mints_pusher_tokens" {
  service_account_id = google_service_account.pusher.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = local.pubsub_service_agent
}

# --- ingest: the public webhook endpoint ----------------------------------------------------------

resource "google_service_account" "ingest" {
  count = var.ingest_enabled ? 1 : 0

  project      = var.project_id
  account_id   = "${var.name_prefix}-ingest"
  display_name = "${var.name_prefix} ingest function"
  description  = "Runtime identity of the ingest function: publishes to the alerts topic, reads its own secrets."

  depends_on = [google_project_service.required]
}

resource "google_pubsub_topic_iam_member" "ingest_publishes_alerts" {
  count = var.ingest_enabled ? 1 : 0

  project = var.project_id
  topic   = google_pubsub_topic.alerts.name
  role    = "roles/pubsub.publisher"
  member  = google_service_account.ingest[0].member
}

resource "google_project_iam_member" "ingest_log_writer" {
  count = var.ingest_enabled ? 1 : 0

  project = var.project_id
  role    = "roles/logging.logWriter"
  member  = google_service_account.ingest[0].member
}

resource "google_secret_manager_secret_iam_member" "ingest_reads_its_secrets" {
  for_each = local.ingest_secrets

  project   = var.project_id
  secret_id = google_secret_manager_secret.this[each.key].secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.ingest[0].member
}

# Cloud Monitoring webhook channels cannot send an OIDC token (nor any custom header), so the ingest
# endpoint must accept unauthenticated calls at the platform level. The function authenticates
# every request itself (token, Basic or bearer, compared in constant time) and refuses the rest
# with 401; it can do no more than publish a validated alert to the alerts topic.
resource "google_cloud_run_service_iam_member" "ingest_invoker_public" {
  # checkov:skip=CKV_GCP_102:Cloud Monitoring webhooks cannot authenticate with IAM; the ingest function checks its own credentials on every request.
  count = var.ingest_enabled ? 1 : 0

  project  = var.project_id
  location = var.region
  service  = module.ingest[0].service_name
  role     = "roles/run.invoker"
  member   = "allUsers"
}

# --- publisher: Argo exit handlers on GKE ---------------------------------------------------------

resource "google_service_account" "publisher" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-publisher"
  display_name = "${var.name_prefix} publisher (Argo exit handlers)"
  description  = "Used by alert-relay publish in Argo exit handlers through Workload Identity; publishes to the alerts topic only."

  depends_on = [google_project_service.required]
}

resource "google_pubsub_topic_iam_member" "publisher_publishes_alerts" {
  project = var.project_id
  topic   = google_pubsub_topic.alerts.name
  role    = "roles/pubsub.publisher"
  member  = google_service_account.publisher.member
}

resource "google_service_account_iam_member" "publisher_workload_identity" {
  for_each = toset(var.publisher_workload_identity_namespaces)

  service_account_id = google_service_account.publisher.name
  role               = "roles/iam.workloadIdentityUser"
  member             = "serviceAccount:${local.workload_identity_project_id}.svc.id.goog[${each.key}/${var.publisher_kubernetes_service_account}]"
}
