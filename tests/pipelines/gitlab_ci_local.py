"""gitlab-ci-local as the suite drives it: commands as data, one runner, and the git set-up it needs.

gitlab-ci-local (npm, pinned by ``make gitlab-ci-local`` into ``.cache/node``) runs a project's real
``.gitlab-ci.yml`` with the shell executor. It reads the project from git: the files must be committed,
``CI_COMMIT_BRANCH`` is the checked-out branch, ``CI_DEFAULT_BRANCH`` comes from ``origin/HEAD`` and
``CI_SERVER_FQDN`` from the ``origin`` URL. A ``component: $CI_SERVER_FQDN/auto/toolkit/NAME@1`` include is
resolved the way GitLab does it, over git: ``git ls-remote --tags https://HOST:443/auto/toolkit.git`` picks
the newest ``1.x.y`` tag, then a sparse ``git clone --branch TAG`` fetches ``templates/NAME.yml``. Offline,
:func:`component_project` stands in for the toolkit published on GitLab (a bare repo holding the current
``templates/`` under a semver tag) and :func:`insteadof` points ``https://HOST:443/`` at it through git's
``url.<base>.insteadOf``, passed in ``GIT_CONFIG_*`` variables: no file outside the test's directory changes.

Two gitlab-ci-local 4.72 quirks are handled in :func:`command`: a job with ``image:`` gets
``CI_PROJECT_DIR=/builds/GROUP/PROJECT`` even under ``--force-shell-executor`` (it runs in the project
directory), so ``CI_PROJECT_DIR`` and ``CI_BUILDS_DIR`` are set to the project; and ``CI_REGISTRY`` is
``local-registry.HOST`` unless given, so it can be set empty where there is no registry.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
VERSION = "4.72.0"
LOCAL_BIN = ROOT / ".cache" / "node" / "node_modules" / ".bin" / "gitlab-ci-local"
FAKE_GITLAB = "gitlab.example.test"
COMPONENT_PROJECT = "auto/toolkit"
COMPONENT_TAG = "1.0.0"
DEFAULT_BRANCH = "main"
# Who commits in the test repositories; no global git configuration is read or written.
GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "AUTO suite",
    "GIT_AUTHOR_EMAIL": "suite@example.test",
    "GIT_COMMITTER_NAME": "AUTO suite",
    "GIT_COMMITTER_EMAIL": "suite@example.test",
}
# What must not leak from pytest's process into a job: which Python it runs, the suite's own CI settings,
# the lab's deployer settings (a job gets only the CI/CD variables a test gives it). The machine's pip
# configuration (PIP_*) stays: a shell runner has it too.
LEAKY_PREFIXES = ("PYTEST_", "PYTHON", "VIRTUAL_ENV", "TOX_", "GIT_CONFIG", "AUTO_", "DOCKER_", "CI_")


@dataclass(frozen=True)
class Invocation:
    """One gitlab-ci-local run, as data: what :func:`run` executes."""

    argv: list[str]
    env: dict[str, str]
    cwd: Path


@dataclass(frozen=True)
class Result:
    returncode: int
    output: str
    seconds: float
    timed_out: bool = False

    def tail(self, lines: int = 80) -> str:
        return "\n".join(self.output.splitlines()[-lines:])


def executable() -> str | None:
    """gitlab-ci-local: $GITLAB_CI_LOCAL, the Makefile's project-local install, else the one on PATH."""
    chosen = os.environ.get("GITLAB_CI_LOCAL")
    if chosen:
        return chosen
    if LOCAL_BIN.exists():
        return str(LOCAL_BIN)
    return shutil.which("gitlab-ci-local")


