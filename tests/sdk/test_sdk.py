"""Client-compatibility tests: the official Cloudflare Python SDK against a real `vantage serve`.

Every request goes through the `cloudflare` package, and every assertion is on the SDK's parsed
objects or on the exceptions it raises. The expected values come from
/work/shared/spec/cloudflare-lb-contract.md (section numbers in the comments).

Each test creates its own objects with unique names, so tests are independent of each other and of
their order.
"""

from __future__ import annotations

import datetime
import re
import secrets
import time
from typing import Any, Dict, List, Optional, Type

import pytest

import cloudflare
from cloudflare import BadRequestError, NotFoundError, PermissionDeniedError
from cloudflare.types.load_balancers import LoadBalancer, Monitor, Pool

from conftest import OtherAccount, VantageServer, new_token, uid

ID_RE = re.compile(r"^[0-9a-f]{32}$")
# §1: RFC 3339 UTC with fractional seconds, e.g. "2014-01-01T05:20:00.12345Z".
TS_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d+Z$")

MONITORS_READ = "Load Balancing: Monitors and Pools Read"
MONITORS_WRITE = "Load Balancing: Monitors and Pools Write"


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def echoed(model: Any) -> Dict[str, Any]:
    """The fields the server actually sent (API names), as plain JSON values."""
    return model.to_dict(mode="json")


def assert_fields(model: Any, expected: Dict[str, Any]) -> None:
    """Each expected field is present in the response (not merely defaulted by the SDK) with that value."""
    got = echoed(model)
    missing = [k for k in expected if k not in got]
    assert not missing, f"fields missing from the response: {missing}; response: {got}"
    wrong = {k: (got[k], v) for k, v in expected.items() if got[k] != v}
    assert not wrong, f"fields with unexpected values (got, expected): {wrong}; response: {got}"


def assert_api_error(
    exc: cloudflare.APIStatusError,
    status: int,
    code: int,
    *,
    pointer: Optional[str] = None,
    message: Optional[str] = None,
    message_suffix: Optional[str] = None,
) -> None:
    """§1 failure envelope: {"success": false, "errors": [{code, message, source?}], "messages": [], "result": null}."""
    assert exc.status_code == status, f"HTTP {exc.status_code}, want {status}; body: {exc.body}"
    body = exc.body
    assert isinstance(body, dict), f"error body is not a JSON object: {body!r}"
    assert body.get("success") is False, body
    assert "result" in body and body["result"] is None, body
    assert body.get("messages") == [], body
    assert exc.errors, f"no errors[] in body: {body}"
    err = exc.errors[0]
    assert err.code == code, f"errors[0].code = {err.code}, want {code}; body: {body}"
    assert isinstance(err.message, str) and err.message, body
    if message is not None:
        assert err.message == message, f"errors[0].message = {err.message!r}, want {message!r}"
    if message_suffix is not None:
        assert err.message.endswith(message_suffix), f"errors[0].message = {err.message!r}, want ...{message_suffix!r}"
    if pointer is not None:
        assert err.source is not None, f"errors[0] has no source; body: {body}"
        assert err.source.pointer == pointer, f"errors[0].source.pointer = {err.source.pointer!r}, want {pointer!r}"


def raises(exc_type: Type[cloudflare.APIStatusError]):
    return pytest.raises(exc_type)


def make_monitor(client: cloudflare.Cloudflare, account_id: str, **kw: Any):
    params: Dict[str, Any] = dict(type="http", expected_codes="2xx", path="/health")
    params.update(kw)
    return client.load_balancers.monitors.create(account_id=account_id, **params)


def make_pool(client: cloudflare.Cloudflare, account_id: str, *, name: Optional[str] = None, **kw: Any):
    params: Dict[str, Any] = dict(origins=[{"name": "o1", "address": "192.0.2.1"}])
    params.update(kw)
    return client.load_balancers.pools.create(account_id=account_id, name=name or uid("pool"), **params)


def make_lb(client: cloudflare.Cloudflare, zone_id: str, pools: List[str], *, name: Optional[str] = None, **kw: Any):
    return client.load_balancers.create(
        zone_id=zone_id,
        name=name or f"{uid('lb')}.example.com",
        default_pools=pools,
        fallback_pool=pools[-1],
        **kw,
    )


def ts(value: Optional[str]) -> datetime.datetime:
    """Parses a §1 timestamp (any number of fractional digits) for ordering comparisons."""
    m = re.fullmatch(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\.(\d+)Z", value or "")
    assert m, f"not an RFC 3339 UTC timestamp with fractional seconds: {value!r}"
    frac = m.group(2)
    nanos = int((frac + "0" * 9)[:9])
    base = datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.timezone.utc)
    return base + datetime.timedelta(microseconds=nanos / 1000)


def assert_modified_later(new: Any, old: Any) -> None:
    assert new.created_on == old.created_on, f"created_on changed: {old.created_on} -> {new.created_on}"
    assert new.modified_on != old.modified_on, f"modified_on did not change: {new.modified_on}"
    assert ts(new.modified_on) > ts(old.modified_on), f"modified_on went backwards: {old.modified_on} -> {new.modified_on}"


def pause_for_clock() -> None:
    """Lets the clock advance so a modified_on with fractional seconds must differ."""
    time.sleep(0.05)


def random_id() -> str:
    return secrets.token_hex(16)


# --------------------------------------------------------------------------------------------
# accounts, zones, tokens
# --------------------------------------------------------------------------------------------


def test_accounts_list_returns_bootstrap_account(client: cloudflare.Cloudflare, account_id: str):
    accounts = client.accounts.list().result
    assert [a.id for a in accounts].count(account_id) == 1
    acct = next(a for a in accounts if a.id == account_id)
    assert ID_RE.match(acct.id)
    assert isinstance(acct.name, str) and acct.name


def test_token_verify(client: cloudflare.Cloudflare):
    res = client.user.tokens.verify()
    assert res is not None
    assert res.status == "active"
    assert isinstance(res.id, str) and res.id


