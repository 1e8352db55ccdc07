# Source archives of the functions: content-addressed objects (modules/python_function), never
# public. Objects are never overwritten; versioning keeps a deleted one recoverable.
resource "google_storage_bucket" "sources" {
  # checkov:skip=CKV_GCP_62:Holds only the functions' source archives, written by Terraform; access logging would need a second bucket for no data worth auditing, and admin activity is in Cloud Audit Logs.
  project  = var.project_id
  name     = "${var.project_id}-${var.name_prefix}-sources"
  location = var.region
  labels   = var.labels

  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = true # only rebuildable archives live here

  versioning {
    enabled = true
  }

  lifecycle_rule {
    condition {
      days_since_noncurrent_time = 30
    }
    action {
      type = "Delete"
    }
  }

  depends_on = [google_project_service.required]
}

# The relay: invoked only by the push subscription (pubsub.tf), as the pusher service account.
module "relay" {
  # checkov:skip=CKV_GCP_124:Network ingress stays open so that Pub/Sub push reaches it for sure; invocation is IAM-only (the pusher service account's OIDC token), never allUsers (iam.tf).
  source = "./modules/python_function"

  project_id  = var.project_id
  region      = var.region
  name        = "${var.name_prefix}-relay"
  description = "Relays alerts from the ${google_pubsub_topic.alerts.name} push subscription to Slack, Pub/Sub and webhooks."
  entry_point = "relay"

  function_dir      = "${local.repo_root}/functions/relay"
  shared_dir        = "${local.repo_root}/shared"
  requirements_file = "${local.repo_root}/requirements.txt"
  # The operator's routes, at the archive root (not under shared/, which ships exactly as it is).
  extra_files = {
    (local.routes_archive_name) = var.routes_file
  }

  source_bucket         = google_storage_bucket.sources.name
  service_account_email = google_service_account.relay.email
  build_service_account = var.build_service_account
  ingress_settings      = var.relay_ingress

  available_memory   = var.relay_function.available_memory
  timeout_seconds    = var.relay_function.timeout_seconds
  max_instance_count = var.relay_function.max_instance_count
  min_instance_count = var.relay_function.min_instance_count

  environment_variables = {
    RELAY_ROUTES                = local.routes_path
    RELAY_LEDGER                = "firestore"
    RELAY_FIRESTORE_DATABASE    = local.firestore_database
    RELAY_FIRESTORE_PREFIX      = var.ledger_collection_prefix
    RELAY_LEDGER_RETENTION_DAYS = tostring(var.ledger_retention_days)
    RELAY_DEAD_LETTER_TOPIC     = google_pubsub_topic.dead_letter.id
    RELAY_MAX_ATTEMPTS          = tostring(var.max_delivery_attempts)
    GOOGLE_CLOUD_PROJECT        = var.project_id
    RELAY_LOG_LEVEL             = var.log_level
  }

  # Built from the accessor bindings, so the function deploys only once it may read each secret
  # (a module-level depends_on would defer reading the source archive to apply time).
  secret_environment_variables = {
    for name, binding in google_secret_manager_secret_iam_member.relay_reads_its_secrets : name => {
      secret  = google_secret_manager_secret.this[name].secret_id
      version = "latest"
    }
  }

  labels = var.labels
}

# The ingest function: public endpoint for webhooks that cannot carry an OIDC token (iam.tf); it
# authenticates every request itself and publishes to the alerts topic.
module "ingest" {
  # checkov:skip=CKV_GCP_124:Cloud Monitoring webhook channels and Alertmanager call from outside Google Cloud; the function authenticates every request itself (iam.tf).
  source = "./modules/python_function"
  count  = var.ingest_enabled ? 1 : 0

  project_id  = var.project_id
  region      = var.region
  name        = "${var.name_prefix}-ingest"
  description = "Authenticated webhooks (Cloud Monitoring, Alertmanager, publisher fallback) to the ${google_pubsub_topic.alerts.name} topic."
  entry_point = "ingest"

  function_dir      = "${local.repo_root}/functions/ingest"
  shared_dir        = "${local.repo_root}/shared"
  requirements_file = "${local.repo_root}/requirements.txt"

  source_bucket         = google_storage_bucket.sources.name
  service_account_email = google_service_account.ingest[0].email
  build_service_account = var.build_service_account
  ingress_settings      = "ALLOW_ALL" # Cloud Monitoring and Alertmanager call it from outside

  available_memory   = var.ingest_function.available_memory
  timeout_seconds    = var.ingest_function.timeout_seconds
  max_instance_count = var.ingest_function.max_instance_count
  min_instance_count = var.ingest_function.min_instance_count

  environment_variables = merge(
    {
      RELAY_ALERTS_TOPIC   = google_pubsub_topic.alerts.id
      GOOGLE_CLOUD_PROJECT = var.project_id
      RELAY_LOG_LEVEL      = var.log_level
    },
    contains(var.ingest_auth_methods, "basic") ? { INGEST_BASIC_USER = var.ingest_basic_user } : {},
  )

  secret_environment_variables = {
    for name, binding in google_secret_manager_secret_iam_member.ingest_reads_its_secrets : name => {
      secret  = google_secret_manager_secret.this[name].secret_id
      version = "latest"
    }
  }

  labels = var.labels
}
