variable "project_id" {
  description = "Project of the function and of its secrets."
  type        = string
}

variable "region" {
  description = "Region of the function."
  type        = string
}

variable "name" {
  description = "Function name (also the Cloud Run service name and the source objects' folder)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,48}[a-z0-9]$", var.name))
    error_message = "name must be 2-50 lowercase letters, digits or hyphens, start with a letter and not end with a hyphen."
  }
}

variable "description" {
  description = "What the function does (shown in the console)."
  type        = string
  default     = ""
}

variable "entry_point" {
  description = "Name of the decorated function in main.py."
  type        = string
}

variable "runtime" {
  description = "Python runtime of the function."
  type        = string
  default     = "python311"

  validation {
    condition     = can(regex("^python3[0-9]{2}$", var.runtime))
    error_message = "runtime must be a Python runtime such as python311."
  }
}

variable "function_dir" {
  description = "Folder holding the function's main.py (functions/<name>)."
  type        = string
}

variable "shared_dir" {
  description = "Folder of the shared package, shipped as shared/ next to main.py."
  type        = string
}

variable "requirements_file" {
  description = "The pinned runtime requirements, shipped as requirements.txt."
  type        = string
}

variable "extra_files" {
  description = "More files for the archive root: archive name => path of a UTF-8 text file."
  type        = map(string)
  default     = {}

  validation {
    condition = alltrue([
      for name in keys(var.extra_files) :
      name != "main.py" && name != "requirements.txt" && !startswith(name, "shared/") && !startswith(name, "/")
    ])
    error_message = "extra_files must not replace main.py, requirements.txt or anything under shared/, and names are relative."
  }
}

variable "source_bucket" {
  description = "Bucket that receives the content-addressed source archives."
  type        = string
}

variable "service_account_email" {
  description = "Runtime identity of the function (a dedicated, least-privilege service account)."
  type        = string
}

variable "build_service_account" {
  description = "Build service account (projects/PROJECT/serviceAccounts/EMAIL); null: the project default."
  type        = string
  default     = null
}

variable "available_memory" {
  description = "Memory per instance, e.g. 256M."
  type        = string
  default     = "256M"
}

variable "timeout_seconds" {
  description = "Longest time one request may take."
  type        = number
  default     = 60
}

variable "max_instance_count" {
  description = "Most instances at once."
  type        = number
  default     = 3
}

variable "min_instance_count" {
  description = "Instances kept warm (0: scale to zero)."
  type        = number
  default     = 0
}

variable "ingress_settings" {
  description = "Who can reach the endpoint at the network level."
  type        = string
  default     = "ALLOW_INTERNAL_ONLY"

  validation {
    condition     = contains(["ALLOW_ALL", "ALLOW_INTERNAL_ONLY", "ALLOW_INTERNAL_AND_GCLB"], var.ingress_settings)
    error_message = "ingress_settings must be ALLOW_ALL, ALLOW_INTERNAL_ONLY or ALLOW_INTERNAL_AND_GCLB."
  }
}

variable "environment_variables" {
  description = "Plain environment variables. Never secrets: use secret_environment_variables."
  type        = map(string)
  default     = {}

  validation {
    condition = alltrue([
      for name in keys(var.environment_variables) :
      length(regexall("(TOKEN|PASSWORD|SECRET|WEBHOOK_URL)", upper(name))) == 0
    ])
    error_message = "environment_variables must not carry secrets (names with TOKEN, PASSWORD, SECRET or WEBHOOK_URL): use secret_environment_variables."
  }
}

variable "secret_environment_variables" {
  description = "Environment variable name => Secret Manager secret (ID in project_id) and version, resolved when an instance starts."
  type = map(object({
    secret  = string
    version = optional(string, "latest")
  }))
  default = {}
}

variable "labels" {
  description = "Labels of the function."
  type        = map(string)
  default     = {}
}
