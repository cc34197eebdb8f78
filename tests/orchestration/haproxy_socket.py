"""A scripted HAProxy admin socket: the runtime API's text protocol on a unix socket.

One command per connection (HAProxy's non-interactive mode): the client sends a line, the server
answers and closes. ``show stat`` and ``show servers state BACKEND`` answer in HAProxy 2.6's formats
from a scripted table of servers; ``set server BACKEND/NAME state ready|drain|maint`` changes the
table and answers an empty line, unless the test scripted a refusal for that exact command line.

Per server, ``checks`` (the health check's result) advances one step per ``show stat`` while the
server is not in maint (no checks run there), and ``sessions`` (current sessions) one step per
``show stat`` while it drains; the last step repeats.
"""

from __future__ import annotations

import csv
import io
import os
import socketserver
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# The columns of `show stat` in HAProxy 2.6 (Debian 12), in order.
STAT_COLUMNS = (  # noqa: SIM905 - the header line as HAProxy writes it
    "pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight,"
    "act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,sid,throttle,lbtot,tracked,type,rate,rate_lim,"
    "rate_max,check_status,check_code,check_duration,hrsp_1xx,hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,hrsp_other,"
    "hanafail,req_rate,req_rate_max,req_tot,cli_abrt,srv_abrt,comp_in,comp_out,comp_byp,comp_rsp,lastsess,"
    "last_chk,last_agt,qtime,ctime,rtime,ttime,agent_status,agent_code,agent_duration,check_desc,agent_desc,"
    "check_rise,check_fall,check_health,agent_rise,agent_fall,agent_health,addr,cookie,mode,algo,conn_rate,"
    "conn_rate_max,conn_tot,intercepted,dcon,dses,wrew,connect,reuse,cache_lookups,cache_hits,srv_icur,src_ilim,"
    "qtime_max,ctime_max,rtime_max,ttime_max,eint,idle_conn_cur,safe_conn_cur,used_conn_cur,need_conn_est,"
    "uweight,agg_server_status,agg_server_check_status,agg_check_status,-,ssl_sess,ssl_reused_sess,"
    "ssl_failed_handshake,h2_headers_rcvd,h2_data_rcvd,h2_settings_rcvd,h2_rst_stream_rcvd,h2_goaway_rcvd,"
    "h2_detected_conn_protocol_errors,h2_detected_strm_protocol_errors,h2_rst_stream_resp,h2_goaway_resp,"
    "h2_open_connections,h2_backend_open_streams,h2_total_connections,h2_backend_total_streams,"
    "h1_open_connections,h1_open_streams,h1_total_connections,h1_total_streams,h1_bytes_in,h1_bytes_out,"
    "h1_spliced_bytes_in,h1_spliced_bytes_out"
).split(",")
STATE_COLUMNS = (
    "be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight "
    "srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state "
    "bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr "
    "srv_agent_addr srv_agent_port"
)
ADMIN_BITS = {"ready": 0, "drain": 0x08, "maint": 0x01}
UNKNOWN_COMMAND = "Unknown command: '{word}'. Please enter one of the following commands only:\n  help\n"


@dataclass
class Server:
    """One server of the backend as the script has it."""

    name: str
    address: str
    admin: str = "ready"  # ready, drain, maint
    checks: list[str] = field(default_factory=lambda: ["L7OK"])
    sessions: list[int] = field(default_factory=lambda: [0])
    total: int = 0

    def check(self) -> str:
        return self.checks[0]

    def scur(self) -> int:
        return self.sessions[0]

    def step(self) -> None:
        if self.admin != "maint" and len(self.checks) > 1:
            self.checks.pop(0)
        if self.admin == "drain" and len(self.sessions) > 1:
            self.sessions.pop(0)

    def status(self) -> str:
        if self.admin == "maint":
            return "MAINT"
        if not self.check().startswith("L7OK"):
            return "DOWN"
        return "DRAIN" if self.admin == "drain" else "UP"


