"""{{ cookiecutter.service_name }}: {{ cookiecutter.description }}"""

SERVICE = "{{ cookiecutter.service_slug }}"
API_VERSION = "{{ cookiecutter.api_version }}"
__version__ = "0.1.0"
