/**
 * The metrics and health endpoints (issue 6; DESIGN.md "Operating it"), over real loopback HTTP
 * with port 0. Readiness semantics: every registered/expected check must pass; a failing check is
 * listed with its reason; no secrets on any endpoint.
 */
import { createServer } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { Health, READINESS_CHECKS, SHUTDOWN_CHECK } from '../../src/telemetry/health.js';
import { Metrics } from '../../src/telemetry/metrics.js';
import { TelemetryServer } from '../../src/telemetry/server.js';
import { SealtrailError } from '../../src/errors.js';
import { loadConfigFile } from '../../src/config/load.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function started(opts: { health?: Health; metrics?: Metrics; metricsEndpoint?: string; healthEndpoint?: string } = {}) {
  const metrics = opts.metrics ?? new Metrics({ defaultMetrics: false });
  const health = opts.health ?? new Health({ metrics });
  const server = new TelemetryServer({
    metricsEndpoint: opts.metricsEndpoint ?? '127.0.0.1:0',
    healthEndpoint: opts.healthEndpoint ?? '127.0.0.1:0',
    metrics,
    health,
  });
  cleanups.push(() => server.shutdown());
  await server.start();
  const m = server.metricsAddress!;
  const h = server.healthAddress!;
  return {
    server,
    metrics,
    health,
    metricsUrl: `http://${m.host}:${m.port}`,
    healthUrl: `http://${h.host}:${h.port}`,
  };
}

