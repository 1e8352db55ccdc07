output "alerts_topic" {
  description = "Topic publishers send alerts to (projects/P/topics/T): alert-relay publish's ALERT_RELAY_TOPIC, Cloud Monitoring's pubsub channel."
  value       = google_pubsub_topic.alerts.id
}

output "dead_letter_topic" {
  description = "Topic of messages that could not be delivered (RELAY_DEAD_LETTER_TOPIC)."
  value       = google_pubsub_topic.dead_letter.id
}

output "status_topic" {
  description = "Downstream topic for routes with a pubsub receiver (use its short name in the routes file); the relay may publish only here and to the dead-letter topic."
  value       = google_pubsub_topic.status.id
}

output "push_subscription" {
  description = "Push subscription that delivers the alerts topic to the relay."
  value       = google_pubsub_subscription.relay_push.id
}

output "dead_letter_subscription" {
  description = "Pull subscription keeping the dead letters for inspection and replay (its backlog is what to alert on)."
  value       = google_pubsub_subscription.dead_letters.id
}

output "relay_uri" {
  description = "Relay endpoint (Cloud Run URI); only the pusher service account may invoke it."
  value       = module.relay.uri
}

output "relay_function" {
  description = "Relay function name (for gcloud functions logs read / describe)."
  value       = module.relay.name
}

output "ingest_url" {
  description = "Ingest endpoint for Cloud Monitoring webhook channels, Alertmanager and the publisher fallback (ALERT_RELAY_INGEST_URL); null when ingest_enabled is false."
  value       = one(module.ingest[*].uri)
}

output "ingest_function" {
  description = "Ingest function name; null when ingest_enabled is false."
  value       = one(module.ingest[*].name)
}

output "service_accounts" {
  description = "Service account e-mails by role: relay and ingest (function identities), pusher (push subscription OIDC), publisher (Argo exit handlers, Workload Identity annotation)."
  value = {
    relay     = google_service_account.relay.email
    ingest    = one(google_service_account.ingest[*].email)
    pusher    = google_service_account.pusher.email
    publisher = google_service_account.publisher.email
  }
}

output "secret_ids" {
  description = "Secret Manager secrets created empty, by the environment variable they feed: add a version to each (README.md) before the functions can start."
  value       = { for name, secret in google_secret_manager_secret.this : name => secret.secret_id }
}

output "source_bucket" {
  description = "Bucket holding the functions' content-addressed source archives."
  value       = google_storage_bucket.sources.name
}