def test_zone_create_get_delete(client: cloudflare.Cloudflare, account_id: str):
    name = f"{uid('z')}.example"
    zone = client.zones.create(account={"id": account_id}, name=name)
    assert zone is not None
    assert ID_RE.match(zone.id)
    assert zone.name == name
    assert zone.account.id == account_id

    got = client.zones.get(zone_id=zone.id)
    assert got is not None and got.id == zone.id and got.name == name

    deleted = client.zones.delete(zone_id=zone.id)
    assert deleted is not None and deleted.id == zone.id
    with raises(NotFoundError):
        client.zones.get(zone_id=zone.id)


# --------------------------------------------------------------------------------------------
# monitors (§3, §4 Monitor)
# --------------------------------------------------------------------------------------------


def test_monitor_create_get_list_delete(client: cloudflare.Cloudflare, account_id: str):
    desc = uid("monitor")
    mon = client.load_balancers.monitors.create(
        account_id=account_id,
        type="http",
        expected_codes="2xx",
        path="/health",
        header={"Host": ["example.com"]},
        interval=30,
        retries=1,
        load_balancer_monitor_timeout=3,
        description=desc,
    )
    assert isinstance(mon, Monitor)
    assert ID_RE.match(mon.id or ""), mon.id
    assert_fields(
        mon,
        {
            "type": "http",
            "expected_codes": "2xx",
            "path": "/health",
            "header": {"Host": ["example.com"]},
            "interval": 30,
            "retries": 1,
            "timeout": 3,
            "description": desc,
            "method": "GET",
            "port": 0,
        },
    )
    assert mon.timeout == 3
    assert TS_RE.match(mon.created_on or ""), mon.created_on
    assert TS_RE.match(mon.modified_on or ""), mon.modified_on

    got = client.load_balancers.monitors.get(mon.id, account_id=account_id)
    assert echoed(got) == echoed(mon)

    listed = client.load_balancers.monitors.list(account_id=account_id).result
    matches = [m for m in listed if m.id == mon.id]
    assert len(matches) == 1
    assert echoed(matches[0]) == echoed(mon)

    deleted = client.load_balancers.monitors.delete(mon.id, account_id=account_id)
    assert deleted.id == mon.id

    with raises(NotFoundError) as ei:
        client.load_balancers.monitors.get(mon.id, account_id=account_id)
    assert_api_error(ei.value, 404, 1003)
    assert mon.id not in [m.id for m in client.load_balancers.monitors.list(account_id=account_id).result]


MONITOR_DEFAULTS = {
    "type": "http",
    "method": "GET",
    "path": "/",
    "header": {},
    "port": 0,
    "timeout": 5,
    "retries": 2,
    "interval": 60,
    "expected_body": "",
    "follow_redirects": False,
    "allow_insecure": False,
    "consecutive_up": 0,
    "consecutive_down": 0,
    "description": "",
    "probe_zone": "",
}


def test_monitor_minimal_create_echoes_defaults(client: cloudflare.Cloudflare, account_id: str):
    # An http monitor needs no field at all (type defaults to http, expected_codes to "200").
    mon = client.load_balancers.monitors.create(account_id=account_id, expected_codes="200")
    assert_fields(mon, {**MONITOR_DEFAULTS, "expected_codes": "200"})
    assert ID_RE.match(mon.id or "")
    assert TS_RE.match(mon.created_on or "") and TS_RE.match(mon.modified_on or "")

    got = client.load_balancers.monitors.get(mon.id, account_id=account_id)
    assert_fields(got, {**MONITOR_DEFAULTS, "expected_codes": "200"})


def test_monitor_type_in_any_case_is_echoed_as_written(client: cloudflare.Cloudflare, account_id: str):
    # Terraform's validator takes the type in any case; echoing another spelling would make
    # every plan show a change.
    mon = make_monitor(client, account_id, type="HTTPS")
    assert echoed(mon)["type"] == "HTTPS"
    assert echoed(client.load_balancers.monitors.get(mon.id, account_id=account_id))["type"] == "HTTPS"


def test_monitor_expected_codes_default_to_200(client: cloudflare.Cloudflare, account_id: str):
    # Cloudflare's schema defaults expected_codes to "200"; Terraform sends "" when unset.
    assert client.load_balancers.monitors.create(account_id=account_id).expected_codes == "200"
    empty = client.load_balancers.monitors.create(account_id=account_id, expected_codes="")
    assert empty.expected_codes == "200"


def test_monitor_update_put_replaces(client: cloudflare.Cloudflare, account_id: str):
    mon = make_monitor(
        client,
        account_id,
        description=uid("before"),
        header={"Host": ["example.com"]},
        retries=3,
        interval=120,
        load_balancer_monitor_timeout=7,
        expected_body="ok",
        follow_redirects=True,
        consecutive_up=3,
        consecutive_down=4,
    )
    pause_for_clock()
    upd = client.load_balancers.monitors.update(
        mon.id, account_id=account_id, type="http", expected_codes="200", path="/ready"
    )
    assert upd.id == mon.id
    # PUT replaces the whole object: everything not given is back at its default.
    assert_fields(
        upd,
        {**MONITOR_DEFAULTS, "expected_codes": "200", "path": "/ready"},
    )
    assert_modified_later(upd, mon)

    got = client.load_balancers.monitors.get(mon.id, account_id=account_id)
    assert echoed(got) == echoed(upd)


