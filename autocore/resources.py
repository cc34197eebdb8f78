"""The toolkit's data files, found as package resources: never as paths relative to the source tree, which an
installed wheel does not have.

Every data file belongs to a package and is read through ``importlib.resources``. The demo stack is data of
``deployer.lab`` (the state contract, of ``deployer.state``). The top-level ``templates/`` folder (the CI/CD
components, which GitLab's CI/CD catalog wants in ``templates/`` at the repository's root, and the Jinja2 templates
of the HAProxy configuration and of a service's pipeline) is the data package ``TEMPLATES_PACKAGE``, which
``pyproject.toml`` maps onto that folder (``[tool.setuptools.package-dir]``). ``templates/`` has no ``__init__.py``,
so that package is a namespace package, in the wheel and in an editable install alike.
"""

from __future__ import annotations

import importlib.resources
import importlib.util
from pathlib import Path

from autocore.errors import ToolkitError

TEMPLATES_PACKAGE = "auto_toolkit_templates"  # templates/ in the source tree, a package of its own once installed


class ResourceNotFoundError(ToolkitError):
    """A data package of the toolkit is missing: the installation is incomplete."""


def package_folder(package: str) -> Path:
    """The folder on disk that holds the data of ``package`` (``importlib.resources.files``), for what needs a
    directory: Jinja2's ``FileSystemLoader``, a glob, a default shown in ``--help``. An installed wheel is always
    unpacked on disk. Raises ``ResourceNotFoundError`` when the package is not installed.

    For a namespace package (a data folder without ``__init__.py``, as ``templates/`` is) ``importlib.resources``
    gives a ``MultiplexedPath`` over its folders, which offers no public way to the folder itself, and on Python
    < 3.13 refuses the placeholder an editable install adds to its ``__path__`` (``NotADirectoryError``;
    python/importlib_resources#311). Its folder is then the one the import system found for it.
    """
    try:
        root = importlib.resources.files(package)
    except ModuleNotFoundError:
        raise ResourceNotFoundError(_missing(package)) from None
    except NotADirectoryError:
        root = None
    if isinstance(root, Path):
        return root
    spec = importlib.util.find_spec(package)
    locations = spec.submodule_search_locations if spec is not None else None
    folders = [Path(entry) for entry in locations or () if Path(entry).is_dir()]
    if not folders:
        raise ResourceNotFoundError(_missing(package))
    # Installed twice (a virtualenv with system site-packages, say), a namespace package spans both folders, in
    # sys.path order: the first is the one its installation's modules were imported from.
    return folders[0]


def _missing(package: str) -> str:
    return f"the toolkit's data package {package} is not installed: install auto-toolkit again"