def base_env(environ: Mapping[str, str] | None = None, *, path_prepend: Sequence[str] = ()) -> dict[str, str]:
    """The caller's environment without pytest, virtualenv, CI and deployer settings, and without this
    suite's virtualenv on PATH: jobs see the machine as a shell runner would."""
    source = os.environ if environ is None else environ
    env = {k: v for k, v in source.items() if not k.startswith(LEAKY_PREFIXES) and k not in ("CI", "GITLAB_CI")}
    venv_bin = str(Path(sys.prefix) / "bin")
    path = [p for p in env.get("PATH", "/usr/local/bin:/usr/bin:/bin").split(os.pathsep) if p and p != venv_bin]
    env["PATH"] = os.pathsep.join([*path_prepend, *path])
    return env


def git_config_env(config: Iterable[tuple[str, str]]) -> dict[str, str]:
    """``git -c`` for every git the run starts (gitlab-ci-local's own and the jobs'), as environment."""
    pairs = list(config)
    env = {"GIT_CONFIG_COUNT": str(len(pairs))}
    for index, (key, value) in enumerate(pairs):
        env[f"GIT_CONFIG_KEY_{index}"] = key
        env[f"GIT_CONFIG_VALUE_{index}"] = value
    return env


def insteadof(git_root: Path, host: str = FAKE_GITLAB) -> list[tuple[str, str]]:
    """git configuration sending ``https://HOST:443/GROUP/PROJECT.git`` (how gitlab-ci-local always spells
    the component project's URL) to ``GIT_ROOT/GROUP/PROJECT.git``. Only that spelling: the service's own
    ``origin`` (``https://HOST/…``, no port) must stay as it is, or ``git remote get-url`` would rewrite it
    and gitlab-ci-local could not tell the server, group and project from it."""
    return [(f"url.{git_root.resolve().as_uri()}/.insteadOf", f"https://{host}:443/")]


def command(
    project: Path,
    jobs: Sequence[str] = (),
    *,
    gcl: str,
    variables: Mapping[str, str] | None = None,
    inputs: Mapping[str, str] | None = None,
    list_jobs: bool = False,
    git_config: Iterable[tuple[str, str]] = (),
    variables_file: str | None = None,
    environ: Mapping[str, str] | None = None,
    path_prepend: Sequence[str] = (),
    runner_env: Mapping[str, str] | None = None,
) -> Invocation:
    """The gitlab-ci-local command line and environment to run ``jobs`` of ``project`` in the shell.

    ``inputs`` are component inputs, ``"COMPONENT:NAME"`` (e.g. ``"pages:toolkit-package"``) or ``"NAME"``
    for every include; ``variables`` are CI/CD variables (``--variable``), after the predefined ones;
    ``runner_env`` is the runner host's own environment (a runner's ``environment = [...]`` setting), which
    shell jobs inherit. A value naming an existing file belongs there, not in ``variables``: gitlab-ci-local
    turns such a variable into a copy of the file (and cannot copy a socket).
    """
    project = Path(project).resolve()
    argv = [gcl, "--no-color"]  # run in the project directory: gitlab-ci-local refuses an absolute --cwd
    if list_jobs:
        argv.append("--list")
    else:
        argv.append("--force-shell-executor")
        merged = {"CI_PROJECT_DIR": str(project), "CI_BUILDS_DIR": str(project), **(variables or {})}
        for name, value in merged.items():
            argv += ["--variable", f"{name}={value}"]
    for name, value in (inputs or {}).items():
        argv += ["--input", f"{name}={value}"]
    if variables_file is not None:
        argv += ["--variables-file", variables_file]
    argv += list(jobs)
    env = base_env(environ, path_prepend=path_prepend)
    env.update(git_config_env(git_config))
    env.update(runner_env or {})
    return Invocation(argv, env, project)


# gitlab-ci-local 4.72 always runs a branch pipeline: CI_COMMIT_BRANCH and CI_COMMIT_REF_NAME are the checked-out
# branch, CI_COMMIT_TAG is never set. :func:`tag_command` runs the pipeline GitLab starts when a tag is pushed.
TAG_PIPELINE_UNSET = ("CI_COMMIT_BRANCH",)