def test_monitor_edit_patch_merges(client: cloudflare.Cloudflare, account_id: str):
    mon = make_monitor(
        client,
        account_id,
        description=uid("before"),
        header={"Host": ["example.com"]},
        retries=3,
        interval=120,
        load_balancer_monitor_timeout=7,
        expected_body="ok",
    )
    pause_for_clock()
    new_desc = uid("after")
    edited = client.load_balancers.monitors.edit(mon.id, account_id=account_id, description=new_desc, retries=1)
    assert edited.id == mon.id
    before = echoed(mon)
    after = echoed(edited)
    assert after["description"] == new_desc
    assert after["retries"] == 1
    # PATCH merges: untouched fields keep their values.
    for key in ("type", "expected_codes", "path", "header", "interval", "timeout", "expected_body", "method", "port"):
        assert after.get(key) == before.get(key), f"{key}: {after.get(key)!r} != {before.get(key)!r}"
    assert_modified_later(edited, mon)

    got = client.load_balancers.monitors.get(mon.id, account_id=account_id)
    assert echoed(got) == after


def test_monitor_invalid_timeout_is_1002_with_pointer(client: cloudflare.Cloudflare, account_id: str):
    # interval=3600 keeps the interval > (retries+1)*timeout rule satisfied, so only `timeout` is wrong.
    with raises(BadRequestError) as ei:
        make_monitor(client, account_id, load_balancer_monitor_timeout=99, interval=3600)
    assert_api_error(ei.value, 400, 1002, pointer="/timeout", message_suffix="validation failed")


def test_monitor_wrong_field_type_is_1002_with_pointer(client: cloudflare.Cloudflare, account_id: str):
    # §4: "fields of the wrong type or out of range are 400/1002 with a pointer".
    with raises(BadRequestError) as ei:
        make_monitor(client, account_id, interval="sixty")
    assert_api_error(ei.value, 400, 1002, pointer="/interval", message_suffix="validation failed")


def test_monitor_unknown_id_is_404_1003(client: cloudflare.Cloudflare, account_id: str):
    with raises(NotFoundError) as ei:
        client.load_balancers.monitors.get(random_id(), account_id=account_id)
    assert_api_error(ei.value, 404, 1003, message="Not found")


# --------------------------------------------------------------------------------------------
# pools (§3, §4 Pool / Origin)
# --------------------------------------------------------------------------------------------


def test_pool_create_get_list_delete(client: cloudflare.Cloudflare, account_id: str):
    mon = make_monitor(client, account_id)
    name = uid("pool")
    pool = client.load_balancers.pools.create(
        account_id=account_id,
        name=name,
        origins=[
            {"name": "web1", "address": "192.0.2.10", "weight": 0.5, "header": {"Host": ["web1.example.com"]}},
            {"name": "web2", "address": "2001:db8::20", "enabled": False, "port": 8080},
        ],
        monitor=mon.id,
        description="two origins",
        minimum_origins=2,
    )
    assert isinstance(pool, Pool)
    assert ID_RE.match(pool.id or "")
    assert_fields(pool, {"name": name, "monitor": mon.id, "description": "two origins", "minimum_origins": 2,
                         "enabled": True})
    assert TS_RE.match(pool.created_on or "") and TS_RE.match(pool.modified_on or "")
    assert pool.origins is not None and len(pool.origins) == 2
    o1, o2 = pool.origins
    assert (o1.name, o1.address, o1.weight, o1.enabled) == ("web1", "192.0.2.10", 0.5, True)
    assert o1.header is not None and o1.header.host == ["web1.example.com"]
    assert (o2.name, o2.address, o2.enabled, o2.port, o2.weight) == ("web2", "2001:db8::20", False, 8080, 1)

    got = client.load_balancers.pools.get(pool.id, account_id=account_id)
    assert echoed(got) == echoed(pool)

    listed = client.load_balancers.pools.list(account_id=account_id).result
    matches = [p for p in listed if p.id == pool.id]
    assert len(matches) == 1
    assert echoed(matches[0]) == echoed(pool)

    deleted = client.load_balancers.pools.delete(pool.id, account_id=account_id)
    assert deleted.id == pool.id
    with raises(NotFoundError) as ei:
        client.load_balancers.pools.get(pool.id, account_id=account_id)
    assert_api_error(ei.value, 404, 1003)
    assert pool.id not in [p.id for p in client.load_balancers.pools.list(account_id=account_id).result]

    # The monitor is free again once its only pool is gone.
    assert client.load_balancers.monitors.delete(mon.id, account_id=account_id).id == mon.id


POOL_DEFAULTS = {
    "minimum_origins": 1,
    "enabled": True,
    "check_regions": None,
    "description": "",
    "origin_steering": {"policy": "random"},
    "load_shedding": {"default_percent": 0, "default_policy": "random", "session_percent": 0, "session_policy": "hash"},
    "notification_email": "",
    "notification_filter": {
        "origin": {"disable": False, "healthy": None},
        "pool": {"disable": False, "healthy": None},
    },
}


def test_pool_minimal_create_echoes_defaults(client: cloudflare.Cloudflare, account_id: str):
    name = uid("pool")
    pool = client.load_balancers.pools.create(
        account_id=account_id, name=name, origins=[{"name": "o1", "address": "192.0.2.1"}]
    )
    assert_fields(pool, {**POOL_DEFAULTS, "name": name})
    assert pool.monitor is None
    assert pool.origins is not None and len(pool.origins) == 1
    assert_fields(pool.origins[0], {"name": "o1", "address": "192.0.2.1", "weight": 1, "enabled": True, "port": 0})

    got = client.load_balancers.pools.get(pool.id, account_id=account_id)
    assert_fields(got, {**POOL_DEFAULTS, "name": name})


def test_pool_list_filtered_by_monitor(client: cloudflare.Cloudflare, account_id: str):
    m1 = make_monitor(client, account_id)
    m2 = make_monitor(client, account_id)
    p1 = make_pool(client, account_id, monitor=m1.id)
    p1b = make_pool(client, account_id, monitor=m1.id)
    p2 = make_pool(client, account_id, monitor=m2.id)
    make_pool(client, account_id)

    by_m1 = client.load_balancers.pools.list(account_id=account_id, monitor=m1.id).result
    assert sorted(p.id for p in by_m1) == sorted([p1.id, p1b.id])
    assert all(p.monitor == m1.id for p in by_m1)

    by_m2 = client.load_balancers.pools.list(account_id=account_id, monitor=m2.id).result
    assert [p.id for p in by_m2] == [p2.id]


