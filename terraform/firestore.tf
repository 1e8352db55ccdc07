# The ledger (shared/ledger/firestore.py): delivery claims, repeat windows, incidents (Slack message
# of each alert), events with their trace, and dead letters. Every document carries expires_at; a
# TTL policy per collection group deletes expired documents (within about a day of expiry).

locals {
  # Collections the FirestoreLedger writes, without the prefix (tests/test_terraform.py compares this
  # list with shared/ledger/firestore.py), and the events' trace subcollection group.
  ledger_collections    = ["deliveries", "repeats", "decisions", "events", "incidents", "dead_letters"]
  ledger_subcollections = ["trace"]
  ledger_ttl_field      = "expires_at"

  ledger_collection_groups = toset(concat(
    [for name in local.ledger_collections : "${var.ledger_collection_prefix}_${name}"],
    local.ledger_subcollections,
  ))

  firestore_database = var.firestore_create_database ? google_firestore_database.ledger[0].name : "(default)"
}

# Only the (default) database gets Firestore's free tier, which covers this ledger's traffic.
resource "google_firestore_database" "ledger" {
  count = var.firestore_create_database ? 1 : 0

  project                     = var.project_id
  name                        = "(default)"
  location_id                 = local.firestore_location
  type                        = "FIRESTORE_NATIVE"
  concurrency_mode            = "OPTIMISTIC"
  app_engine_integration_mode = "DISABLED"

  # The database outlives `terraform destroy` unless protection is lifted first: it holds the
  # incident state of every open alert.
  delete_protection_state = "DELETE_PROTECTION_ENABLED"
  deletion_policy         = "ABANDON"

  depends_on = [google_project_service.required]
}

resource "google_firestore_field" "ledger_ttl" {
  for_each = local.ledger_collection_groups

  project    = var.project_id
  database   = local.firestore_database
  collection = each.key
  field      = local.ledger_ttl_field

  ttl_config {}

  # No single-field indexes on expires_at: nothing queries it, and an indexed, ever-increasing
  # timestamp limits write throughput (Firestore's advice for TTL fields).
  index_config {}

  depends_on = [google_project_service.required]
}
