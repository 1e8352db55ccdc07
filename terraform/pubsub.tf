# Topics: what publishers send to (alerts), what could not be delivered (dead-letter), and the relay's
# own downstream stream of normalised events (status, for routes with a pubsub receiver).

resource "google_pubsub_topic" "alerts" {
  # checkov:skip=CKV_GCP_83:Google-managed encryption at rest. Alert payloads carry no secrets, and a CMEK key would add a KMS key and key IAM for the Pub/Sub agent to a few-dollars-a-month system.
  name   = "${var.name_prefix}-alerts"
  labels = var.labels

  depends_on = [google_project_service.required]
}

resource "google_pubsub_topic" "dead_letter" {
  # checkov:skip=CKV_GCP_83:Google-managed encryption at rest, as for the alerts topic: dead letters are the same payloads.
  name   = "${var.name_prefix}-dead-letter"
  labels = var.labels

  depends_on = [google_project_service.required]
}

resource "google_pubsub_topic" "status" {
  # checkov:skip=CKV_GCP_83:Google-managed encryption at rest: the normalised alert events, no secrets.
  name   = "${var.name_prefix}-status"
  labels = var.labels

  depends_on = [google_project_service.required]
}

# The relay's only trigger: Pub/Sub pushes every message on the alerts topic to the relay's HTTP
# endpoint, authenticated with an OIDC token of the pusher service account (the only invoker). The
# relay answers 200 to ack, 503 to retry with backoff; after max_delivery_attempts the message moves
# to the dead-letter topic (the relay's last attempt dead-letters it itself, with the reason).
resource "google_pubsub_subscription" "relay_push" {
  name   = "${var.name_prefix}-relay-push"
  topic  = google_pubsub_topic.alerts.id
  labels = var.labels

  ack_deadline_seconds       = var.ack_deadline_seconds
  message_retention_duration = "604800s" # 7 days: alerts wait that long for a broken relay to be fixed

  push_config {
    push_endpoint = module.relay.uri

    oidc_token {
      service_account_email = google_service_account.pusher.email
      audience              = module.relay.uri
    }

    # The wrapped envelope (message, subscription, deliveryAttempt) the relay decodes.
    attributes = {
      x-goog-version = "v1"
    }
  }

  retry_policy {
    minimum_backoff = "${var.minimum_backoff_seconds}s"
    maximum_backoff = "${var.maximum_backoff_seconds}s"
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.dead_letter.id
    max_delivery_attempts = var.max_delivery_attempts
  }

  # A subscription without activity expires after 31 days by default: a quiet month must not
  # silently delete the relay's trigger.
  expiration_policy {
    ttl = ""
  }

  lifecycle {
    precondition {
      condition     = var.ack_deadline_seconds >= var.relay_function.timeout_seconds
      error_message = "ack_deadline_seconds must be at least relay_function.timeout_seconds, or Pub/Sub retries deliveries that are still running."
    }
    precondition {
      condition     = var.minimum_backoff_seconds <= var.maximum_backoff_seconds
      error_message = "minimum_backoff_seconds must not exceed maximum_backoff_seconds."
    }
  }

  # Pushes start at once: the pusher must already be allowed to invoke the relay.
  depends_on = [
    google_cloud_run_service_iam_member.relay_invoker_pusher,
    google_service_account_iam_member.pubsub_agent_mints_pusher_tokens,
  ]
}

# Dead-lettering is done by the Pub/Sub service agent: it must be able to publish to the dead-letter
# topic and to acknowledge the message it moved on the source subscription.
resource "google_pubsub_topic_iam_member" "dead_letter_publisher_pubsub_agent" {
  project = var.project_id
  topic   = google_pubsub_topic.dead_letter.name
  role    = "roles/pubsub.publisher"
  member  = local.pubsub_service_agent
}

resource "google_pubsub_subscription_iam_member" "relay_push_subscriber_pubsub_agent" {
  project      = var.project_id
  subscription = google_pubsub_subscription.relay_push.name
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_service_agent
}

# Keeps the dead letters: a topic without a subscription drops what is published to it. Nothing
# consumes it automatically; an operator inspects and replays (see README.md), and an alert policy
# watches its backlog.
resource "google_pubsub_subscription" "dead_letters" {
  name   = "${var.name_prefix}-dead-letters"
  topic  = google_pubsub_topic.dead_letter.id
  labels = var.labels

  ack_deadline_seconds       = 60
  message_retention_duration = "${var.dead_letter_retention_days * 86400}s"
  retain_acked_messages      = false

  expiration_policy {
    ttl = ""
  }
}