def test_pool_update_put_replaces(client: cloudflare.Cloudflare, account_id: str):
    mon = make_monitor(client, account_id)
    pool = make_pool(
        client,
        account_id,
        origins=[{"name": "a", "address": "192.0.2.1"}, {"name": "b", "address": "192.0.2.2"}],
        monitor=mon.id,
        description="before",
        minimum_origins=2,
        origin_steering={"policy": "hash"},
        enabled=False,
    )
    pause_for_clock()
    new_name = uid("renamed")
    upd = client.load_balancers.pools.update(
        pool.id,
        account_id=account_id,
        name=new_name,
        origins=[{"name": "c", "address": "198.51.100.3"}],
    )
    assert upd.id == pool.id
    assert_fields(upd, {**POOL_DEFAULTS, "name": new_name})
    assert upd.monitor is None, "PUT without `monitor` must detach the monitor"
    assert upd.origins is not None and [(o.name, o.address) for o in upd.origins] == [("c", "198.51.100.3")]
    assert_modified_later(upd, pool)

    got = client.load_balancers.pools.get(pool.id, account_id=account_id)
    assert echoed(got) == echoed(upd)


def test_pool_edit_patch_merges(client: cloudflare.Cloudflare, account_id: str):
    mon = make_monitor(client, account_id)
    pool = make_pool(
        client,
        account_id,
        origins=[{"name": "a", "address": "192.0.2.1"}, {"name": "b", "address": "192.0.2.2", "weight": 0.25}],
        monitor=mon.id,
        description="before",
        minimum_origins=2,
    )
    pause_for_clock()
    edited = client.load_balancers.pools.edit(pool.id, account_id=account_id, description="after", enabled=False)
    assert edited.id == pool.id
    before, after = echoed(pool), echoed(edited)
    assert after["description"] == "after"
    assert after["enabled"] is False
    for key in ("name", "monitor", "minimum_origins", "origin_steering", "check_regions", "load_shedding"):
        assert after.get(key) == before.get(key), f"{key}: {after.get(key)!r} != {before.get(key)!r}"
    assert [(o["name"], o["address"], o["weight"]) for o in after["origins"]] == [
        ("a", "192.0.2.1", 1),
        ("b", "192.0.2.2", 0.25),
    ]
    assert_modified_later(edited, pool)

    got = client.load_balancers.pools.get(pool.id, account_id=account_id)
    assert echoed(got) == after


def test_pool_bulk_edit_resets_notification_email(client: cloudflare.Cloudflare, account_id: str):
    pool = make_pool(client, account_id, notification_email="ops@example.com")
    assert pool.notification_email == "ops@example.com"

    page = client.load_balancers.pools.bulk_edit(account_id=account_id, notification_email="")
    pools = page.result
    mine = [p for p in pools if p.id == pool.id]
    assert len(mine) == 1, "bulk edit must return the affected pools"
    assert mine[0].notification_email == ""
    assert all(p.notification_email == "" for p in pools)

    got = client.load_balancers.pools.get(pool.id, account_id=account_id)
    assert got.notification_email == ""
    assert got.name == pool.name and got.description == pool.description


def test_pool_bulk_edit_orders_by_name(client: cloudflare.Cloudflare, account_id: str):
    # The contract is silent; the real API (OpenAPI text, carried into the SDK's docstring for
    # `pools.bulk_edit`) says: "Pools are ordered by ascending `name`. Returns the list of affected pools."
    # Create names whose order differs from creation order (and, very likely, from id order).
    tag = secrets.token_hex(3)
    for prefix in ("zz", "aa", "mm"):
        make_pool(client, account_id, name=f"{prefix}-{tag}")
    pools = client.load_balancers.pools.bulk_edit(account_id=account_id, notification_email="").result
    names = [p.name for p in pools]
    assert names == sorted(names), f"bulk edit must return pools ordered by ascending name, got {names}"


def test_pool_unknown_id_is_404_1003(client: cloudflare.Cloudflare, account_id: str):
    with raises(NotFoundError) as ei:
        client.load_balancers.pools.get(random_id(), account_id=account_id)
    assert_api_error(ei.value, 404, 1003, message="Not found")


def test_pool_invalid_origin_address_is_1002_with_pointer(client: cloudflare.Cloudflare, account_id: str):
    with raises(BadRequestError) as ei:
        make_pool(
            client,
            account_id,
            origins=[{"name": "ok", "address": "192.0.2.1"}, {"name": "bad", "address": "not a host!"}],
        )
    assert_api_error(ei.value, 400, 1002, pointer="/origins/1/address", message_suffix="validation failed")


def test_pool_health_without_monitor_is_unavailable(client: cloudflare.Cloudflare, account_id: str):
    # §6: a pool without a monitor (or without a verdict yet) answers 400/1002 "Health info unavailable".
    pool = make_pool(client, account_id)
    with raises(BadRequestError) as ei:
        client.load_balancers.pools.health.get(pool.id, account_id=account_id)
    assert_api_error(ei.value, 400, 1002)
    assert "Health info unavailable" in (ei.value.errors[0].message or "")


def test_pool_health_without_verdict_is_unavailable(client: cloudflare.Cloudflare, account_id: str):
    # The suite runs the server with --no-agent: a monitored pool never gets a verdict.
    mon = make_monitor(client, account_id)
    pool = make_pool(client, account_id, monitor=mon.id)
    with raises(BadRequestError) as ei:
        client.load_balancers.pools.health.get(pool.id, account_id=account_id)
    assert_api_error(ei.value, 400, 1002)
    assert "Health info unavailable" in (ei.value.errors[0].message or "")


# --------------------------------------------------------------------------------------------
# references (§3)
# --------------------------------------------------------------------------------------------


def refs(page) -> List[Dict[str, Any]]:
    return [echoed(r) for r in page.result]


