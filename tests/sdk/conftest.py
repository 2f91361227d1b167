"""Fixtures for the Cloudflare Python SDK compatibility suite.

One real `vantage serve` process is started per test session (on 127.0.0.1:0, with a fresh data
directory and a bootstrap token), and every test talks to it only through the official `cloudflare`
package. Extra accounts, zones and tokens come from the `vantage` CLI, which works directly on the
data directory while the server runs.

Every HTTP exchange made through the clients built here is recorded; when a test fails, the
exchanges of that test and the server's stderr lines logged during it are attached to the report.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import string
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, List, Optional

import httpx
import pytest

import cloudflare

# The SDK picks credentials and the base URL up from the environment when they are not passed
# explicitly; make sure nothing from the caller's shell leaks into these tests.
for _var in (
    "CLOUDFLARE_API_TOKEN",
    "CLOUDFLARE_API_KEY",
    "CLOUDFLARE_EMAIL",
    "CLOUDFLARE_API_USER_SERVICE_KEY",
    "CLOUDFLARE_BASE_URL",
):
    os.environ.pop(_var, None)

REPO = Path(__file__).resolve().parents[2]
TOKEN_ALPHABET = string.ascii_letters + string.digits + "_-"
LISTENING_RE = re.compile(r"listening on (\S+)")
STARTUP_DEADLINE_S = 30.0
SHUTDOWN_DEADLINE_S = 10.0
CREDENTIAL_DEADLINE_S = 10.0
REQUEST_TIMEOUT_S = 15.0


def new_token() -> str:
    """A 48-character secret in the token alphabet `[0-9A-Za-z_-]`."""
    return "".join(secrets.choice(TOKEN_ALPHABET) for _ in range(48))


def uid(prefix: str) -> str:
    """A unique, pool-name-safe (`[A-Za-z0-9_-]+`) and hostname-safe name."""
    return f"{prefix}-{secrets.token_hex(5)}"


# --------------------------------------------------------------------------------------------
# HTTP exchange recording (attached to failing tests' reports)
# --------------------------------------------------------------------------------------------


@dataclass
class Exchange:
    method: str
    url: str
    request_body: str
    status: Optional[int] = None
    response_body: str = ""

    def render(self) -> str:
        out = f"> {self.method} {self.url}\n"
        if self.request_body:
            out += f"> {self.request_body}\n"
        out += f"< {self.status}\n"
        if self.response_body:
            out += f"< {self.response_body}\n"
        return out


EXCHANGES: List[Exchange] = []


def _decode(data: bytes, limit: int = 4000) -> str:
    text = data.decode("utf-8", errors="replace")
    return text if len(text) <= limit else text[:limit] + "...(truncated)"


def _on_request(request: httpx.Request) -> None:
    body = b""
    try:
        body = request.content
    except httpx.RequestNotRead:  # pragma: no cover - the SDK always sends buffered bodies
        pass
    EXCHANGES.append(Exchange(request.method, str(request.url), _decode(body)))


def _on_response(response: httpx.Response) -> None:
    response.read()
    for ex in reversed(EXCHANGES):
        if ex.status is None and ex.method == response.request.method and ex.url == str(response.request.url):
            ex.status = response.status_code
            ex.response_body = _decode(response.content)
            break


def make_client(base_url: str, token: str) -> cloudflare.Cloudflare:
    """An SDK client for `token`, with retries off and every exchange recorded."""
    http_client = httpx.Client(
        timeout=REQUEST_TIMEOUT_S,
        event_hooks={"request": [_on_request], "response": [_on_response]},
    )
    return cloudflare.Cloudflare(
        api_token=token,
        base_url=base_url,
        max_retries=0,
        timeout=REQUEST_TIMEOUT_S,
        http_client=http_client,
    )


# --------------------------------------------------------------------------------------------
# The server process
# --------------------------------------------------------------------------------------------


@dataclass
class VantageServer:
    bin: str
    proc: subprocess.Popen
    data_dir: Path
    addr: str
    base_url: str
    token: str
    client: cloudflare.Cloudflare
    stderr_lines: List[str] = field(default_factory=list)

    # -- CLI ---------------------------------------------------------------------------------

    def cli(self, *args: str) -> str:
        """Runs `vantage ARGS...`, fails the test on a non-zero exit, returns stdout stripped."""
        cmd = [self.bin, *args]
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        if res.returncode != 0:
            pytest.fail(
                f"CLI failed (exit {res.returncode}): {' '.join(cmd)}\n"
                f"stdout: {res.stdout}\nstderr: {res.stderr}",
                pytrace=False,
            )
        return res.stdout.strip()

    def cli_line(self, *args: str) -> str:
        out = self.cli(*args)
        lines = [line for line in out.splitlines() if line.strip()]
        assert len(lines) == 1, f"expected one line on stdout from {args!r}, got {out!r}"
        return lines[0].strip()

    def create_account(self, name: str) -> str:
        account_id = self.cli_line("account", "create", "--data-dir", str(self.data_dir), "--name", name)
        assert re.fullmatch(r"[0-9a-f]{32}", account_id), account_id
        return account_id

    def create_zone(self, account_id: str, name: str) -> str:
        zone_id = self.cli_line(
            "zone", "create", "--data-dir", str(self.data_dir), "--account", account_id, "--name", name
        )
        assert re.fullmatch(r"[0-9a-f]{32}", zone_id), zone_id
        return zone_id

    def create_token(self, account_id: str, permissions: List[str], name: Optional[str] = None) -> str:
        """Creates a token through the CLI and waits until the running server accepts it."""
        args = ["token", "create", "--data-dir", str(self.data_dir), "--name", name or uid("tok"),
                "--account", account_id]
        for perm in permissions:
            args += ["--permission", perm]
        token = self.cli_line(*args)
        assert re.fullmatch(r"[0-9A-Za-z_-]{40,80}", token), f"token {token!r} does not match the token pattern"
        self.wait_token_status(token, 200)
        return token

    def list_tokens(self) -> List[dict]:
        out = self.cli("token", "list", "--data-dir", str(self.data_dir), "--output", "json")
        tokens = json.loads(out)
        assert isinstance(tokens, list), out
        return tokens

    def revoke_token(self, token_id: str) -> None:
        self.cli("token", "revoke", "--data-dir", str(self.data_dir), token_id)

    def wait_token_status(self, token: str, status: int, deadline_s: float = CREDENTIAL_DEADLINE_S) -> None:
        """Polls GET /user/tokens/verify with `token` until it answers `status`."""
        deadline = time.monotonic() + deadline_s
        last: Any = None
        while True:
            try:
                r = httpx.get(
                    f"{self.base_url}/user/tokens/verify",
                    headers={"Authorization": f"Bearer {token}"},
                    timeout=5,
                )
                last = (r.status_code, r.text)
                if r.status_code == status:
                    return
            except httpx.HTTPError as e:  # pragma: no cover - diagnostic only
                last = repr(e)
            if time.monotonic() > deadline:
                pytest.fail(
                    f"GET /user/tokens/verify did not answer {status} within {deadline_s}s; last: {last}",
                    pytrace=False,
                )
            time.sleep(0.1)

    def client_for(self, token: str) -> cloudflare.Cloudflare:
        return make_client(self.base_url, token)


def _serve_help(bin_path: str) -> str:
    res = subprocess.run([bin_path, "serve", "--help"], capture_output=True, text=True, timeout=30)
    return res.stdout + res.stderr


def _drain(stream, sink: List[str], on_line: Optional[Callable[[str], None]] = None) -> None:
    for line in iter(stream.readline, ""):
        line = line.rstrip("\n")
        sink.append(line)
        if on_line is not None:
            on_line(line)
    stream.close()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VantageServer]:
    bin_path = os.environ.get("VANTAGE_BIN", str(REPO / "target" / "debug" / "vantage"))
    if not (os.path.isfile(bin_path) and os.access(bin_path, os.X_OK)):
        pytest.fail(
            f"vantage binary not found at {bin_path}; build it first or set VANTAGE_BIN", pytrace=False
        )

    data_dir = tmp_path_factory.mktemp("vantage-data")
    token = new_token()
    cmd = [bin_path, "serve", "--listen", "127.0.0.1:0", "--data-dir", str(data_dir)]
    if "--no-agent" in _serve_help(bin_path):
        cmd.append("--no-agent")
    env = dict(os.environ, VANTAGE_BOOTSTRAP_TOKEN=token)
    env.setdefault("RUST_BACKTRACE", "1")

    # With VANTAGE_SDK_REPLICAS=2 (and VANTAGE_STORE a PostgreSQL URL) a first replica takes the
    # database and judges; the suite then drives the second, a follower: every write goes
    # through a replica that does not judge.
    judge = None
    if os.environ.get("VANTAGE_SDK_REPLICAS") == "2":
        judge_cmd = [bin_path, "serve", "--listen", "127.0.0.1:0",
                     "--data-dir", str(tmp_path_factory.mktemp("vantage-judge"))] + cmd[6:]
        judge = subprocess.Popen(judge_cmd, env=env, stdin=subprocess.DEVNULL,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, bufsize=1)
        judge_lines: List[str] = []
        judge_ready = threading.Event()
        threading.Thread(
            target=_drain,
            args=(judge.stderr, judge_lines, lambda line: LISTENING_RE.search(line) and judge_ready.set()),
            daemon=True,
        ).start()
        if not judge_ready.wait(timeout=STARTUP_DEADLINE_S):
            judge.kill()
            pytest.fail("the judging replica did not start:\n" + "\n".join(judge_lines[-50:]), pytrace=False)

    proc = subprocess.Popen(
        cmd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        bufsize=1,
    )
    stderr_lines: List[str] = []
    stdout_lines: List[str] = []
    found: dict = {}
    ready = threading.Event()

    def on_stderr(line: str) -> None:
        if "addr" not in found:
            m = LISTENING_RE.search(line)
            if m:
                found["addr"] = m.group(1)
                ready.set()

    t_err = threading.Thread(target=_drain, args=(proc.stderr, stderr_lines, on_stderr), daemon=True)
    t_out = threading.Thread(target=_drain, args=(proc.stdout, stdout_lines), daemon=True)
    t_err.start()
    t_out.start()

    deadline = time.monotonic() + STARTUP_DEADLINE_S
    while not ready.wait(timeout=0.05):
        if proc.poll() is not None:
            t_err.join(timeout=2)
            pytest.fail(
                f"vantage serve exited with {proc.returncode} before listening: {' '.join(cmd)}\n"
                + "\n".join(stderr_lines[-50:]),
                pytrace=False,
            )
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            pytest.fail(
                f"vantage serve did not log 'listening on ADDR' within {STARTUP_DEADLINE_S}s: {' '.join(cmd)}\n"
                + "\n".join(stderr_lines[-50:]),
                pytrace=False,
            )

    addr = found["addr"]
    base_url = f"http://{addr}/client/v4"
    srv = VantageServer(
        bin=bin_path,
        proc=proc,
        data_dir=data_dir,
        addr=addr,
        base_url=base_url,
        token=token,
        client=make_client(base_url, token),
        stderr_lines=stderr_lines,
    )
    _STATE["server"] = srv
    if judge is not None:
        assert any("this one follows" in line for line in stderr_lines), "\n".join(stderr_lines[-20:])
    try:
        yield srv
    finally:
        _STATE.pop("server", None)
        if judge is not None:
            judge.send_signal(signal.SIGTERM)
            judge.wait(timeout=SHUTDOWN_DEADLINE_S)
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                rc = proc.wait(timeout=SHUTDOWN_DEADLINE_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                pytest.fail(f"vantage serve did not exit within {SHUTDOWN_DEADLINE_S}s of SIGTERM", pytrace=False)
            t_err.join(timeout=2)
            assert rc == 0, f"vantage serve exited with {rc} after SIGTERM\n" + "\n".join(stderr_lines[-50:])
        else:
            pytest.fail(
                f"vantage serve died during the session (exit {proc.returncode})\n" + "\n".join(stderr_lines[-50:]),
                pytrace=False,
            )


_STATE: dict = {}


# --------------------------------------------------------------------------------------------
# Convenience fixtures
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def client(server: VantageServer) -> cloudflare.Cloudflare:
    return server.client


@pytest.fixture(scope="session")
def account_id(client: cloudflare.Cloudflare) -> str:
    accounts = client.accounts.list().result
    assert accounts, "GET /accounts returned no account for the bootstrap token"
    return accounts[0].id


@pytest.fixture(scope="session")
def zone_id(client: cloudflare.Cloudflare, account_id: str) -> str:
    zone = client.zones.create(account={"id": account_id}, name="example.com")
    assert zone is not None
    return zone.id


@dataclass
class OtherAccount:
    account_id: str
    token: str
    client: cloudflare.Cloudflare


@pytest.fixture(scope="session")
def other_account(server: VantageServer) -> OtherAccount:
    """A second account with an all-permissions token bound to it (and only to it)."""
    acct = server.create_account(uid("other"))
    token = server.create_token(acct, ["all"], name=uid("other-all"))
    return OtherAccount(acct, token, server.client_for(token))


# --------------------------------------------------------------------------------------------
# Failure diagnostics
# --------------------------------------------------------------------------------------------


def pytest_runtest_setup(item: pytest.Item) -> None:
    EXCHANGES.clear()
    srv = _STATE.get("server")
    item._vantage_log_start = len(srv.stderr_lines) if srv else 0  # type: ignore[attr-defined]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    outcome = yield
    rep = outcome.get_result()
    if rep.failed and rep.when in ("setup", "call"):
        if EXCHANGES:
            rep.sections.append(("HTTP exchanges", "\n".join(ex.render() for ex in EXCHANGES[-12:])))
        srv = _STATE.get("server")
        if srv is not None:
            start = getattr(item, "_vantage_log_start", 0)
            lines = srv.stderr_lines[start:]
            if lines:
                rep.sections.append(("vantage stderr", "\n".join(lines[-60:])))
