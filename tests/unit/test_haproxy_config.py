"""The HAProxy configuration: rendered from templates/, accepted by the real haproxy, parsed stats."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from deployer.haproxy import ServerStat, parse_stat, render_config
from deployer.lab import front


def context(tmp_path: Path) -> dict:
    paths = front.FrontPaths(tmp_path)
    return front.config_context(paths, {"blue": "10.213.1.2", "green": "10.213.2.2"}, "green", 18000)


def test_rendered_config_key_lines(tmp_path) -> None:
    text = render_config(context(tmp_path))
    lines = [line.strip() for line in text.splitlines()]
    for expected in (
        f"stats socket {tmp_path}/haproxy/admin.sock mode 600 level admin expose-fd listeners",
        f"server-state-file {tmp_path}/haproxy/server-state",
        "load-server-state-from-file global",
        "bind 127.0.0.1:18000",
        "option httpchk",
        "http-check send meth GET uri /health",
        "retry-on conn-failure empty-response response-timeout",
        "server blue 10.213.1.2:18080 check inter 500ms fall 2 rise 2 disabled",
        "server green 10.213.2.2:18080 check inter 500ms fall 2 rise 2",
    ):
        assert expected in lines, expected
    assert "option http-server-close" not in text


def test_real_haproxy_accepts_it(tmp_path) -> None:
    haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
    if not Path(haproxy).exists():
        if os.environ.get("CI") == "true":
            pytest.fail("haproxy is not installed (make test installs it)")
        pytest.skip("haproxy is not installed")
    config = tmp_path / "haproxy.cfg"
    config.write_text(render_config(context(tmp_path)))
    proc = subprocess.run(front.check_argv(config, haproxy), capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr


def test_lab_haproxy_argv(tmp_path) -> None:
    paths = front.FrontPaths(tmp_path)
    assert front.haproxy_argv(paths) == ["haproxy", "-W", "-D", "-p", f"{tmp_path}/haproxy/haproxy.pid", "-f",
                                         f"{tmp_path}/haproxy/haproxy.cfg"]  # fmt: skip


SHOW_STAT = """# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,sid,throttle,lbtot,tracked,type,rate,rate_lim,rate_max,check_status
front,FRONTEND,,,3,5,4096,90,,,,,,,,,,OPEN,,,,,,,,,1,2,0,,,,0,1,0,5,
app,blue,0,0,2,4,,80,,,,,,0,0,0,0,DRAIN,0,1,0,0,0,3,0,,1,3,1,,80,,2,0,,4,L7OK
app,green,0,0,0,0,,10,,,,,,0,0,0,0,MAINT,1,1,0,0,1,3,3,,1,3,2,,10,,2,0,,0,
app,BACKEND,0,0,2,4,410,90,,,,,,0,0,0,0,UP,1,1,0,,0,3,0,,1,3,0,,90,,1,0,,5,
"""


def test_parse_show_stat() -> None:
    servers = parse_stat(SHOW_STAT, "app")
    assert servers == {
        "blue": ServerStat("blue", "DRAIN", 2, 80, "L7OK", 0),
        "green": ServerStat("green", "MAINT", 0, 10, "", 1),
    }
    assert (servers["blue"].admin, servers["blue"].healthy) == ("drain", True)
    assert (servers["green"].admin, servers["green"].healthy) == ("maint", False)
    assert parse_stat(SHOW_STAT, "other") == {}


def test_just_out_of_maintenance_is_not_healthy_yet() -> None:
    assert not ServerStat("green", "DRAIN 1/2", 0, 0, "INI", 1).healthy
    assert not ServerStat("green", "DOWN", 0, 0, "L4CON", 1).healthy
    assert not ServerStat("green", "UP 1/2", 0, 0, "L7STS", 1).healthy
    assert ServerStat("green", "UP", 0, 0, "L7OK", 1).healthy
