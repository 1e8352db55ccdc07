data "google_project" "this" {
  project_id = var.project_id
}

locals {
  # The repository root: the functions' code, shared/ and requirements.txt live there.
  repo_root = abspath("${path.module}/..")

  # Google-managed service agents of this project.
  pubsub_service_agent = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"

  firestore_location           = coalesce(var.firestore_location, var.region)
  workload_identity_project_id = coalesce(var.workload_identity_project_id, var.project_id)

  # Where the relay finds the routes file: Cloud Functions unpacks the source archive in /workspace,
  # and functions.tf adds the operator's routes file to the relay's archive under this name.
  routes_archive_name = "routes.yaml"
  routes_path         = "/workspace/${local.routes_archive_name}"

  required_apis = toset([
    "artifactregistry.googleapis.com", # images built from the function sources
    "cloudbuild.googleapis.com",
    "cloudfunctions.googleapis.com",
    "cloudresourcemanager.googleapis.com", # data.google_project
    "firestore.googleapis.com",
    "iam.googleapis.com",
    "logging.googleapis.com",
    "monitoring.googleapis.com",
    "pubsub.googleapis.com",
    "run.googleapis.com", # gen2 functions are Cloud Run services
    "secretmanager.googleapis.com",
    "storage.googleapis.com",
  ])
}

resource "google_project_service" "required" {
  for_each = local.required_apis

  project = var.project_id
  service = each.key

  # Other workloads in the project may use these APIs too: destroying the relay leaves them on.
  disable_on_destroy = false
}