@dataclass
class HAProxySocket:
    """The admin socket of one HAProxy with one backend; records every command line."""

    path: str
    servers: dict[str, Server]
    backend: str = "app"
    commands: list[str] = field(default_factory=list)
    refusals: dict[str, str] = field(default_factory=dict)  # exact command line -> HAProxy's answer
    hooks: dict[str, Callable[[], None]] = field(default_factory=dict)  # run before answering that line
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: socketserver.BaseServer | None = None
    _thread: threading.Thread | None = None

    @property
    def set_commands(self) -> list[str]:
        """The ``set server`` commands, in order: what the deployer did to the traffic."""
        return [c for c in self.commands if c.startswith("set server")]

    def admin_states(self) -> dict[str, str]:
        """Each server's admin state now."""
        with self._lock:
            return {name: s.admin for name, s in self.servers.items()}

    def refuse(self, line: str, answer: str) -> None:
        """Answer ``answer`` to the command ``line`` (and change nothing), as HAProxy does when it refuses."""
        self.refusals[line] = answer

    def answer(self, line: str) -> str:
        """HAProxy's answer to one command line."""
        hook = self.hooks.get(line)
        if hook is not None:
            hook()
        with self._lock:
            self.commands.append(line)
            if line in self.refusals:
                return self.refusals[line]
            words = line.split()
            if words[:2] == ["show", "stat"]:
                for server in self.servers.values():
                    server.step()
                return self._show_stat()
            if words[:3] == ["show", "servers", "state"]:
                return self._show_servers_state(words[3] if len(words) > 3 else None)
            if len(words) == 5 and words[:2] == ["set", "server"] and words[3] == "state":
                backend, _, name = words[2].partition("/")
                if backend != self.backend:
                    return "No such backend.\n"
                if name not in self.servers:
                    return "No such server.\n"
                if words[4] not in ADMIN_BITS:
                    return "'set server <srv> state' expects 'ready', 'drain' and 'maint'.\n"
                self.servers[name].admin = words[4]
                return "\n"
            return UNKNOWN_COMMAND.format(word=words[0] if words else "")

    def _show_stat(self) -> str:
        out = io.StringIO()
        writer = csv.DictWriter(out, STAT_COLUMNS, restval="", lineterminator="\n")
        out.write("# " + ",".join(STAT_COLUMNS) + ",\n")
        writer.writerow({"pxname": "front", "svname": "FRONTEND", "status": "OPEN", "scur": "0", "mode": "http"})
        for sid, server in enumerate(self.servers.values(), start=1):
            writer.writerow(
                {
                    "pxname": self.backend,
                    "svname": server.name,
                    "scur": str(server.scur()),
                    "stot": str(server.total),
                    "status": server.status(),
                    "weight": "1",
                    "sid": str(sid),
                    "check_status": "" if server.admin == "maint" else server.check(),
                    "addr": f"{server.address}:18080",
                    "mode": "http",
                }
            )
        writer.writerow({"pxname": self.backend, "svname": "BACKEND", "status": "UP", "mode": "http"})
        return out.getvalue() + "\n"

    def _show_servers_state(self, backend: str | None) -> str:
        if backend is not None and backend != self.backend:
            return f"Can't find backend '{backend}'.\n"
        lines = ["1", f"# {STATE_COLUMNS}"]
        for sid, server in enumerate(self.servers.values(), start=1):
            op_state = 2 if server.status() in ("UP", "DRAIN") else 0
            lines.append(
                f"3 {self.backend} {sid} {server.name} {server.address} {op_state} {ADMIN_BITS[server.admin]} "
                "1 1 1 15 3 3 6 0 0 0 - 18080 - 0 0 - - 0"
            )
        return "\n".join(lines) + "\n\n"

    # ---- serving

    def start(self) -> HAProxySocket:
        """Listen on ``path``."""
        socket_owner = self

        class Handler(socketserver.StreamRequestHandler):
            timeout = 10

            def handle(self) -> None:
                line = self.rfile.readline().decode().rstrip("\r\n")
                self.wfile.write(socket_owner.answer(line).encode())

        server = _Server(self.path, Handler)
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and remove the socket."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            if self._thread is not None:
                self._thread.join(5)
            self._server = None
        if os.path.exists(self.path):
            os.unlink(self.path)


class _Server(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True
    block_on_close = False

    def get_request(self) -> tuple[Any, Any]:
        request, _ = super().get_request()
        return request, ("unix", 0)