def test_monitor_references_list_pool_as_referrer(client: cloudflare.Cloudflare, account_id: str):
    mon = make_monitor(client, account_id)
    assert refs(client.load_balancers.monitors.references.get(mon.id, account_id=account_id)) == []

    pool = make_pool(client, account_id, monitor=mon.id)
    got = refs(client.load_balancers.monitors.references.get(mon.id, account_id=account_id))
    assert got == [
        {"reference_type": "referrer", "resource_id": pool.id, "resource_name": pool.name, "resource_type": "pool"}
    ]


def test_pool_references_list_monitor_as_referral_and_lb_as_referrer(
    client: cloudflare.Cloudflare, account_id: str, zone_id: str
):
    mon = make_monitor(client, account_id)
    pool = make_pool(client, account_id, monitor=mon.id)
    lb = make_lb(client, zone_id, [pool.id])

    got = refs(client.load_balancers.pools.references.get(pool.id, account_id=account_id))
    expected = [
        {"reference_type": "referral", "resource_id": mon.id, "resource_type": "monitor"},
        {"reference_type": "referrer", "resource_id": lb.id, "resource_name": lb.name, "resource_type": "load_balancer"},
    ]
    for want in expected:
        assert any(all(r.get(k) == v for k, v in want.items()) for r in got), f"{want} not in {got}"
    assert len(got) == 2, got


# --------------------------------------------------------------------------------------------
# load balancers (§3 zone level, §4 Load balancer)
# --------------------------------------------------------------------------------------------


LB_DEFAULTS = {
    "steering_policy": "",
    "proxied": False,
    "ttl": 30,
    "enabled": True,
    "session_affinity": "none",
    "description": "",
    "region_pools": {},
    "country_pools": {},
    "pop_pools": {},
    "rules": [],
    "adaptive_routing": {"failover_across_pools": False},
    "location_strategy": {"mode": "pop", "prefer_ecs": "proximity"},
    "random_steering": {"default_weight": 1},
    "session_affinity_attributes": {
        "samesite": "Auto",
        "secure": "Auto",
        "zero_downtime_failover": "none",
        "require_all_headers": False,
    },
}


def assert_lb_defaults(lb: Any) -> None:
    got = echoed(lb)
    simple = {k: v for k, v in LB_DEFAULTS.items() if k not in ("random_steering", "session_affinity_attributes")}
    assert_fields(lb, simple)
    # Nested objects: at least the documented defaults (the SDK may know extra keys).
    assert "random_steering" in got and got["random_steering"].get("default_weight") == 1, got.get("random_steering")
    attrs = got.get("session_affinity_attributes")
    assert isinstance(attrs, dict), got
    for k, v in LB_DEFAULTS["session_affinity_attributes"].items():
        assert attrs.get(k) == v, f"session_affinity_attributes.{k} = {attrs.get(k)!r}, want {v!r}"


def test_lb_create_get_list_delete(client: cloudflare.Cloudflare, account_id: str, zone_id: str):
    p1 = make_pool(client, account_id)
    p2 = make_pool(client, account_id)
    lb = client.load_balancers.create(
        zone_id=zone_id, name="www.example.com", default_pools=[p1.id, p2.id], fallback_pool=p2.id
    )
    assert isinstance(lb, LoadBalancer)
    assert ID_RE.match(lb.id or "")
    assert_fields(
        lb,
        {"name": "www.example.com", "default_pools": [p1.id, p2.id], "fallback_pool": p2.id, "zone_name": "example.com"},
    )
    assert_lb_defaults(lb)
    assert TS_RE.match(lb.created_on or "") and TS_RE.match(lb.modified_on or "")

    got = client.load_balancers.get(lb.id, zone_id=zone_id)
    assert echoed(got) == echoed(lb)

    listed = client.load_balancers.list(zone_id=zone_id).result
    matches = [x for x in listed if x.id == lb.id]
    assert len(matches) == 1
    assert echoed(matches[0]) == echoed(lb)

    deleted = client.load_balancers.delete(lb.id, zone_id=zone_id)
    assert deleted.id == lb.id
    with raises(NotFoundError) as ei:
        client.load_balancers.get(lb.id, zone_id=zone_id)
    assert_api_error(ei.value, 404, 1003)
    assert lb.id not in [x.id for x in client.load_balancers.list(zone_id=zone_id).result]


def test_lb_update_put_replaces(client: cloudflare.Cloudflare, account_id: str, zone_id: str):
    p1 = make_pool(client, account_id)
    p2 = make_pool(client, account_id)
    lb = make_lb(
        client,
        zone_id,
        [p1.id, p2.id],
        description="before",
        ttl=120,
        steering_policy="random",
        session_affinity="cookie",
        proxied=True,
    )
    assert_fields(lb, {"description": "before", "ttl": 120, "steering_policy": "random",
                       "session_affinity": "cookie", "proxied": True})
    pause_for_clock()
    new_name = f"{uid('lb')}.example.com"
    upd = client.load_balancers.update(
        lb.id, zone_id=zone_id, name=new_name, default_pools=[p2.id, p1.id], fallback_pool=p1.id
    )
    assert upd.id == lb.id
    assert_fields(upd, {"name": new_name, "default_pools": [p2.id, p1.id], "fallback_pool": p1.id})
    assert_lb_defaults(upd)
    assert_modified_later(upd, lb)

    got = client.load_balancers.get(lb.id, zone_id=zone_id)
    assert echoed(got) == echoed(upd)


def test_lb_edit_patch_merges(client: cloudflare.Cloudflare, account_id: str, zone_id: str):
    p1 = make_pool(client, account_id)
    p2 = make_pool(client, account_id)
    lb = make_lb(client, zone_id, [p1.id, p2.id], description="before", ttl=120, steering_policy="random")
    pause_for_clock()
    edited = client.load_balancers.edit(lb.id, zone_id=zone_id, description="after", default_pools=[p2.id, p1.id])
    assert edited.id == lb.id
    before, after = echoed(lb), echoed(edited)
    assert after["description"] == "after"
    assert after["default_pools"] == [p2.id, p1.id]
    for key in ("name", "fallback_pool", "ttl", "steering_policy", "proxied", "enabled", "session_affinity"):
        assert after.get(key) == before.get(key), f"{key}: {after.get(key)!r} != {before.get(key)!r}"
    assert_modified_later(edited, lb)

    got = client.load_balancers.get(lb.id, zone_id=zone_id)
    assert echoed(got) == after


