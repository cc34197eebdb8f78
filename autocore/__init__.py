"""What the three AUTO tools share, and nothing product-specific.

- ``errors``: the one exception base, which carries its exit code;
- ``cli``: the entry scaffold every command uses (one ``Error:`` line, exit codes, Ctrl-C and SIGTERM);
- ``text``: untrusted text made safe to display, one-line messages, JSON paths;
- ``names``: how names and addresses from outside are checked (whole match, no control character);
- ``loading``: strict JSON and YAML (duplicate keys refused, dates kept as written) within budgets;
- ``issues``: one problem found in one input, as linters and validators report it;
- ``files``: atomic file writes;
- ``ci_log``: GitLab collapsible log sections;
- ``runner``: commands as data and the one place that runs them.

This package imports no product package (``deployer``, ``docgen``, ``pipelines``); the contract is in
``pyproject.toml`` and checked by ``make lint``.
"""
