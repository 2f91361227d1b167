// Cloudflare's official TypeScript/JavaScript SDK (npm `cloudflare`, pinned in
// package-lock.json) against a real `vantage serve`: one server per run, on 127.0.0.1:0 with a
// fresh data directory, its built-in probe location checking a real HTTP origin this file
// starts. Only the SDK talks to the server; what it sees is what a user's script would see.
//
//   VANTAGE_BIN=target/debug/vantage node --test tests/sdk-ts/
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";

import Cloudflare, {
  BadRequestError,
  NotFoundError,
  PermissionDeniedError,
} from "cloudflare";

const BIN = process.env.VANTAGE_BIN ?? "target/debug/vantage";
const TOKEN = "sdk-ts-admin-" + randomBytes(18).toString("hex");
// Bounded loops: a list that never ends (a paging bug) fails the test instead of hanging it.
const MAX_ITEMS = 10_000;

let server;
let dir;
let origin;
let originPort;
let client;
let accountId;

const uid = (prefix) => `${prefix}-${randomBytes(5).toString("hex")}`;

async function collect(iterable) {
  const out = [];
  for await (const item of iterable) {
    out.push(item);
    assert.ok(out.length <= MAX_ITEMS, "auto-pagination does not end");
  }
  return out;
}

async function eventually(what, limitMs, probe) {
  const deadline = Date.now() + limitMs;
  let last;
  while (Date.now() < deadline) {
    try {
      last = await probe();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  assert.fail(`timed out waiting for ${what}; last: ${last}`);
}

function assertApiError(err, Class, status, code) {
  assert.ok(err instanceof Class, `expected ${Class.name}, got ${err?.constructor?.name}: ${err}`);
  assert.equal(err.status, status);
  assert.ok(
    (err.errors ?? []).some((e) => e.code === code),
    `expected code ${code} in ${JSON.stringify(err.errors)}`,
  );
}

before(async () => {
  origin = createServer((_, res) => res.writeHead(200).end("ok"));
  await new Promise((r) => origin.listen(0, "127.0.0.1", r));
  originPort = origin.address().port;

  dir = mkdtempSync(join(tmpdir(), "vantage-sdk-ts-"));
  server = spawn(BIN, ["serve", "--listen", "127.0.0.1:0", "--data-dir", join(dir, "data")], {
    env: { ...process.env, VANTAGE_BOOTSTRAP_TOKEN: TOKEN, VANTAGE_LOG: "info" },
    stdio: ["ignore", "ignore", "pipe"],
  });
  const addr = await new Promise((resolve, reject) => {
    let seen = "";
    const timer = setTimeout(() => reject(new Error(`no 'listening on' in:\n${seen}`)), 30_000);
    server.stderr.on("data", (chunk) => {
      seen += chunk;
      const m = /listening on (\S+)/.exec(seen);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    server.on("exit", (code) => reject(new Error(`vantage exited (${code}):\n${seen}`)));
  });
  client = new Cloudflare({
    apiToken: TOKEN,
    baseURL: `http://${addr}/client/v4`,
    maxRetries: 0,
    timeout: 30_000,
  });
  const accounts = await collect(client.accounts.list());
  assert.equal(accounts.length, 1);
  accountId = accounts[0].id;
});

after(() => {
  server?.kill("SIGTERM");
  origin?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const monitorBody = (extra = {}) => ({
  account_id: accountId,
  type: "http",
  expected_codes: "200",
  interval: 5,
  timeout: 2,
  retries: 0,
  port: originPort,
  description: uid("mon"),
  ...extra,
});

test("the token verifies", async () => {
  const v = await client.user.tokens.verify();
  assert.equal(v.status, "active");
});

test("monitors: create, get, edit merges, auto-pagination ends, delete", async () => {
  const created = [];
  for (let i = 0; i < 3; i++) created.push(await client.loadBalancers.monitors.create(monitorBody()));
  const got = await client.loadBalancers.monitors.get(created[0].id, { account_id: accountId });
  assert.equal(got.id, created[0].id);
  assert.equal(got.expected_codes, "200");
  const edited = await client.loadBalancers.monitors.edit(created[0].id, {
    account_id: accountId,
    description: "renamed",
  });
  assert.equal(edited.description, "renamed");
  assert.equal(edited.interval, 5, "PATCH keeps what it does not name");
  const all = await collect(client.loadBalancers.monitors.list({ account_id: accountId }));
  for (const m of created) assert.ok(all.some((x) => x.id === m.id));
  await client.loadBalancers.monitors.delete(created[2].id, { account_id: accountId });
  await assert.rejects(
    client.loadBalancers.monitors.get(created[2].id, { account_id: accountId }),
    (e) => (assertApiError(e, NotFoundError, 404, 1003), true),
  );
});

test("pools: create with defaults echoed, edit merges, list, a referenced monitor is kept", async () => {
  const monitor = await client.loadBalancers.monitors.create(monitorBody());
  const pool = await client.loadBalancers.pools.create({
    account_id: accountId,
    name: uid("pool"),
    monitor: monitor.id,
    origins: [{ name: "a", address: "127.0.0.1" }],
  });
  assert.equal(pool.enabled, true);
  assert.equal(pool.minimum_origins, 1);
  assert.equal(pool.origins[0].weight, 1);
  const edited = await client.loadBalancers.pools.edit(pool.id, {
    account_id: accountId,
    description: "edited",
  });
  assert.equal(edited.description, "edited");
  assert.equal(edited.monitor, monitor.id);
  const pools = await collect(client.loadBalancers.pools.list({ account_id: accountId }));
  assert.ok(pools.some((p) => p.id === pool.id));
  await assert.rejects(
    client.loadBalancers.monitors.delete(monitor.id, { account_id: accountId }),
    (e) => (assertApiError(e, BadRequestError, 400, 1004), true),
  );
});

test("pool health: the built-in location judges a live origin healthy", async () => {
  const monitor = await client.loadBalancers.monitors.create(monitorBody());
  const pool = await client.loadBalancers.pools.create({
    account_id: accountId,
    name: uid("health"),
    monitor: monitor.id,
    origins: [{ name: "live", address: "127.0.0.1" }],
  });
  const health = await eventually("a verdict", 30_000, async () => {
    const h = await client.loadBalancers.pools.health.get(pool.id, { account_id: accountId });
    return h.pop_health?.healthy === true ? h : null;
  });
  assert.equal(health.pool_id, pool.id);
});

test("monitor groups: CRUD, references, and a pool judged by the group", async () => {
  const ok = await client.loadBalancers.monitors.create(monitorBody());
  const wrong = await client.loadBalancers.monitors.create(monitorBody({ expected_codes: "204" }));
  const member = (m, extra = {}) => ({
    monitor_id: m.id,
    enabled: true,
    monitoring_only: false,
    must_be_healthy: false,
    ...extra,
  });
  const group = await client.loadBalancers.monitorGroups.create({
    account_id: accountId,
    description: uid("group"),
    members: [member(ok), member(wrong)],
  });
  assert.match(group.id, /^[0-9a-f]{32}$/);
  assert.equal(group.members.length, 2);
  assert.ok(group.members[0].created_at, JSON.stringify(group));
  const got = await client.loadBalancers.monitorGroups.get(group.id, { account_id: accountId });
  assert.deepEqual(got.members.map((m) => m.monitor_id), [ok.id, wrong.id]);
  const all = await collect(client.loadBalancers.monitorGroups.list({ account_id: accountId }));
  assert.ok(all.some((g) => g.id === group.id));

  const pool = await client.loadBalancers.pools.create({
    account_id: accountId,
    name: uid("grouped"),
    monitor_group: group.id,
    origins: [{ name: "live", address: "127.0.0.1" }],
  });
  assert.equal(pool.monitor_group, group.id);
  // One of two voters fails: a tie is healthy, and the failing member is shown.
  const health = await eventually("the group's verdict", 30_000, async () => {
    const h = await client.loadBalancers.pools.health.get(pool.id, { account_id: accountId });
    const members = h.pop_health?.origins?.[0]?.ip?.members ?? [];
    return h.pop_health?.healthy === true && members[1]?.healthy === false ? h : null;
  });
  assert.equal(health.pop_health.origins[0].ip.members[1].monitor_id, wrong.id);

  // Made critical, the failing member takes the pool down.
  const edited = await client.loadBalancers.monitorGroups.edit(group.id, {
    account_id: accountId,
    description: group.description,
    members: [member(ok), member(wrong, { must_be_healthy: true })],
  });
  assert.equal(edited.members[1].must_be_healthy, true);
  await eventually("the critical member decides", 30_000, async () => {
    const h = await client.loadBalancers.pools.health.get(pool.id, { account_id: accountId });
    return h.pop_health?.healthy === false;
  });

  const refs = await collect(client.loadBalancers.monitorGroups.references.get(group.id, { account_id: accountId }));
  assert.deepEqual(
    refs.map((r) => `${r.reference_type}:${r.resource_type}`).sort(),
    ["referral:monitor", "referral:monitor", "referrer:pool"],
  );
  await assert.rejects(
    client.loadBalancers.monitorGroups.delete(group.id, { account_id: accountId }),
    (e) => (assertApiError(e, BadRequestError, 400, 1004), true),
  );
  await assert.rejects(
    client.loadBalancers.monitorGroups.create({
      account_id: accountId,
      description: "duplicate members",
      members: [member(ok), member(ok)],
    }),
    (e) => (assertApiError(e, BadRequestError, 400, 1002), true),
  );
  await client.loadBalancers.pools.delete(pool.id, { account_id: accountId });
  await client.loadBalancers.monitorGroups.delete(group.id, { account_id: accountId });
  await assert.rejects(
    client.loadBalancers.monitorGroups.get(group.id, { account_id: accountId }),
    (e) => (assertApiError(e, NotFoundError, 404, 1003), true),
  );
});

test("monitor preview: answered at once, then the result", async () => {
  const monitor = await client.loadBalancers.monitors.create(monitorBody());
  await client.loadBalancers.pools.create({
    account_id: accountId,
    name: uid("preview"),
    monitor: monitor.id,
    origins: [{ name: "live", address: "127.0.0.1" }],
  });
  const started = await client.loadBalancers.monitors.previews.create(monitor.id, monitorBody());
  assert.ok(started.preview_id, JSON.stringify(started));
  const result = await eventually("the preview's result", 30_000, async () => {
    const r = await client.loadBalancers.previews.get(started.preview_id, { account_id: accountId });
    const pools = Object.values(r ?? {});
    return pools.length > 0 && pools.every((p) => p.healthy !== undefined) ? r : null;
  });
  const [poolResult] = Object.values(result);
  assert.equal(poolResult.healthy, true, JSON.stringify(result));
});

test("load balancers: zone-scoped and account-scoped addressing reach the same objects", async () => {
  const zoneName = `${uid("z")}.example`;
  const zone = await client.zones.create({ account: { id: accountId }, name: zoneName });
  const pool = await client.loadBalancers.pools.create({
    account_id: accountId,
    name: uid("lbpool"),
    origins: [{ name: "a", address: "192.0.2.1" }],
  });
  const lb = await client.loadBalancers.create({
    zone_id: zone.id,
    name: `www.${zoneName}`,
    default_pools: [pool.id],
    fallback_pool: pool.id,
  });
  assert.equal(lb.name, `www.${zoneName}`);
  const viaAccount = await client.loadBalancers.get(lb.id, { account_id: accountId });
  assert.equal(viaAccount.id, lb.id);
  const edited = await client.loadBalancers.edit(lb.id, { zone_id: zone.id, ttl: 60 });
  assert.equal(edited.ttl, 60);
  const inZone = await collect(client.loadBalancers.list({ zone_id: zone.id }));
  assert.deepEqual(inZone.map((l) => l.id), [lb.id]);
  const inAccount = await collect(client.loadBalancers.list({ account_id: accountId }));
  assert.ok(inAccount.some((l) => l.id === lb.id));
  await assert.rejects(
    client.loadBalancers.pools.delete(pool.id, { account_id: accountId }),
    (e) => (assertApiError(e, BadRequestError, 400, 1004), true),
  );
  await client.loadBalancers.delete(lb.id, { zone_id: zone.id });
  await assert.rejects(
    client.loadBalancers.get(lb.id, { zone_id: zone.id }),
    (e) => (assertApiError(e, NotFoundError, 404, 1003), true),
  );
});

test("bad input is a 400 with code 1002 and a pointer, and nothing is created", async () => {
  const before = await collect(client.loadBalancers.monitors.list({ account_id: accountId }));
  await assert.rejects(client.loadBalancers.monitors.create(monitorBody({ timeout: 0 })), (e) => {
    assertApiError(e, BadRequestError, 400, 1002);
    assert.ok(
      e.errors.some((x) => x.source?.pointer === "/timeout"),
      JSON.stringify(e.errors),
    );
    return true;
  });
  const afterList = await collect(client.loadBalancers.monitors.list({ account_id: accountId }));
  assert.equal(afterList.length, before.length);
});

test("every list the SDK auto-paginates comes to an end", async () => {
  // Enough objects that a small page size needs several pages; a page past the end must be
  // empty or the SDK would loop (bounded by `collect`).
  const monitor = await client.loadBalancers.monitors.create(monitorBody());
  const pool = await client.loadBalancers.pools.create({
    account_id: accountId,
    name: uid("paged"),
    monitor: monitor.id,
    origins: [{ name: "a", address: "127.0.0.1" }],
  });
  const lists = {
    zones: () => client.zones.list({ per_page: 5 }),
    search: () => client.loadBalancers.searches.list({ account_id: accountId, per_page: 5 }),
    monitorReferences: () => client.loadBalancers.monitors.references.get(monitor.id, { account_id: accountId }),
    poolReferences: () => client.loadBalancers.pools.references.get(pool.id, { account_id: accountId }),
    history: () => client.alerting.history.list({ account_id: accountId, per_page: 5 }),
    policies: () => client.alerting.policies.list({ account_id: accountId }),
    webhooks: () => client.alerting.destinations.webhooks.list({ account_id: accountId }),
  };
  for (const [name, list] of Object.entries(lists)) {
    const items = await collect(list());
    assert.ok(Array.isArray(items), name);
  }
  const refs = await collect(lists.monitorReferences());
  assert.ok(refs.some((r) => r.resource_id === pool.id), JSON.stringify(refs));
  // The SDK pages a search by `result.items`, which Cloudflare's own answer
  // (`result.resources`) does not have: it yields nothing, and ends. The answer itself:
  const page = await client.loadBalancers.searches.list({ account_id: accountId, search_params: { query: pool.name } });
  assert.ok(JSON.stringify(page.result).includes(pool.id), JSON.stringify(page.result));
  const regions = await client.loadBalancers.regions.list({ account_id: accountId });
  assert.ok(regions, "regions answer");
});

test("a token that is not one is refused with 9109", async () => {
  const stranger = new Cloudflare({
    apiToken: "not-a-token-" + randomBytes(20).toString("hex"),
    baseURL: client.baseURL,
    maxRetries: 0,
  });
  await assert.rejects(
    stranger.loadBalancers.monitors.list({ account_id: accountId }),
    (e) => (assertApiError(e, PermissionDeniedError, 403, 9109), true),
  );
});