describe('health endpoint', () => {
  it('/healthz is 200 alive even when readiness fails', async () => {
    const health = new Health({ expect: Object.values(READINESS_CHECKS) });
    const { healthUrl } = await started({ health });
    const r = await fetch(`${healthUrl}/healthz`);
    expect(r.status).toBe(200);
    expect(r.headers.get('cache-control')).toBe('no-store');
    expect(await r.json()).toMatchObject({ status: 'alive' });
    expect((await fetch(`${healthUrl}/readyz`)).status).toBe(503);
  });

  it('/readyz lists every check and why it fails; 200 only when all pass', async () => {
    const health = new Health({ expect: Object.values(READINESS_CHECKS) });
    const state = { key: false, diskFull: true };
    health.register(READINESS_CHECKS.keyLoaded, () =>
      state.key ? { ok: true, detail: 'signing key sealtrail.local/dev+1a2b3c4d' } : { ok: false, detail: 'key file /k/signing.key: missing' },
    );
    health.register(READINESS_CHECKS.ledgerWritable, async () => ({ ok: true }));
    health.register(READINESS_CHECKS.diskBudget, () =>
      state.diskFull ? { ok: false, detail: 'ledger holds 1000 of 1000 bytes (ledger.max_disk_bytes)' } : { ok: true, detail: '10 of 1000 bytes' },
    );
    health.register(READINESS_CHECKS.quorumReachable, () => ({ ok: true, detail: 'no destinations configured (local-only)' }));
    const { healthUrl } = await started({ health });

    let r = await fetch(`${healthUrl}/readyz`);
    expect(r.status).toBe(503);
    let body = (await r.json()) as { ready: boolean; status: string; checks: Array<{ name: string; ok: boolean; detail: string }> };
    expect(body.ready).toBe(false);
    expect(body.status).toBe('not ready');
    const byName = Object.fromEntries(body.checks.map((c) => [c.name, c]));
    expect(Object.keys(byName).sort()).toEqual(Object.values(READINESS_CHECKS).sort());
    expect(byName['key loaded']).toEqual({ name: 'key loaded', ok: false, detail: 'key file /k/signing.key: missing' });
    expect(byName['disk budget not exhausted']!.ok).toBe(false);
    expect(byName['disk budget not exhausted']!.detail).toMatch(/max_disk_bytes/);
    expect(byName['ledger writable']).toEqual({ name: 'ledger writable', ok: true, detail: 'ok' });
    // expected but nobody registered it: never silently "ready"
    expect(byName['no unsafe destination']!.ok).toBe(false);
    expect(byName['no unsafe destination']!.detail).toMatch(/not registered/);

    state.key = true;
    state.diskFull = false;
    health.register(READINESS_CHECKS.noUnsafeDestination, () => ({ ok: true }));
    r = await fetch(`${healthUrl}/readyz`);
    expect(r.status).toBe(200);
    body = (await r.json()) as typeof body;
    expect(body).toMatchObject({ ready: true, status: 'ready' });
    expect(body.checks.every((c) => c.ok)).toBe(true);
  });

  it('a check that throws, hangs or returns garbage fails with a reason instead of breaking /readyz', async () => {
    const health = new Health({ checkTimeoutMs: 100 });
    health.register('throws', () => {
      throw new Error('disk /var/lib/sealtrail: EIO');
    });
    health.register('rejects', () => Promise.reject(new Error('nope')));
    health.register('hangs', () => new Promise(() => {}));
    health.register('garbage', () => 'yes' as unknown as { ok: boolean });
    health.register('multiline', () => ({ ok: false, detail: 'line1\nline2\u0000' + 'x'.repeat(1000) }));
    const { healthUrl } = await started({ health });
    const t0 = Date.now();
    const r = await fetch(`${healthUrl}/readyz`);
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(r.status).toBe(503);
    const body = (await r.json()) as { checks: Array<{ name: string; ok: boolean; detail: string }> };
    const d = Object.fromEntries(body.checks.map((c) => [c.name, c.detail]));
    expect(d['throws']).toBe('check failed: disk /var/lib/sealtrail: EIO');
    expect(d['rejects']).toBe('check failed: nope');
    expect(d['hangs']).toBe('check timed out after 100 ms');
    expect(d['garbage']).toMatch(/invalid result/);
    expect(d['multiline']).not.toContain('\n');
    expect(d['multiline']).not.toContain('\u0000');
    expect(d['multiline']!.length).toBeLessThanOrEqual(300);
    expect(body.checks.every((c) => !c.ok)).toBe(true);
  });

  it('beginShutdown makes readiness fail with "shutting down" while liveness stays 200', async () => {
    const health = new Health();
    health.register('ledger writable', () => ({ ok: true }));
    const { healthUrl } = await started({ health });
    expect((await fetch(`${healthUrl}/readyz`)).status).toBe(200);
    health.beginShutdown();
    health.beginShutdown(); // idempotent
    const r = await fetch(`${healthUrl}/readyz`);
    expect(r.status).toBe(503);
    const body = (await r.json()) as { status: string; checks: Array<{ name: string; ok: boolean }> };
    expect(body.status).toBe('shutting down');
    expect(body.checks.filter((c) => c.name === SHUTDOWN_CHECK)).toEqual([expect.objectContaining({ ok: false })]);
    expect((await fetch(`${healthUrl}/healthz`)).status).toBe(200);
  });

  it('refuses a duplicate check name and allows re-registering after unregister', () => {
    const health = new Health();
    const off = health.register('key loaded', () => ({ ok: true }));
    expect(() => health.register('key loaded', () => ({ ok: true }))).toThrow(/already registered/);
    expect(() => health.register('', () => ({ ok: true }))).toThrow(TypeError);
    off();
    expect(health.names()).toEqual([]);
    health.register('key loaded', () => ({ ok: false }));
    expect(health.names()).toEqual(['key loaded']);
  });

  it('concurrent probes share one evaluation', async () => {
    const health = new Health();
    let calls = 0;
    health.register('slow', async () => {
      calls++;
      await new Promise((r) => setTimeout(r, 50));
      return { ok: true };
    });
    const reports = await Promise.all([health.evaluate(), health.evaluate(), health.evaluate()]);
    expect(calls).toBe(1);
    expect(reports.every((r) => r.ready)).toBe(true);
    await health.evaluate();
    expect(calls).toBe(2);
  });

  it('answers 404 for other paths and 405 for other methods, changing nothing', async () => {
    const { healthUrl, metricsUrl } = await started();
    const nf = await fetch(`${healthUrl}/metrics`);
    expect(nf.status).toBe(404);
    expect(await nf.text()).toMatch(/\/healthz, \/readyz/);
    expect((await fetch(`${metricsUrl}/readyz`)).status).toBe(404);
    const post = await fetch(`${healthUrl}/readyz`, { method: 'POST', body: 'x' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
    const head = await fetch(`${healthUrl}/healthz`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe('');
  });
});

describe('metrics endpoint', () => {
  it('serves the Prometheus text format with sealtrail_* names and current counter values', async () => {
    const metrics = new Metrics({ defaultMetrics: true });
    const health = new Health({ metrics });
    health.register('key loaded', () => ({ ok: true }));
    health.register('disk budget not exhausted', () => ({ ok: false, detail: 'full' }));
    const { metricsUrl } = await started({ metrics, health });
    metrics.receiverAccepted.inc({ transport: 'http' }, 7);
    metrics.receiverRefused.inc({ transport: 'grpc', reason: 'disk_full' }, 3);
    metrics.buildInfo.set({ version: '0.1.0', nodejs: process.versions.node }, 1);
    const r = await fetch(`${metricsUrl}/metrics`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await r.text();
    expect(text).toMatch(/^sealtrail_receiver_accepted_log_records_total\{transport="http"\} 7$/m);
    expect(text).toMatch(/^sealtrail_receiver_refused_log_records_total\{transport="grpc",reason="disk_full"\} 3$/m);
    expect(text).toMatch(/^sealtrail_readiness_check\{check="key loaded"\} 1$/m);
    expect(text).toMatch(/^sealtrail_readiness_check\{check="disk budget not exhausted"\} 0$/m);
    expect(text).toMatch(/^sealtrail_ready 0$/m);
    expect(text).toMatch(/^sealtrail_process_resident_memory_bytes \d+/m);
    // every metric we define is under our prefix (no prom-client global default registry leaks in)
    const names = [...text.matchAll(/^# TYPE (\S+)/gm)].map((m) => m[1]!);
    expect(names.length).toBeGreaterThan(20);
    expect(names.filter((n) => !n.startsWith('sealtrail_'))).toEqual([]);
  });

  it('exposes no key material or config secrets', async () => {
    // A config carrying an S3 secret, and a check whose component knows the key path.
    const secret = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';
    const metrics = new Metrics({ defaultMetrics: true });
    const health = new Health({ metrics });
    health.register('key loaded', () => ({ ok: true, detail: 'key sealtrail.local/dev loaded from ./data/keys/signing.key' }));
    const { metricsUrl, healthUrl } = await started({ metrics, health });
    const bodies = await Promise.all(
      [`${metricsUrl}/metrics`, `${healthUrl}/readyz`, `${healthUrl}/healthz`].map(async (u) => (await fetch(u)).text()),
    );
    for (const b of bodies) {
      expect(b).not.toContain(secret);
      expect(b).not.toMatch(/PRIVATE\+KEY/);
      expect(b).not.toMatch(/secret_access_key|bearer/i);
    }
  });

  it('serves all three paths on one listener when both endpoints are the same address', async () => {
    const port = await freePort();
    const { metricsUrl, healthUrl, server } = await started({ metricsEndpoint: `127.0.0.1:${port}`, healthEndpoint: `127.0.0.1:${port}` });
    expect(metricsUrl).toBe(healthUrl);
    expect(server.metricsAddress!.port).toBe(port);
    for (const p of ['/metrics', '/healthz', '/readyz']) expect((await fetch(`${metricsUrl}${p}`)).status).toBe(200);
  });
});

describe('lifecycle', () => {
  it('start and shutdown are safe to call twice; shutdown before start is harmless', async () => {
    const metrics = new Metrics({ defaultMetrics: false });
    const idle = new TelemetryServer({ metricsEndpoint: '127.0.0.1:0', healthEndpoint: '[::1]:0', metrics, health: new Health() });
    await idle.shutdown();
    await idle.shutdown();
    await expect(idle.start()).rejects.toThrow(/after shutdown/);

    const s = new TelemetryServer({ metricsEndpoint: '127.0.0.1:0', healthEndpoint: '127.0.0.1:0', metrics, health: new Health() });
    await Promise.all([s.start(), s.start()]);
    const port = s.healthAddress!.port;
    expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
    await Promise.all([s.shutdown(), s.shutdown()]);
    await expect(fetch(`http://127.0.0.1:${port}/healthz`)).rejects.toThrow();
  });

  it('a port in use is a clear error naming the config key, and nothing stays bound', async () => {
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise<void>((r) => blocker.close(() => r())));
    const busy = (blocker.address() as { port: number }).port;
    const metrics = new Metrics({ defaultMetrics: false });
    const s = new TelemetryServer({ metricsEndpoint: '127.0.0.1:0', healthEndpoint: `127.0.0.1:${busy}`, metrics, health: new Health() });
    const err = await s.start().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SealtrailError);
    expect((err as SealtrailError).code).toBe('IO');
    expect((err as Error).message).toMatch(/telemetry\.health\.endpoint: cannot listen on 127\.0\.0\.1:\d+: address already in use/);
    // the metrics listener that did bind was closed again
    expect(s.metricsAddress).toBeDefined();
    await expect(fetch(`http://127.0.0.1:${s.metricsAddress!.port}/metrics`)).rejects.toThrow();
    await s.shutdown();
  });

  it('rejects a malformed endpoint at construction with the key path', () => {
    expect(
      () => new TelemetryServer({ metricsEndpoint: 'localhost', healthEndpoint: '127.0.0.1:0', metrics: new Metrics({ defaultMetrics: false }), health: new Health() }),
    ).toThrow(/telemetry\.metrics\.endpoint: expected host:port/);
  });

  it('the defaults in the embedded config are the Collector-like ports 8888 and 13133 on localhost', () => {
    const cfg = loadConfigFile(new URL('../../config/agent.yaml', import.meta.url).pathname);
    expect(cfg.telemetry.metrics.endpoint).toBe('127.0.0.1:8888');
    expect(cfg.telemetry.health.endpoint).toBe('127.0.0.1:13133');
  });
});

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}
