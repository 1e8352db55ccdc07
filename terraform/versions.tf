terraform {
  # 1.5: check blocks, strcontains(); preconditions need 1.2, optional() defaults 1.3.
  required_version = ">= 1.5"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 6.0"
    }
    archive = {
      source  = "hashicorp/archive"
      version = "~> 2.4"
    }
  }
}

provider "google" {
  project = var.project_id
  region  = var.region

  default_labels = {
    app        = var.name_prefix
    managed-by = "terraform"
  }
}
