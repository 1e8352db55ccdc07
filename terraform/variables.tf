# --- Project and naming ---------------------------------------------------------------------------

variable "project_id" {
  description = "Google Cloud project that hosts the relay (topics, functions, Firestore ledger, secrets)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a project ID (6-30 lowercase letters, digits, hyphens), not a project number."
  }
}

variable "region" {
  description = "Region of the functions, the source bucket and (unless firestore_location is set) the Firestore database."
  type        = string
  default     = "europe-west1"

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]$", var.region))
    error_message = "region must be a Google Cloud region such as europe-west1."
  }
}

variable "name_prefix" {
  description = "Prefix of every resource name (topics, functions, service accounts, secrets). At most 20 characters, so that service account IDs stay within 30."
  type        = string
  default     = "alert-relay"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{2,18}[a-z0-9]$", var.name_prefix))
    error_message = "name_prefix must be 4-20 lowercase letters, digits or hyphens, start with a letter and not end with a hyphen."
  }
}

variable "labels" {
  description = "Extra labels for the resources that take labels."
  type        = map(string)
  default     = {}
}

# --- Routing --------------------------------------------------------------------------------------

variable "routes_file" {
  description = "Path (absolute, or relative to the directory Terraform runs in) of the routes YAML file. It is shipped inside the relay's source archive as routes.yaml, so changing it redeploys the relay. Check it first with `alert-relay routes test --routes FILE PAYLOAD`."
  type        = string

  validation {
    condition     = fileexists(var.routes_file)
    error_message = "routes_file must name an existing file."
  }

  validation {
    condition     = can(yamldecode(file(var.routes_file)).version)
    error_message = "routes_file must be a YAML routes file with a top-level version key."
  }
}

# --- Slack and other secrets ----------------------------------------------------------------------

variable "slack_mode" {
  description = "How the relay posts to Slack: bot_token (chat.postMessage; one message per incident, updated in place), webhook (an incoming webhook's fixed channel), or none (the routes use no Slack receiver). Selects which Slack secret is created and wired."
  type        = string
  default     = "bot_token"

  validation {
    condition     = contains(["bot_token", "webhook", "none"], var.slack_mode)
    error_message = "slack_mode must be bot_token, webhook or none."
  }
}

variable "slack_bot_token_secret_id" {
  description = "Secret Manager secret ID for the Slack bot token (slack_mode = bot_token). Terraform creates the secret empty; add the value with `gcloud secrets versions add`. Default: <name_prefix>-slack-bot-token."
  type        = string
  default     = null

  validation {
    condition     = var.slack_bot_token_secret_id == null || can(regex("^[A-Za-z0-9_-]{1,255}$", var.slack_bot_token_secret_id))
    error_message = "slack_bot_token_secret_id may contain only letters, digits, underscores and hyphens."
  }
}

variable "slack_webhook_url_secret_id" {
  description = "Secret Manager secret ID for the Slack incoming webhook URL (slack_mode = webhook). Created empty. Default: <name_prefix>-slack-webhook-url."
  type        = string
  default     = null

  validation {
    condition     = var.slack_webhook_url_secret_id == null || can(regex("^[A-Za-z0-9_-]{1,255}$", var.slack_webhook_url_secret_id))
    error_message = "slack_webhook_url_secret_id may contain only letters, digits, underscores and hyphens."
  }
}

variable "webhook_signing_secret_envs" {
  description = "Environment variable names that the routes file's webhook receivers name in secret_env (HMAC signing keys). Each gets an empty secret <name_prefix>-<name in lower case, _ as ->, exposed to the relay under that name."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for name in var.webhook_signing_secret_envs : can(regex("^[A-Z][A-Z0-9_]{0,63}$", name))])
    error_message = "webhook_signing_secret_envs must be upper-case environment variable names (A-Z, 0-9, _)."
  }

  validation {
    condition = alltrue([
      for name in var.webhook_signing_secret_envs :
      !startswith(name, "RELAY_") && !startswith(name, "SLACK_") && !startswith(name, "GOOGLE_") && !startswith(name, "INGEST_") && !startswith(name, "K_")
    ])
    error_message = "webhook_signing_secret_envs must not use the RELAY_, SLACK_, GOOGLE_, INGEST_ or K_ prefixes: those belong to the relay's settings and the platform."
  }
}

