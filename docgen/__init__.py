"""docgen: the ``auto-docs`` documentation portal builder.

It validates the services' Swagger 2.0 / OpenAPI 3.x specs offline, converts and merges them into one
OpenAPI 3.1 document, and publishes a static Sphinx site (GitLab Pages) with the platform guide, every
service's own Markdown docs and a generated API reference. Services whose spec is broken are quarantined
(their docs are published with the reasons, their API reference is not); everything is cached by content
hash, so a rebuild redoes only what changed, and a rebuild where nothing changed does not start Sphinx.

Modules, from the command line down:

* ``cli``: the ``auto-docs`` command line (parse, call the library, print, exit codes);
* ``portal``: the build in stages (read, validate, scrub, merge, render, publish) with its cache;
* ``sitebuild``: the site's sources written incrementally, Sphinx run, the HTML published by a directory swap;
* ``site``: the portal as a Sphinx source tree (``conf.py``, generated pages, data files), in memory;
* ``merge``: each service's fragment of the portal's spec (routed, namespaced) and their combination;
* ``environment``: the live services of an environment (``--from-env``), as the environment-state service lists them;
* ``validate_many``: several spec files validated together (operationIds unique across services);
* ``convert``: any supported spec version to OpenAPI 3.1.0;
* ``swagger2``: Swagger 2.0 to OpenAPI 3.0;
* ``walk``: JSON pointers, ``$ref`` rewriting and a typed visitor of OpenAPI 3.x documents;
* ``sphinx_ext``: the Sphinx extension's entry point (what ``conf.py`` loads), registering the ``sphinx_*`` parts:
* ``sphinx_directives``: the directives and transforms that render the portal's pages from its data files;
* ``sphinx_api``: a service's API reference rendered as docutils nodes;
* ``sphinx_sanitise``: the lock-down of untrusted Markdown (no raw HTML, scripts, remote loads, file insertion,
  and a page nested too deep for docutils becomes a notice);
* ``sphinx_navigation``: the sidebar's tree, and every page rewritten when it changed;
* ``sphinx_blocks``: untrusted values as plain-text docutils nodes;
* ``sources``: reading each service's docs and spec from local paths or over verified HTTPS, within budgets;
* ``validate``: offline validation of one spec, every problem reported as an issue;
* ``scrub``: removing configured patterns (internal hosts, ...) from published Markdown and specs;
* ``manifest``: the portal's input (``services.yml``, a service's ``auto-service.yml``), checked, its local paths
  kept inside its folder;
* ``yamlout``: fast block-style YAML for JSON data (the ``openapi.yaml`` download);
* ``names``: what a service's name and version may be;
* ``errors``: docgen's exceptions and the exit codes they map to.
"""