def tag_variables(tag: str) -> dict[str, str]:
    """The predefined variables of a pipeline of ``tag`` that differ from a branch pipeline's (CI_COMMIT_BRANCH aside:
    GitLab leaves it unset, see ``TAG_PIPELINE_UNSET``)."""
    slug = re.sub(r"[^a-z0-9]+", "-", tag.lower()).strip("-")[:63].rstrip("-")
    return {"CI_COMMIT_TAG": tag, "CI_COMMIT_REF_NAME": tag, "CI_COMMIT_REF_SLUG": slug}


def tag_command(
    project: Path,
    jobs: Sequence[str] = (),
    *,
    tag: str,
    gcl: str,
    variables: Mapping[str, str] | None = None,
    list_jobs: bool = False,
    **options: Any,
) -> Invocation:
    """:func:`command` for the pipeline of ``tag`` (a tag on the checked-out commit): CI_COMMIT_TAG set, the ref name
    and slug the tag's, CI_COMMIT_BRANCH unset, so ``rules:`` see what GitLab's would. ``variables`` reach ``--list``
    too (rules read them there)."""
    merged = {**tag_variables(tag), **(variables or {})}
    invocation = command(project, jobs, gcl=gcl, variables=merged, list_jobs=list_jobs, **options)
    extra = [arg for name in TAG_PIPELINE_UNSET for arg in ("--unset-variable", name)]
    # Overridden on purpose, as GitLab sets them for a tag: no "avoid overriding predefined variables" warning.
    extra += ["--ignore-predefined-vars", ",".join(name for name in merged if name.startswith("CI_COMMIT_REF_"))]
    if list_jobs:  # command() gives --list no variables
        extra += [arg for name, value in merged.items() for arg in ("--variable", f"{name}={value}")]
    argv = [*invocation.argv[:2], *extra, *invocation.argv[2:]]
    return Invocation(argv, invocation.env, invocation.cwd)


def tag_repo(directory: Path, tag: str, *, origin: str, message: str | None = None) -> str:
    """:func:`commit_repo`, then the annotated tag ``tag`` on that commit (a release tag, as a maintainer pushes
    it); returns the commit."""
    sha = commit_repo(directory, origin=origin)
    git(directory, "tag", "-a", tag, "-m", message or f"release {tag}")
    return sha


# gitlab-ci-local 4.72 fetches a pipeline's component includes in parallel into one directory, and two
# fetches can collide ("cp: cannot create directory …/1.0.0/templates: File exists"). That happens while
# it parses, before any job starts, so running it again (the includes fetched so far are cached) is safe.
INCLUDE_RACE = "Component include could not be fetched"
INCLUDE_ATTEMPTS = 3


def run(invocation: Invocation, timeout: float) -> Result:
    """Run it; the exit code and the merged output either way. On timeout the whole process group (the
    jobs' shells too) is killed and ``timed_out`` is set. A run that failed on the include-fetch race (see
    ``INCLUDE_RACE``) is repeated, up to ``INCLUDE_ATTEMPTS`` runs in all."""
    for _attempt in range(INCLUDE_ATTEMPTS):
        result = _run_once(invocation, timeout)
        if result.returncode == 0 or INCLUDE_RACE not in result.output or "starting shell" in result.output:
            break
    return result


def _run_once(invocation: Invocation, timeout: float) -> Result:
    started = time.monotonic()
    proc = subprocess.Popen(
        invocation.argv,
        cwd=invocation.cwd,
        env=invocation.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        errors="replace",
        start_new_session=True,
    )
    try:
        output, _ = proc.communicate(timeout=timeout)
        return Result(proc.returncode, output, time.monotonic() - started)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate()
        note = f"\n[gitlab-ci-local killed after {timeout:.0f} s]"
        return Result(-signal.SIGKILL, output + note, time.monotonic() - started, timed_out=True)


def jobs_listed(list_output: str) -> list[str]:
    """Job names from ``gitlab-ci-local --list`` (the table under the ``name`` header)."""
    lines = list_output.splitlines()
    for index, line in enumerate(lines):
        if line.startswith("name ") and "stage" in line:
            return [row.split()[0] for row in lines[index + 1 :] if row.strip()]
    return []


