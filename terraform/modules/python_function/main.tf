# One Python Cloud Function (gen2) built from this repository's layout:
#
#   main.py            <- <function_dir>/main.py
#   shared/**          <- every file of <shared_dir>, except __pycache__/ folders and *.pyc files
#   requirements.txt   <- <requirements_file>
#   <extra_files>      <- each extra file under its archive name (e.g. the relay's routes.yaml)
#
# This mirrors localdev.package.deployable_files(), the one definition of a function's source;
# tests/test_terraform.py evaluates the patterns below against the repository and compares.

locals {
  shared_pattern  = "**"
  shared_excluded = "(^|/)__pycache__/|[.]pyc$"

  shared_files = toset([
    for file in fileset(var.shared_dir, local.shared_pattern) : file
    if length(regexall(local.shared_excluded, file)) == 0
  ])
}

# The archive is built at plan time and its bytes are deterministic (the provider zeroes timestamps;
# output_file_mode pins permissions), so output_md5 changes exactly when a deployed file changes.
# file() reads UTF-8 text only: shared/ must hold text files (tests/test_terraform.py checks it).
data "archive_file" "source" {
  type             = "zip"
  output_path      = "${path.root}/.terraform/archives/${var.name}.zip"
  output_file_mode = "0644"

  source {
    content  = file("${var.function_dir}/main.py")
    filename = "main.py"
  }

  dynamic "source" {
    for_each = local.shared_files
    content {
      content  = file("${var.shared_dir}/${source.value}")
      filename = "shared/${source.value}"
    }
  }

  source {
    content  = file(var.requirements_file)
    filename = "requirements.txt"
  }

  dynamic "source" {
    for_each = var.extra_files
    content {
      content  = file(source.value)
      filename = source.key
    }
  }
}

# Content-addressed: a new archive is a new object name, which changes the function's build source
# and so redeploys it; an unchanged source never does.
resource "google_storage_bucket_object" "source" {
  name         = "${var.name}/${data.archive_file.source.output_md5}.zip"
  bucket       = var.source_bucket
  source       = data.archive_file.source.output_path
  content_type = "application/zip"
}

resource "google_cloudfunctions2_function" "this" {
  project     = var.project_id
  location    = var.region
  name        = var.name
  description = var.description
  labels      = var.labels

  build_config {
    runtime         = var.runtime
    entry_point     = var.entry_point
    service_account = var.build_service_account

    source {
      storage_source {
        bucket = var.source_bucket
        object = google_storage_bucket_object.source.name
      }
    }
  }

  # HTTP only: no event_trigger. Callers decide who may invoke the service (run.invoker IAM).
  service_config {
    available_memory                 = var.available_memory
    timeout_seconds                  = var.timeout_seconds
    max_instance_count               = var.max_instance_count
    min_instance_count               = var.min_instance_count
    max_instance_request_concurrency = 1
    ingress_settings                 = var.ingress_settings
    all_traffic_on_latest_revision   = true
    service_account_email            = var.service_account_email

    # LOG_EXECUTION_ID is read by functions-framework. The platform sets it to "true" when it is
    # absent (a permanent plan diff); "false" keeps stdout exactly as the tests exercise it.
    environment_variables = merge({ LOG_EXECUTION_ID = "false" }, var.environment_variables)

    # Secrets reach the function only as references, resolved by Cloud Run at instance start.
    dynamic "secret_environment_variables" {
      for_each = var.secret_environment_variables
      content {
        key        = secret_environment_variables.key
        project_id = var.project_id
        secret     = secret_environment_variables.value.secret
        version    = secret_environment_variables.value.version
      }
    }
  }
}
