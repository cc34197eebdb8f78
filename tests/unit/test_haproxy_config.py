"""The HAProxy configuration: rendered from templates/, accepted by the real haproxy, parsed runtime answers."""

import signal
import subprocess
from pathlib import Path

import pytest

from deployer.errors import ConfigError, HAProxyError
from deployer.haproxy import Runtime, ServerStat, parse_servers_state, parse_stat, render_config
from deployer.lab import front
from tests.support import haproxy_binary


def context(tmp_path: Path) -> dict:
    paths = front.FrontPaths(tmp_path)
    return front.config_context(paths, {"blue": "10.213.1.2", "green": "10.213.2.2"}, "green", 18000)


def test_rendered_config_key_lines(tmp_path) -> None:
    text = render_config(context(tmp_path))
    lines = [line.strip() for line in text.splitlines()]
    for expected in (
        f"stats socket {tmp_path}/haproxy/admin.sock mode 600 level admin expose-fd listeners",
        f"server-state-file {tmp_path}/haproxy/server-state",
        "mode http",
        "load-server-state-from-file global",
        "timeout connect 2s",
        "timeout client 30s",
        "timeout server 30s",
        "timeout http-keep-alive 10s",
        "retries 3",
        "option redispatch 1",
        "retry-on conn-failure empty-response response-timeout",
        "bind 127.0.0.1:18000",
        "default_backend app",
        "backend app",
        "http-reuse safe",
        "option httpchk",
        "http-check send meth GET uri /health",
        "server blue 10.213.1.2:18080 check inter 500ms fall 2 rise 2 disabled",
        "server green 10.213.2.2:18080 check inter 500ms fall 2 rise 2",
    ):
        assert expected in lines, expected
    assert "option http-server-close" not in text
    assert "option httpclose" not in text
    assert "frontend stats" not in text


def test_defaults_and_optional_stats(tmp_path) -> None:
    ctx = {
        "frontend_bind": "127.0.0.1:18001",
        "admin_socket": "/run/a.sock",
        "state_file": "/run/state",
        "servers": [{"name": "blue", "address": "127.0.0.1", "port": 8080, "enabled": True}],
        "stats_bind": "127.0.0.1:18002",
        "backend": "web",
        "health_path": "/healthz",
    }
    lines = [line.strip() for line in render_config(ctx).splitlines()]
    assert "backend web" in lines and "default_backend web" in lines
    assert "http-check send meth GET uri /healthz" in lines
    assert lines[lines.index("frontend stats") + 1] == "bind 127.0.0.1:18002"


def test_missing_context_key_is_a_config_error(tmp_path) -> None:
    ctx = context(tmp_path)
    del ctx["state_file"]
    with pytest.raises(ConfigError, match=r"^HAProxy config context is incomplete: 'state_file' is undefined$"):
        render_config(ctx)


