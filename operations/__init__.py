"""Running the pipeline: the local Prefect server, the deployments of prefect.yaml, the production setup."""