def test_lb_rules_get_cloudflares_defaults_and_survive_update_and_edit(
    client: cloudflare.Cloudflare, account_id: str, zone_id: str
):
    p1 = make_pool(client, account_id)
    p2 = make_pool(client, account_id)
    lb = client.load_balancers.create(
        zone_id=zone_id,
        name=f"{uid('lb')}.example.com",
        default_pools=[p1.id],
        fallback_pool=p1.id,
        proxied=True,
        rules=[
            {"name": "api", "condition": 'starts_with(http.request.uri.path, "/api/")', "overrides": {"default_pools": [p2.id]}},
            {"name": "maintenance", "condition": 'http.request.uri.path eq "/down"', "fixed_response": {"status_code": 503}},
        ],
    )
    rules = echoed(lb)["rules"]
    # Priorities from array order when no rule sets one; a fixed response terminates.
    assert [r["priority"] for r in rules] == [0, 1], rules
    assert [r["terminates"] for r in rules] == [False, True], rules
    assert [r["disabled"] for r in rules] == [False, False], rules
    assert rules[0]["overrides"] == {"default_pools": [p2.id]}, rules
    assert rules[1]["fixed_response"] == {"status_code": 503}, rules
    assert lb.rules is not None and lb.rules[0].overrides is not None
    assert lb.rules[0].overrides.default_pools == [p2.id]

    # A pool a rule names is one of the load balancer's references: it cannot go.
    with raises(BadRequestError) as ei:
        client.load_balancers.pools.delete(p2.id, account_id=account_id)
    assert_api_error(ei.value, 400, 1004)

    # PATCH keeps the rules; PUT replaces them.
    edited = client.load_balancers.edit(lb.id, zone_id=zone_id, description="edited")
    assert echoed(edited)["rules"] == rules
    updated = client.load_balancers.update(
        lb.id,
        zone_id=zone_id,
        name=lb.name,
        default_pools=[p1.id],
        fallback_pool=p1.id,
        proxied=True,
        rules=[{"name": "late", "condition": "", "priority": 7, "disabled": True}],
    )
    assert echoed(updated)["rules"] == [
        {"name": "late", "condition": "", "priority": 7, "disabled": True, "terminates": False, "overrides": {}}
    ]
    assert echoed(client.load_balancers.get(lb.id, zone_id=zone_id))["rules"] == echoed(updated)["rules"]


def test_lb_bad_rule_is_1002_with_pointer(client: cloudflare.Cloudflare, account_id: str, zone_id: str):
    p1 = make_pool(client, account_id)
    name = f"{uid('lb')}.example.com"
    with raises(BadRequestError) as ei:
        client.load_balancers.create(
            zone_id=zone_id,
            name=name,
            default_pools=[p1.id],
            fallback_pool=p1.id,
            proxied=True,
            rules=[{"name": "ok", "condition": ""}, {"name": "bad", "condition": "http.request.uri.path eq"}],
        )
    assert_api_error(ei.value, 400, 1002, pointer="/rules/1/condition")
    # Nothing half-written: no load balancer by that name.
    assert name not in [l.name for l in client.load_balancers.list(zone_id=zone_id)]


def test_fields_vantage_does_not_read_are_refused_not_dropped(
    client: cloudflare.Cloudflare, account_id: str, zone_id: str
):
    origins = [{"name": "o1", "address": "192.0.2.1"}]
    # A field no type reads: 400 with a pointer, nothing created.
    name = uid("pool")
    with raises(BadRequestError) as ei:
        client.load_balancers.pools.create(account_id=account_id, name=name, origins=origins, extra_body={"colour": "red"})
    assert_api_error(ei.value, 400, 1002, pointer="/colour")
    assert name not in [p.name for p in client.load_balancers.pools.list(account_id=account_id)]
    # Cloudflare fields Vantage does not implement: refused when they would do something.
    with raises(BadRequestError) as ei:
        client.load_balancers.pools.create(
            account_id=account_id,
            name=uid("pool"),
            origins=[{"name": "o1", "address": "192.0.2.1", "virtual_network_id": "a5624d4e-044a-4ff0-b3e1-e2465353d4b4"}],
        )
    assert_api_error(ei.value, 400, 1002, pointer="/origins/0/virtual_network_id")
    assert "not supported" in ei.value.errors[0].message
    # Load shedding is applied; sessions are shed by address only, as Cloudflare allows.
    shed = client.load_balancers.pools.create(
        account_id=account_id, name=uid("pool"), origins=origins, load_shedding={"default_percent": 10}
    )
    assert echoed(shed)["load_shedding"]["default_percent"] == 10
    with raises(BadRequestError) as ei:
        client.load_balancers.pools.create(
            account_id=account_id,
            name=uid("pool"),
            origins=origins,
            load_shedding={"session_percent": 10, "session_policy": "random"},
        )
    assert_api_error(ei.value, 400, 1002, pointer="/load_shedding/session_policy")
    # probe_zone is applied (the check's Host and server name); it means nothing to a TCP check.
    assert echoed(make_monitor(client, account_id, probe_zone="Example.com."))["probe_zone"] == "example.com"
    with raises(BadRequestError) as ei:
        make_monitor(client, account_id, type="tcp", port=443, expected_codes=None, path=None, probe_zone="example.com")
    assert_api_error(ei.value, 400, 1002, pointer="/probe_zone")
    pool = make_pool(client, account_id)
    with raises(BadRequestError) as ei:
        make_lb(client, zone_id, [pool.id], networks=["cloudflare"])
    assert_api_error(ei.value, 400, 1002, pointer="/networks")
    # Empty, they change nothing and pass; so do the read-only fields of a document read back.
    lb = make_lb(client, zone_id, [pool.id], networks=[])
    doc = echoed(client.load_balancers.get(lb.id, zone_id=zone_id))
    put = client.put(
        f"/zones/{zone_id}/load_balancers/{lb.id}", body=doc, cast_to=object
    )
    assert put["success"] is True, put
    assert put["result"]["id"] == lb.id and put["result"]["created_on"] == doc["created_on"]


