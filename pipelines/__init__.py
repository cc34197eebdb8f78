"""auto-pipelines: GitLab CI for services.

The toolkit's CI/CD components (``templates/``) rendered into a service's ``.gitlab-ci.yml``
(``render``), checked offline and through GitLab's own CI lint (``lint``), the Docker TLS files pushed
as CI/CD variables (``secrets push``) and deployments recorded in GitLab's Environments
(``deployment record``), through python-gitlab.
"""