# --- Ingest function ------------------------------------------------------------------------------

variable "ingest_enabled" {
  description = "Deploy the ingest function (Cloud Monitoring and Alertmanager webhooks, the publisher's fallback path)."
  type        = bool
  default     = true
}

variable "ingest_auth_methods" {
  description = "Credentials the ingest function accepts, each backed by its own secret: bearer (INGEST_TOKEN: alert-relay publish, Alertmanager authorization), monitoring_token (INGEST_MONITORING_TOKEN: the auth_token query parameter of a Cloud Monitoring webhook_tokenauth channel), basic (INGEST_BASIC_USER / INGEST_BASIC_PASSWORD: webhook_basicauth, Alertmanager basic_auth)."
  type        = set(string)
  default     = ["bearer", "monitoring_token"]

  validation {
    condition     = length(var.ingest_auth_methods) > 0 && length(setsubtract(var.ingest_auth_methods, ["bearer", "monitoring_token", "basic"])) == 0
    error_message = "ingest_auth_methods must be a non-empty subset of bearer, monitoring_token and basic: the ingest function never accepts unauthenticated requests."
  }
}

variable "ingest_basic_user" {
  description = "User name for HTTP Basic authentication (ingest_auth_methods contains basic). Not a secret; the password is."
  type        = string
  default     = "alert-relay"

  validation {
    condition     = can(regex("^[^:\\s]{1,64}$", var.ingest_basic_user))
    error_message = "ingest_basic_user must be 1-64 characters without colons or white space."
  }
}

variable "ingest_token_secret_id" {
  description = "Secret ID of the ingest bearer token (bearer). Created empty. Default: <name_prefix>-ingest-token."
  type        = string
  default     = null

  validation {
    condition     = var.ingest_token_secret_id == null || can(regex("^[A-Za-z0-9_-]{1,255}$", var.ingest_token_secret_id))
    error_message = "ingest_token_secret_id may contain only letters, digits, underscores and hyphens."
  }
}

variable "ingest_monitoring_token_secret_id" {
  description = "Secret ID of the Cloud Monitoring webhook token (monitoring_token). Created empty. Default: <name_prefix>-ingest-monitoring-token."
  type        = string
  default     = null

  validation {
    condition     = var.ingest_monitoring_token_secret_id == null || can(regex("^[A-Za-z0-9_-]{1,255}$", var.ingest_monitoring_token_secret_id))
    error_message = "ingest_monitoring_token_secret_id may contain only letters, digits, underscores and hyphens."
  }
}

variable "ingest_basic_password_secret_id" {
  description = "Secret ID of the HTTP Basic password (basic). Created empty. Default: <name_prefix>-ingest-basic-password."
  type        = string
  default     = null

  validation {
    condition     = var.ingest_basic_password_secret_id == null || can(regex("^[A-Za-z0-9_-]{1,255}$", var.ingest_basic_password_secret_id))
    error_message = "ingest_basic_password_secret_id may contain only letters, digits, underscores and hyphens."
  }
}

# --- Delivery: push subscription and dead letters -------------------------------------------------

variable "max_delivery_attempts" {
  description = "Delivery attempts before a message is dead-lettered (the push subscription's dead_letter_policy). Also passed to the relay as RELAY_MAX_ATTEMPTS, so the last attempt dead-letters itself with the reason."
  type        = number
  default     = 10

  validation {
    condition     = var.max_delivery_attempts >= 5 && var.max_delivery_attempts <= 100 && floor(var.max_delivery_attempts) == var.max_delivery_attempts
    error_message = "max_delivery_attempts must be a whole number from 5 to 100 (Pub/Sub's limits)."
  }
}