@pytest.mark.system
@pytest.mark.parametrize("stats_bind", [None, "127.0.0.1:18002"])
def test_real_haproxy_accepts_it(tmp_path, stats_bind) -> None:
    haproxy = haproxy_binary()
    config = tmp_path / "haproxy.cfg"
    config.write_text(render_config({**context(tmp_path), "stats_bind": stats_bind}))
    proc = subprocess.run(front.check_argv(config, haproxy), capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.system
def test_real_haproxy_rejects_a_broken_config(tmp_path) -> None:
    haproxy = haproxy_binary()
    config = tmp_path / "haproxy.cfg"
    config.write_text(render_config({**context(tmp_path), "frontend_bind": "127.0.0.1:notaport"}))
    proc = subprocess.run(front.check_argv(config, haproxy), capture_output=True, text=True, check=False)
    assert proc.returncode != 0


# Recorded from HAProxy 2.6.12 (Debian 12): blue in drain and UP, green out of config maintenance
# into drain, its check refused (DOWN); then blue to maint, green to ready.
SHOW_STAT = """# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,sid,throttle,lbtot,tracked,type,rate,rate_lim,rate_max,check_status,check_code,check_duration,hrsp_1xx,hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,hrsp_other,hanafail,req_rate,req_rate_max,req_tot,cli_abrt,srv_abrt,comp_in,comp_out,comp_byp,comp_rsp,lastsess,last_chk,last_agt,qtime,ctime,rtime,ttime,agent_status,agent_code,agent_duration,check_desc,agent_desc,check_rise,check_fall,check_health,agent_rise,agent_fall,agent_health,addr,cookie,mode,algo,conn_rate,conn_rate_max,conn_tot,intercepted,dcon,dses,wrew,connect,reuse,cache_lookups,cache_hits,srv_icur,src_ilim,qtime_max,ctime_max,rtime_max,ttime_max,eint,idle_conn_cur,safe_conn_cur,used_conn_cur,need_conn_est,uweight,agg_server_status,agg_server_check_status,agg_check_status,-,ssl_sess,ssl_reused_sess,ssl_failed_handshake,h2_headers_rcvd,h2_data_rcvd,h2_settings_rcvd,h2_rst_stream_rcvd,h2_goaway_rcvd,h2_detected_conn_protocol_errors,h2_detected_strm_protocol_errors,h2_rst_stream_resp,h2_goaway_resp,h2_open_connections,h2_backend_open_streams,h2_total_connections,h2_backend_total_streams,h1_open_connections,h1_open_streams,h1_total_connections,h1_total_streams,h1_bytes_in,h1_bytes_out,h1_spliced_bytes_in,h1_spliced_bytes_out,
front,FRONTEND,,,0,0,4096,0,0,0,0,0,0,,,,,OPEN,,,,,,,,,1,2,0,,,,0,0,0,0,,,,0,0,0,0,0,0,,0,0,0,,,0,0,0,0,,,,,,,,,,,,,,,,,,,,,http,,0,0,0,0,0,0,0,,,0,0,,,,,,,0,,,,,,,,,-,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
app,blue,0,0,2,3,,80,0,0,,0,,0,0,0,0,DRAIN,1,1,0,0,0,1,0,,1,3,1,,0,,2,0,,0,L7OK,200,1,0,0,0,0,0,0,,,,0,0,0,,,,,-1,,,0,0,0,0,,,,Layer7 check passed,,2,2,3,,,,127.0.0.1:40289,,http,,,,,,,,0,0,0,,,0,,0,0,0,0,0,0,0,0,1,1,,,,-,0,0,0,,,,,,,,,,,,,,,,,,,,,,
app,green,0,0,0,0,,10,0,0,,0,,0,0,0,0,DOWN,1,1,0,1,1,1,1,,1,3,2,,0,,2,0,,0,* L4CON,,0,0,0,0,0,0,0,,,,0,0,0,,,,,-1,Connection refused,,0,0,0,0,,,,Layer4 connection problem,,2,2,0,,,,127.0.0.1:41569,,http,,,,,,,,0,0,0,,,0,,0,0,0,0,0,0,0,0,1,1,,,,-,0,0,0,,,,,,,,,,,,,,,,,,,,,,
app,BACKEND,0,0,0,0,410,0,0,0,0,0,,0,0,0,0,DOWN,0,0,0,,1,1,1,,1,3,0,,0,,1,0,,0,,,,0,0,0,0,0,0,,,,0,0,0,0,0,0,0,-1,,,0,0,0,0,,,,,,,,,,,,,,http,roundrobin,,,,,,,0,0,0,0,0,,,0,0,0,0,0,,,,,0,0,0,0,-,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,10,10,787,168,0,0,

"""
SERVERS_STATE_DRAIN = """1
# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port
3 app 1 blue 127.0.0.1 2 8 1 1 1 15 3 3 6 0 0 0 - 40289 - 0 0 - - 0
3 app 2 green 127.0.0.1 0 12 1 1 1 8 2 0 6 0 0 0 - 41569 - 0 0 - - 0

"""
SERVERS_STATE_SWITCHED = """1
# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port
3 app 1 blue 127.0.0.1 0 1 1 1 0 15 3 0 14 0 0 0 - 40289 - 0 0 - - 0
3 app 2 green 127.0.0.1 0 4 1 1 0 8 2 0 6 0 0 0 - 41569 - 0 0 - - 0

"""


def test_parse_show_stat() -> None:
    servers = parse_stat(SHOW_STAT, "app")
    assert servers == {
        "blue": ServerStat("blue", "DRAIN", 2, 80, "L7OK", 1),
        "green": ServerStat("green", "DOWN", 0, 10, "L4CON", 1),  # "* " (check running) dropped
    }
    assert (servers["blue"].admin, servers["blue"].healthy) == ("drain", True)
    assert servers["green"].healthy is False
    assert parse_stat(SHOW_STAT, "other") == {}
    assert parse_stat("", "app") == {}


def test_parse_servers_state() -> None:
    assert parse_servers_state(SERVERS_STATE_DRAIN, "app") == {"blue": 8, "green": 12}
    assert parse_servers_state(SERVERS_STATE_SWITCHED, "app") == {"blue": 1, "green": 4}
    assert parse_servers_state(SERVERS_STATE_DRAIN, "other") == {}
    assert parse_servers_state("No such backend.\n", "app") == {}


def test_admin_state_from_the_admin_bits() -> None:
    # A DOWN server shows "DOWN" in show stat whether it is in drain or ready: the bits tell.
    down = ServerStat("green", "DOWN", 0, 0, "L4CON", 1)
    assert down.admin == "ready"  # without the bits: a guess from the status
    assert ServerStat("green", "DOWN", 0, 0, "L4CON", 1, admin_state=12).admin == "drain"  # config maint left
    assert ServerStat("green", "DOWN", 0, 0, "L4CON", 1, admin_state=8).admin == "drain"
    assert ServerStat("blue", "MAINT", 0, 0, "", 1, admin_state=1).admin == "maint"
    assert ServerStat("green", "MAINT", 0, 0, "", 1, admin_state=5).admin == "maint"  # disabled in config
    assert ServerStat("green", "UP", 0, 0, "L7OK", 1, admin_state=4).admin == "ready"  # set ready after config maint
    assert ServerStat("blue", "MAINT", 0, 0, "", 1).admin == "maint"
    assert ServerStat("blue", "UP", 0, 0, "L7OK", 0).admin == "drain"  # weight 0


def test_just_out_of_maintenance_is_not_healthy_yet() -> None:
    assert not ServerStat("green", "DRAIN 1/2", 0, 0, "INI", 1).healthy
    assert not ServerStat("green", "DOWN", 0, 0, "L4CON", 1).healthy
    assert not ServerStat("green", "UP 1/2", 0, 0, "L7STS", 1).healthy
    assert not ServerStat("green", "MAINT", 0, 0, "", 1).healthy
    assert ServerStat("green", "UP", 0, 0, "L7OK", 1).healthy
    assert ServerStat("green", "DRAIN", 0, 0, "L7OK", 1).healthy


class FakeRuntime(Runtime):
    """Answers from a script instead of a socket; the clock advances by each sleep."""

    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.now = 0.0
        super().__init__("/nonexistent", sleep=self._advance, clock=lambda: self.now)
        self.answers = answers
        self.sent: list[str] = []

    def _advance(self, seconds: float) -> None:
        self.now += seconds

    def command(self, line: str) -> str:
        self.sent.append(line)
        queue = self.answers[line.split()[0] + " " + line.split()[1]]
        return queue.pop(0) if len(queue) > 1 else queue[0]


def stat_rows(*rows: str) -> str:
    return "# pxname,svname,scur,stot,status,weight,check_status\n" + "".join(f"app,{row}\n" for row in rows)


def state_rows(blue: int, green: int) -> str:
    header = "1\n# be_id be_name srv_id srv_name srv_admin_state\n"
    return header + f"3 app 1 blue {blue}\n3 app 2 green {green}\n"


def test_wait_up_waits_for_a_settled_passing_check() -> None:
    rt = FakeRuntime(
        {
            "show stat": [
                stat_rows("blue,0,0,UP,1,L7OK", "green,0,0,DRAIN 1/2,1,INI"),
                stat_rows("blue,0,0,UP,1,L7OK", "green,0,0,DRAIN 1/2,1,* L7OK"),
                stat_rows("blue,0,0,UP,1,L7OK", "green,0,0,DRAIN,1,L7OK"),
            ],
            "show servers": [state_rows(0, 12)],
        }
    )
    assert rt.wait_up("app", "green", 5, interval=0.1) == pytest.approx(0.2)


def test_wait_up_times_out_naming_the_check() -> None:
    rt = FakeRuntime({"show stat": [stat_rows("green,0,0,MAINT,1,")], "show servers": [state_rows(0, 5)]})
    with pytest.raises(
        HAProxyError, match=r"^app/green is not healthy after 1 s \(status MAINT, check none\): it is in maint"
    ):
        rt.wait_up("app", "green", 1)
    rt = FakeRuntime({"show stat": [stat_rows("green,0,0,DOWN,1,L7STS")], "show servers": [state_rows(0, 8)]})
    with pytest.raises(HAProxyError, match=r"\(status DOWN, check L7STS\): check its /health$"):
        rt.wait_up("app", "green", 1)


def test_wait_drained_counts_current_sessions() -> None:
    rt = FakeRuntime(
        {
            "show stat": [
                stat_rows("blue,2,9,DRAIN,1,L7OK"),
                stat_rows("blue,1,9,DRAIN,1,L7OK"),
                stat_rows("blue,0,9,DRAIN,1,L7OK"),
            ],
            "show servers": [state_rows(8, 0)],
        }
    )
    assert rt.wait_drained("app", "blue", 5, interval=0.05) == pytest.approx(0.1)
    rt = FakeRuntime({"show stat": [stat_rows("blue,3,9,DRAIN,1,L7OK")], "show servers": [state_rows(8, 0)]})
    with pytest.raises(HAProxyError, match=r"^app/blue still has 3 session\(s\) after 0.5 s$"):
        rt.wait_drained("app", "blue", 0.5)


def test_servers_merges_admin_bits_and_names_a_missing_backend() -> None:
    rt = FakeRuntime(
        {"show stat": [stat_rows("blue,0,0,UP,1,L7OK", "green,0,0,DOWN,1,L4CON")], "show servers": [state_rows(0, 8)]}
    )
    assert {name: s.admin for name, s in rt.servers("app").items()} == {"blue": "ready", "green": "drain"}
    assert rt.sent == ["show stat", "show servers state app"]
    with pytest.raises(HAProxyError, match=r"^HAProxy has no backend 'web' with servers: check AUTO_HAPROXY_BACKEND$"):
        rt.servers("web")
    with pytest.raises(HAProxyError, match=r"^HAProxy backend app has no server 'purple' \(has blue, green\)$"):
        rt.server("app", "purple")


def test_bad_input_never_reaches_the_socket(tmp_path) -> None:
    rt = Runtime(str(tmp_path / "none.sock"))
    with pytest.raises(ConfigError, match="must be one of ready, drain, maint"):
        rt.set_state("app", "blue", "up")
    with pytest.raises(ConfigError, match=r"^invalid HAProxy server name 'blue; shutdown sessions'"):
        rt.set_state("app", "blue; shutdown sessions", "ready")
    with pytest.raises(ConfigError, match="one non-empty line"):
        rt.command("show info\nshow stat")


def test_unreachable_socket_is_one_line(tmp_path) -> None:
    with pytest.raises(HAProxyError) as err:
        Runtime(f"unix:{tmp_path}/none.sock").command("show info")
    assert str(err.value) == f"HAProxy admin socket {tmp_path}/none.sock is not answering: is HAProxy running?"
    with pytest.raises(HAProxyError, match=r"^HAProxy admin socket tcp:127.0.0.1:1 is not answering"):
        Runtime("tcp:127.0.0.1:1").command("show info")


def test_save_state_refuses_an_answer_that_is_not_a_state_file(tmp_path) -> None:
    rt = FakeRuntime({"show servers": ["Permission denied\n\n"]})
    with pytest.raises(HAProxyError, match=r"^HAProxy answered 'show servers state' with 'Permission denied'"):
        rt.save_state(tmp_path / "state")
    assert list(tmp_path.iterdir()) == []
    rt = FakeRuntime({"show servers": [SERVERS_STATE_SWITCHED]})
    rt.save_state(tmp_path / "state")
    assert (tmp_path / "state").read_text() == SERVERS_STATE_SWITCHED
    assert [p.name for p in tmp_path.iterdir()] == ["state"]


def test_reload_repeats_a_dropped_signal_until_a_new_worker_answers(monkeypatch) -> None:
    sent: list[tuple[int, int]] = []
    monkeypatch.setattr("deployer.haproxy.os.kill", lambda pid, sig: sent.append((pid, sig)))
    old, new = "Name: HAProxy\nPid: 100\n", "Name: HAProxy\nPid: 200\n"
    rt = FakeRuntime({"show info": [old] * 30 + [new]})  # the first signal was lost
    assert rt.reload(42, timeout=5, interval=0.05) == pytest.approx(1.5)
    assert sent == [(42, signal.SIGUSR2), (42, signal.SIGUSR2)]
    rt = FakeRuntime({"show info": [old]})
    with pytest.raises(HAProxyError, match=r"^HAProxy \(master 42\) did not start a new worker within 2 s: check"):
        rt.reload(42, timeout=2)


def test_reload_of_a_dead_master(monkeypatch) -> None:
    def kill(pid: int, sig: int) -> None:
        raise ProcessLookupError(pid)

    monkeypatch.setattr("deployer.haproxy.os.kill", kill)
    rt = FakeRuntime({"show info": ["Pid: 100\n"]})
    with pytest.raises(HAProxyError, match=r"^HAProxy master 42 is not running: check its pidfile$"):
        rt.reload(42)
    rt = FakeRuntime({"show info": ["Unknown command\n"]})
    with pytest.raises(HAProxyError, match=r"without its Pid \('Unknown command'\)"):
        rt.worker_pid()
