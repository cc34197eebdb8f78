{{ (cookiecutter.service_name ~ ((': ' ~ cookiecutter.description) if cookiecutter.description else '')) | py_str }}

SERVICE = {{ cookiecutter.service_slug | py_str }}
API_VERSION = {{ cookiecutter.api_version | py_str }}
__version__ = "0.1.0"