variable "ack_deadline_seconds" {
  description = "Seconds Pub/Sub waits for the relay's answer before it counts the push as failed. Must be at least the relay's timeout, or a slow but successful delivery is retried."
  type        = number
  default     = 120

  validation {
    condition     = var.ack_deadline_seconds >= 10 && var.ack_deadline_seconds <= 600
    error_message = "ack_deadline_seconds must be from 10 to 600."
  }
}

variable "minimum_backoff_seconds" {
  description = "Shortest wait before Pub/Sub redelivers a message the relay answered 503 to."
  type        = number
  default     = 10

  validation {
    condition     = var.minimum_backoff_seconds >= 0 && var.minimum_backoff_seconds <= 600
    error_message = "minimum_backoff_seconds must be from 0 to 600."
  }
}

variable "maximum_backoff_seconds" {
  description = "Longest wait between redeliveries (the backoff grows exponentially up to it)."
  type        = number
  default     = 600

  validation {
    condition     = var.maximum_backoff_seconds >= 0 && var.maximum_backoff_seconds <= 600
    error_message = "maximum_backoff_seconds must be from 0 to 600."
  }
}

variable "dead_letter_retention_days" {
  description = "How long the dead-letter subscription keeps unacknowledged dead letters for inspection and replay."
  type        = number
  default     = 7

  validation {
    condition     = var.dead_letter_retention_days >= 1 && var.dead_letter_retention_days <= 31
    error_message = "dead_letter_retention_days must be from 1 to 31 (Pub/Sub's limit)."
  }
}

# --- Functions ------------------------------------------------------------------------------------

variable "relay_function" {
  description = "Sizing of the relay function. One request per instance (Python); max_instance_count bounds concurrency towards Slack and Firestore."
  type = object({
    available_memory   = optional(string, "512M")
    timeout_seconds    = optional(number, 60)
    max_instance_count = optional(number, 5)
    min_instance_count = optional(number, 0)
  })
  default = {}

  validation {
    condition     = can(regex("^[0-9]+(M|Mi|G|Gi)$", var.relay_function.available_memory))
    error_message = "relay_function.available_memory must look like 256M, 512M or 1Gi."
  }

  validation {
    condition     = var.relay_function.timeout_seconds >= 10 && var.relay_function.timeout_seconds <= 540
    error_message = "relay_function.timeout_seconds must be from 10 to 540."
  }

  validation {
    condition     = var.relay_function.max_instance_count >= 1 && var.relay_function.min_instance_count >= 0 && var.relay_function.min_instance_count <= var.relay_function.max_instance_count
    error_message = "relay_function needs max_instance_count >= 1 and 0 <= min_instance_count <= max_instance_count."
  }
}

variable "ingest_function" {
  description = "Sizing of the ingest function."
  type = object({
    available_memory   = optional(string, "256M")
    timeout_seconds    = optional(number, 30)
    max_instance_count = optional(number, 3)
    min_instance_count = optional(number, 0)
  })
  default = {}

  validation {
    condition     = can(regex("^[0-9]+(M|Mi|G|Gi)$", var.ingest_function.available_memory))
    error_message = "ingest_function.available_memory must look like 256M, 512M or 1Gi."
  }

  validation {
    condition     = var.ingest_function.timeout_seconds >= 5 && var.ingest_function.timeout_seconds <= 540
    error_message = "ingest_function.timeout_seconds must be from 5 to 540."
  }

  validation {
    condition     = var.ingest_function.max_instance_count >= 1 && var.ingest_function.min_instance_count >= 0 && var.ingest_function.min_instance_count <= var.ingest_function.max_instance_count
    error_message = "ingest_function needs max_instance_count >= 1 and 0 <= min_instance_count <= max_instance_count."
  }
}