# --- git ---------------------------------------------------------------------------------------------


def git(repo: Path, *args: str, timeout: float = 120) -> str:
    """``git ARGS`` in ``repo`` (a test's own repository), with the suite's identity; raises on failure."""
    env = {**base_env(), **GIT_IDENTITY, "GIT_CONFIG_NOSYSTEM": "1"}
    proc = subprocess.run(
        ["git", "-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false", *args],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} in {repo} failed: {proc.stderr.strip()}")
    return proc.stdout


def snapshot_worktree(source: Path, dest: Path) -> Path:
    """Copy the files of the git work tree ``source`` as they are now (tracked and untracked, not ignored,
    deleted ones left out) to ``dest``. Only reads ``source``: no git command there changes state."""
    listed = git(source, "ls-files", "-z", "--cached", "--others", "--exclude-standard").split("\0")
    dest.mkdir(parents=True, exist_ok=True)
    for name in sorted(set(filter(None, listed))):
        src = source / name
        if not src.is_file():  # deleted in the work tree, or a submodule
            continue
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target)
    return dest


def commit_repo(
    directory: Path,
    *,
    origin: str | None = None,
    default_branch: str = DEFAULT_BRANCH,
    message: str = "snapshot",
) -> str:
    """Make ``directory`` a git repository with everything in it committed on ``default_branch``; with
    ``origin``, that remote and ``origin/HEAD`` -> ``origin/DEFAULT`` (gitlab-ci-local's CI_DEFAULT_BRANCH).
    Returns the commit."""
    git(directory, "init", "-q", "-b", default_branch)
    git(directory, "add", "-A")
    git(directory, "commit", "-q", "--no-verify", "-m", message)
    if origin is not None:
        git(directory, "remote", "add", "origin", origin)
        git(directory, "update-ref", f"refs/remotes/origin/{default_branch}", "HEAD")
        git(directory, "symbolic-ref", "refs/remotes/origin/HEAD", f"refs/remotes/origin/{default_branch}")
    return git(directory, "rev-parse", "HEAD").strip()


def checkout(repo: Path, branch: str) -> None:
    """Check ``branch`` out, creating it at HEAD when new (the work tree stays the same)."""
    git(repo, "checkout", "-q", "-B", branch)


def component_project(
    templates: Path, git_root: Path, *, project: str = COMPONENT_PROJECT, tag: str = COMPONENT_TAG
) -> Path:
    """``GIT_ROOT/PROJECT.git``: a bare repository holding ``templates/`` (the CI/CD component project as
    GitLab serves it), tagged ``tag``. Returns ``git_root``, the base for :func:`insteadof`."""
    work = git_root / ".work" / project
    shutil.copytree(templates, work / "templates")
    git(work, "init", "-q", "-b", DEFAULT_BRANCH)
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", f"components {tag}")
    git(work, "tag", "-a", tag, "-m", tag)
    bare = git_root / f"{project}.git"
    bare.parent.mkdir(parents=True, exist_ok=True)
    git(git_root, "clone", "-q", "--bare", str(work), str(bare))
    shutil.rmtree(git_root / ".work")
    return git_root


def job_results(output: str) -> dict[str, str]:
    """``{job: PASS|FAIL|WARN}`` from the summary gitlab-ci-local prints last."""
    return {m["job"]: m["status"] for m in re.finditer(r"^\s*(?P<status>PASS|FAIL|WARN)\s+(?P<job>\S+)", output, re.M)}


def assert_passed(result: Result, *jobs: str, lines: int = 80) -> None:
    """The run ended in time, exit 0, and each of ``jobs`` passed; else the summary and the output's tail."""
    assert not result.timed_out, result.tail()
    statuses = job_results(result.output)
    assert result.returncode == 0 and all(statuses.get(job) == "PASS" for job in jobs), (
        f"exit {result.returncode}, jobs {statuses}\n{result.tail(lines)}"
    )
