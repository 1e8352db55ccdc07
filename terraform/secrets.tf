# Secrets are created EMPTY: Terraform never sees a secret value, so none ends up in the state or
# the plan. The operator adds each value out of band (README.md, "Secrets"):
#
#   printf %s "$VALUE" | gcloud secrets versions add SECRET_ID --data-file=- --project PROJECT
#
# Functions read them as secret_environment_variables (version "latest", resolved when an instance
# starts), under the environment variable name that is the key of local.secrets.

locals {
  # Every secret the functions can use: environment variable => function, secret ID, whether wanted.
  secret_catalog = {
    SLACK_BOT_TOKEN = {
      function  = "relay"
      secret_id = coalesce(var.slack_bot_token_secret_id, "${var.name_prefix}-slack-bot-token")
      enabled   = var.slack_mode == "bot_token"
    }
    SLACK_WEBHOOK_URL = {
      function  = "relay"
      secret_id = coalesce(var.slack_webhook_url_secret_id, "${var.name_prefix}-slack-webhook-url")
      enabled   = var.slack_mode == "webhook"
    }
    INGEST_TOKEN = {
      function  = "ingest"
      secret_id = coalesce(var.ingest_token_secret_id, "${var.name_prefix}-ingest-token")
      enabled   = var.ingest_enabled && contains(var.ingest_auth_methods, "bearer")
    }
    INGEST_MONITORING_TOKEN = {
      function  = "ingest"
      secret_id = coalesce(var.ingest_monitoring_token_secret_id, "${var.name_prefix}-ingest-monitoring-token")
      enabled   = var.ingest_enabled && contains(var.ingest_auth_methods, "monitoring_token")
    }
    INGEST_BASIC_PASSWORD = {
      function  = "ingest"
      secret_id = coalesce(var.ingest_basic_password_secret_id, "${var.name_prefix}-ingest-basic-password")
      enabled   = var.ingest_enabled && contains(var.ingest_auth_methods, "basic")
    }
  }

  # HMAC keys of the routes file's webhook receivers (secret_env), read by the relay under that name.
  webhook_signing_secrets = {
    for name in var.webhook_signing_secret_envs : name => {
      function  = "relay"
      secret_id = "${var.name_prefix}-${replace(lower(name), "_", "-")}"
      enabled   = true
    }
  }

  secrets = {
    for name, secret in merge(local.secret_catalog, local.webhook_signing_secrets) :
    name => secret if secret.enabled
  }

  relay_secrets  = { for name, secret in local.secrets : name => secret if secret.function == "relay" }
  ingest_secrets = { for name, secret in local.secrets : name => secret if secret.function == "ingest" }
}

resource "google_secret_manager_secret" "this" {
  for_each = local.secrets

  project   = var.project_id
  secret_id = each.value.secret_id
  labels    = merge(var.labels, { function = each.value.function })

  replication {
    auto {}
  }

  depends_on = [google_project_service.required]
}
