"""pipelines: offline linting of GitLab CI files and CI/CD components (``auto-pipelines lint``)."""