variable "relay_ingress" {
  description = "Network ingress of the relay. ALLOW_ALL is the setting known to work with Pub/Sub push; IAM still admits only the pusher service account (OIDC), so nobody else can invoke it. ALLOW_INTERNAL_ONLY is a hardening to try once the first test alert went through: Cloud Run may count a push from the same project as internal."
  type        = string
  default     = "ALLOW_ALL"

  validation {
    condition     = contains(["ALLOW_ALL", "ALLOW_INTERNAL_ONLY", "ALLOW_INTERNAL_AND_GCLB"], var.relay_ingress)
    error_message = "relay_ingress must be ALLOW_ALL, ALLOW_INTERNAL_ONLY or ALLOW_INTERNAL_AND_GCLB."
  }
}

variable "log_level" {
  description = "RELAY_LOG_LEVEL of both functions."
  type        = string
  default     = "INFO"

  validation {
    condition     = contains(["DEBUG", "INFO", "WARNING", "ERROR"], var.log_level)
    error_message = "log_level must be DEBUG, INFO, WARNING or ERROR."
  }
}

variable "build_service_account" {
  description = "Service account Cloud Build uses to build the functions, as projects/PROJECT/serviceAccounts/EMAIL. Null: the project's default build service account."
  type        = string
  default     = null

  validation {
    condition     = var.build_service_account == null || can(regex("^projects/[^/]+/serviceAccounts/[^/]+@[^/]+$", var.build_service_account))
    error_message = "build_service_account must be projects/PROJECT/serviceAccounts/EMAIL."
  }
}

# --- Ledger (Firestore) ---------------------------------------------------------------------------

variable "firestore_create_database" {
  description = "Create the project's (default) Firestore database in Native mode. Set false when the project already has one (it must be Native mode); only the (default) database gets the free tier."
  type        = bool
  default     = true
}

variable "firestore_location" {
  description = "Location of the (default) Firestore database (a region such as europe-west1, or a multi-region such as eur3). Null: var.region. Cannot change after creation."
  type        = string
  default     = null
}

variable "ledger_collection_prefix" {
  description = "Prefix of the ledger's Firestore collections (RELAY_FIRESTORE_PREFIX); two deployments in one project need different prefixes."
  type        = string
  default     = "alert_relay"

  validation {
    condition     = can(regex("^[A-Za-z][A-Za-z0-9_]{0,40}$", var.ledger_collection_prefix))
    error_message = "ledger_collection_prefix must start with a letter and hold at most 41 letters, digits or underscores."
  }
}

variable "ledger_retention_days" {
  description = "Days delivery records, incidents and traces are kept (RELAY_LEDGER_RETENTION_DAYS); a Firestore TTL policy on expires_at deletes them afterwards."
  type        = number
  default     = 30

  validation {
    condition     = var.ledger_retention_days >= 1 && var.ledger_retention_days <= 3650
    error_message = "ledger_retention_days must be from 1 to 3650."
  }
}

# --- Monitoring and publishers --------------------------------------------------------------------

variable "alert_email" {
  description = "E-mail address for alerts about the relay itself (dead-letter backlog, undelivered events): a channel that does not depend on the relay."
  type        = string

  validation {
    condition     = can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", var.alert_email))
    error_message = "alert_email must be an e-mail address."
  }
}

variable "publisher_workload_identity_namespaces" {
  description = "Kubernetes namespaces whose publisher ServiceAccount may act as the publisher service account through Workload Identity (one binding each). Empty: no binding (the cluster's workload pool must exist for a binding to be created)."
  type        = list(string)
  default     = ["argo"]

  validation {
    condition     = alltrue([for ns in var.publisher_workload_identity_namespaces : can(regex("^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", ns))])
    error_message = "publisher_workload_identity_namespaces must be Kubernetes namespace names."
  }
}

variable "publisher_kubernetes_service_account" {
  description = "Name of the Kubernetes ServiceAccount the exit-handler pods run as (argo/exit-handler-workflowtemplate.yaml)."
  type        = string
  default     = "alert-relay-publisher"
}

variable "workload_identity_project_id" {
  description = "Project of the GKE cluster's workload identity pool (<project>.svc.id.goog). Null: project_id."
  type        = string
  default     = null
}