def test_monitor_groups_through_the_sdk_client(client: cloudflare.Cloudflare, account_id: str):
    # The pinned Python SDK predates monitor groups: its generic client speaks to them, as a
    # script would.
    base = f"/accounts/{account_id}/load_balancers/monitor_groups"
    first, second = make_monitor(client, account_id), make_monitor(client, account_id)
    member = lambda m, **kw: {"monitor_id": m.id, "enabled": True, "monitoring_only": False, "must_be_healthy": False, **kw}
    created = client.post(base, body={"description": "pair", "members": [member(first), member(second)]}, cast_to=object)
    group = created["result"]
    assert [m["monitor_id"] for m in group["members"]] == [first.id, second.id]
    # A document read back can be PUT back (read-only times included).
    put = client.put(f"{base}/{group['id']}", body=group, cast_to=object)
    assert put["result"]["created_on"] == group["created_on"], put
    pool = make_pool(client, account_id, extra_body={"monitor_group": group["id"]})
    assert echoed(client.load_balancers.pools.get(pool.id, account_id=account_id))["monitor_group"] == group["id"]
    # A member in use, and the group in use, cannot be deleted.
    with raises(BadRequestError) as ei:
        client.load_balancers.monitors.delete(second.id, account_id=account_id)
    assert_api_error(ei.value, 400, 1004)
    with raises(BadRequestError) as ei:
        client.delete(f"{base}/{group['id']}", cast_to=object)
    assert_api_error(ei.value, 400, 1004)
    # Both a monitor and a group: refused at the group's pointer, nothing created.
    name = uid("pool")
    with raises(BadRequestError) as ei:
        make_pool(client, account_id, name=name, monitor=first.id, extra_body={"monitor_group": group["id"]})
    assert_api_error(ei.value, 400, 1002, pointer="/monitor_group")
    assert name not in [p.name for p in client.load_balancers.pools.list(account_id=account_id)]
    # A veto holder that is only watched is a contradiction.
    with raises(BadRequestError) as ei:
        client.post(base, body={"members": [member(first, must_be_healthy=True, monitoring_only=True)]}, cast_to=object)
    assert_api_error(ei.value, 400, 1002, pointer="/members/0/must_be_healthy")
    client.load_balancers.pools.delete(pool.id, account_id=account_id)
    assert client.delete(f"{base}/{group['id']}", cast_to=object)["result"]["id"] == group["id"]


def test_drain_duration_and_origin_disabled_at(client: cloudflare.Cloudflare, account_id: str, zone_id: str):
    pool = make_pool(
        client,
        account_id,
        origins=[{"name": "o1", "address": "192.0.2.1"}, {"name": "o2", "address": "192.0.2.2", "enabled": False}],
    )
    got = echoed(client.load_balancers.pools.get(pool.id, account_id=account_id))
    assert "disabled_at" not in got["origins"][0]
    assert got["origins"][1]["disabled_at"], got
    lb = make_lb(
        client,
        zone_id,
        [pool.id],
        session_affinity="cookie",
        session_affinity_attributes={"drain_duration": 120},
    )
    assert echoed(lb)["session_affinity_attributes"]["drain_duration"] == 120
    with raises(BadRequestError) as ei:
        make_lb(client, zone_id, [pool.id], session_affinity_attributes={"drain_duration": 3601})
    assert_api_error(ei.value, 400, 1002, pointer="/session_affinity_attributes/drain_duration")


def test_lb_with_unknown_pool_is_1002(client: cloudflare.Cloudflare, account_id: str, zone_id: str):
    good = make_pool(client, account_id)
    with raises(BadRequestError) as ei:
        client.load_balancers.create(
            zone_id=zone_id,
            name=f"{uid('lb')}.example.com",
            default_pools=[random_id()],
            fallback_pool=good.id,
        )
    assert_api_error(ei.value, 400, 1002, pointer="/default_pools/0", message_suffix="validation failed")


# --------------------------------------------------------------------------------------------
# referential integrity (§1 code 1004)
# --------------------------------------------------------------------------------------------


def test_delete_monitor_used_by_pool_is_1004(client: cloudflare.Cloudflare, account_id: str):
    mon = make_monitor(client, account_id)
    make_pool(client, account_id, monitor=mon.id)
    with raises(BadRequestError) as ei:
        client.load_balancers.monitors.delete(mon.id, account_id=account_id)
    assert_api_error(ei.value, 400, 1004)
    assert "Object referenced by other objects" in (ei.value.errors[0].message or "")
    # Still there.
    assert client.load_balancers.monitors.get(mon.id, account_id=account_id).id == mon.id


def test_delete_pool_used_by_lb_is_1004(client: cloudflare.Cloudflare, account_id: str, zone_id: str):
    pool = make_pool(client, account_id)
    make_lb(client, zone_id, [pool.id])
    with raises(BadRequestError) as ei:
        client.load_balancers.pools.delete(pool.id, account_id=account_id)
    assert_api_error(ei.value, 400, 1004)
    assert "Object referenced by other objects" in (ei.value.errors[0].message or "")
    assert client.load_balancers.pools.get(pool.id, account_id=account_id).id == pool.id


# --------------------------------------------------------------------------------------------
# authentication and permissions (§1, §2)
# --------------------------------------------------------------------------------------------


