output "name" {
  description = "Function name."
  value       = google_cloudfunctions2_function.this.name
}

output "id" {
  description = "Function resource ID (projects/P/locations/R/functions/NAME)."
  value       = google_cloudfunctions2_function.this.id
}

output "uri" {
  description = "HTTPS endpoint of the function's Cloud Run service (run.app): push endpoints and OIDC audiences use it."
  value       = google_cloudfunctions2_function.this.service_config[0].uri
}

output "url" {
  description = "The function's cloudfunctions.net URL (same service)."
  value       = google_cloudfunctions2_function.this.url
}

output "service_name" {
  description = "Name of the Cloud Run service behind the function: run.invoker bindings go on it."
  value       = google_cloudfunctions2_function.this.service_config[0].service
}

output "source_object" {
  description = "Storage object holding the deployed source archive (named by its MD5)."
  value       = google_storage_bucket_object.source.name
}

output "source_md5" {
  description = "MD5 of the deployed source archive."
  value       = data.archive_file.source.output_md5
}