def test_read_only_token_can_list_but_not_create(server: VantageServer, client: cloudflare.Cloudflare, account_id: str):
    existing = make_monitor(client, account_id)
    ro = server.client_for(server.create_token(account_id, [MONITORS_READ]))

    listed = ro.load_balancers.monitors.list(account_id=account_id).result
    assert existing.id in [m.id for m in listed]
    assert ro.load_balancers.monitors.get(existing.id, account_id=account_id).id == existing.id

    with raises(PermissionDeniedError) as ei:
        make_monitor(ro, account_id)
    assert_api_error(ei.value, 403, 10000, message="Authentication error")

    with raises(PermissionDeniedError) as ei:
        ro.load_balancers.monitors.delete(existing.id, account_id=account_id)
    assert_api_error(ei.value, 403, 10000)
    assert client.load_balancers.monitors.get(existing.id, account_id=account_id).id == existing.id


def test_write_token_can_create(server: VantageServer, account_id: str):
    rw = server.client_for(server.create_token(account_id, [MONITORS_WRITE]))
    mon = make_monitor(rw, account_id)
    assert ID_RE.match(mon.id or "")
    pool = make_pool(rw, account_id, monitor=mon.id)
    assert pool.monitor == mon.id


def test_other_accounts_token_is_denied(client: cloudflare.Cloudflare, account_id: str, other_account: OtherAccount):
    pool = make_pool(client, account_id)
    other = other_account.client

    with raises(PermissionDeniedError) as ei:
        other.load_balancers.pools.list(account_id=account_id)
    assert_api_error(ei.value, 403, 10000, message="Authentication error")

    # §2: 403/10000 — or 404 for object IDs — never the object.
    with pytest.raises((PermissionDeniedError, NotFoundError)) as ei2:
        other.load_balancers.pools.get(pool.id, account_id=account_id)
    if ei2.value.status_code == 403:
        assert_api_error(ei2.value, 403, 10000)
    else:
        assert_api_error(ei2.value, 404, 1003)

    with pytest.raises((PermissionDeniedError, NotFoundError)):
        other.load_balancers.pools.get(pool.id, account_id=other_account.account_id)

    # The other account's own (empty) view works.
    own = other.load_balancers.pools.list(account_id=other_account.account_id).result
    assert pool.id not in [p.id for p in own]


def test_garbage_token_is_9109(server: VantageServer, account_id: str):
    garbage = server.client_for(new_token())
    with raises(PermissionDeniedError) as ei:
        garbage.load_balancers.monitors.list(account_id=account_id)
    assert_api_error(ei.value, 403, 9109, message="Invalid access token")


def test_revoked_token_is_9109(server: VantageServer, account_id: str):
    name = uid("revoke-me")
    token = server.create_token(account_id, [MONITORS_READ], name=name)
    c = server.client_for(token)
    c.load_balancers.monitors.list(account_id=account_id)

    entries = [t for t in server.list_tokens() if t.get("name") == name]
    assert len(entries) == 1, entries
    assert entries[0].get("status") == "active", entries[0]
    server.revoke_token(entries[0]["id"])
    server.wait_token_status(token, 403)

    with raises(PermissionDeniedError) as ei:
        c.load_balancers.monitors.list(account_id=account_id)
    assert_api_error(ei.value, 403, 9109, message="Invalid access token")


def test_pool_with_monitor_of_other_account_is_1002(
    client: cloudflare.Cloudflare, account_id: str, other_account: OtherAccount
):
    foreign = make_monitor(other_account.client, other_account.account_id)
    with raises(BadRequestError) as ei:
        make_pool(client, account_id, monitor=foreign.id)
    assert_api_error(ei.value, 400, 1002, pointer="/monitor", message_suffix="validation failed")


def test_zone_scoped_lb_permissions(server: VantageServer, client: cloudflare.Cloudflare, account_id: str, zone_id: str):
    # §2: `Load Balancers Read/Write` are zone-scope permissions for /zones/{zone_id}/load_balancers*,
    # separate from the account-scope `Load Balancing: Monitors and Pools ...`.
    pool = make_pool(client, account_id)
    lb = make_lb(client, zone_id, [pool.id])
    ro = server.client_for(server.create_token(account_id, ["Load Balancers Read"]))

    assert lb.id in [x.id for x in ro.load_balancers.list(zone_id=zone_id).result]
    assert ro.load_balancers.get(lb.id, zone_id=zone_id).id == lb.id
    with raises(PermissionDeniedError) as ei:
        make_lb(ro, zone_id, [pool.id])
    assert_api_error(ei.value, 403, 10000, message="Authentication error")
    with raises(PermissionDeniedError) as ei:
        ro.load_balancers.pools.list(account_id=account_id)
    assert_api_error(ei.value, 403, 10000)

    rw = server.client_for(server.create_token(account_id, ["Load Balancers Write"]))
    created = make_lb(rw, zone_id, [pool.id])
    assert ID_RE.match(created.id or "")
    assert rw.load_balancers.delete(created.id, zone_id=zone_id).id == created.id


# --------------------------------------------------------------------------------------------
# regions (§3, §7) — the SDK types these results as plain JSON objects
# --------------------------------------------------------------------------------------------

REGION_CODES = {"WNAM", "ENAM", "WEU", "EEU", "NSAM", "SSAM", "OC", "ME", "NAF", "SAF", "SAS", "SEAS", "NEAS"}


def test_regions_list_and_get(client: cloudflare.Cloudflare, account_id: str):
    res = client.load_balancers.regions.list(account_id=account_id)
    assert isinstance(res, dict), res
    assert "iso_standard" in res, res
    codes = [r["region_code"] for r in res["regions"]]
    assert set(codes) == REGION_CODES and len(codes) == len(REGION_CODES), codes
    for r in res["regions"]:
        assert isinstance(r["countries"], list), r

    one = client.load_balancers.regions.get("WEU", account_id=account_id)
    assert isinstance(one, dict), one
    assert [r["region_code"] for r in one["regions"]] == ["WEU"], one
