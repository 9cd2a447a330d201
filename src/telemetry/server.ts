/**
 * The agent's own HTTP endpoints (DESIGN.md "Operating it"):
 *   - metrics (`telemetry.metrics.endpoint`, default 127.0.0.1:8888, like the Collector's own
 *     telemetry): `GET /metrics` in the Prometheus text exposition format;
 *   - health (`telemetry.health.endpoint`, default 127.0.0.1:13133, like the Collector's
 *     health_check extension): `GET /healthz` (alive) and `GET /readyz` (every readiness check).
 *
 * Both only read: no request changes any state, and nothing here shows key material or config
 * values (a readiness detail is the component's own one-line message, see health.ts). When both
 * endpoints are configured to the same non-zero address, one listener serves all three paths.
 */
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseEndpoint } from '../config/schema.js';
import { SealtrailError, errorMessage } from '../errors.js';
import type { Health } from './health.js';
import type { Logger } from './logger.js';
import type { Metrics } from './metrics.js';

export interface TelemetryServerOptions {
  /** `host:port` (config `telemetry.metrics.endpoint`); port 0 picks a free port. */
  readonly metricsEndpoint: string;
  /** `host:port` (config `telemetry.health.endpoint`); port 0 picks a free port. */
  readonly healthEndpoint: string;
  readonly metrics: Metrics;
  readonly health: Health;
  readonly logger?: Logger;
}

export interface BoundAddress {
  readonly host: string;
  readonly port: number;
}

type Route = (req: IncomingMessage, res: ServerResponse) => Promise<void>;

const COMMON_HEADERS = { 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' } as const;

function send(res: ServerResponse, status: number, contentType: string, body: string, head: boolean, extra: Record<string, string> = {}): void {
  res.writeHead(status, { ...COMMON_HEADERS, 'content-type': contentType, 'content-length': Buffer.byteLength(body), ...extra });
  res.end(head ? undefined : body);
}

function sendJson(res: ServerResponse, status: number, value: unknown, head: boolean, extra?: Record<string, string>): void {
  send(res, status, 'application/json; charset=utf-8', `${JSON.stringify(value)}\n`, head, extra);
}

export class TelemetryServer {
  readonly #opts: TelemetryServerOptions;
  readonly #servers: Server[] = [];
  #metricsAddress: BoundAddress | undefined;
  #healthAddress: BoundAddress | undefined;
  #starting: Promise<void> | undefined;
  #stopping: Promise<void> | undefined;
  readonly #startedAt = Date.now();

  /** @throws SealtrailError CONFIG_INVALID when an endpoint is not `host:port`. */
  constructor(opts: TelemetryServerOptions) {
    for (const [key, value] of [
      ['telemetry.metrics.endpoint', opts.metricsEndpoint],
      ['telemetry.health.endpoint', opts.healthEndpoint],
    ] as const) {
      if (parseEndpoint(value) === undefined) {
        throw new SealtrailError('CONFIG_INVALID', `${key}: expected host:port (for example 127.0.0.1:8888), got ${JSON.stringify(value)}`);
      }
    }
    this.#opts = opts;
  }

  /** Where /metrics is served, once started. */
  get metricsAddress(): BoundAddress | undefined {
    return this.#metricsAddress;
  }

  /** Where /healthz and /readyz are served, once started. */
  get healthAddress(): BoundAddress | undefined {
    return this.#healthAddress;
  }

  /**
   * Bind both listeners. Safe to call twice (the second call returns the first call's promise).
   * @throws SealtrailError IO naming the config key when an address cannot be bound (in use, not local).
   */
  start(): Promise<void> {
    if (this.#stopping) return Promise.reject(new SealtrailError('IO', 'telemetry server: start() after shutdown()'));
    this.#starting ??= this.#start();
    return this.#starting;
  }

  async #start(): Promise<void> {
    const m = parseEndpoint(this.#opts.metricsEndpoint)!;
    const h = parseEndpoint(this.#opts.healthEndpoint)!;
    const metricsRoutes: Record<string, Route> = { '/metrics': (q, s) => this.#serveMetrics(q, s) };
    const healthRoutes: Record<string, Route> = {
      '/healthz': (q, s) => this.#serveAlive(q, s),
      '/readyz': (q, s) => this.#serveReady(q, s),
    };
    try {
      if (m.port !== 0 && m.port === h.port && m.host === h.host) {
        const addr = await this.#listen(h, { ...metricsRoutes, ...healthRoutes }, 'telemetry.metrics.endpoint / telemetry.health.endpoint');
        this.#metricsAddress = addr;
        this.#healthAddress = addr;
      } else {
        this.#metricsAddress = await this.#listen(m, metricsRoutes, 'telemetry.metrics.endpoint');
        this.#healthAddress = await this.#listen(h, healthRoutes, 'telemetry.health.endpoint');
      }
    } catch (e) {
      await this.#closeAll();
      throw e;
    }
    this.#opts.logger?.info(
      { metrics: this.#metricsAddress, health: this.#healthAddress },
      'telemetry endpoints listening (/metrics, /healthz, /readyz)',
    );
  }

  #listen(ep: { host: string; port: number }, routes: Record<string, Route>, key: string): Promise<BoundAddress> {
    const server = createServer((req, res) => this.#dispatch(routes, req, res));
    // Probes and scrapes are tiny: short timeouts keep a slow client from holding sockets.
    server.headersTimeout = 5_000;
    server.requestTimeout = 10_000;
    server.keepAliveTimeout = 5_000;
    server.maxConnections = 128;
    this.#servers.push(server);
    return new Promise<BoundAddress>((resolve, reject) => {
      const onError = (e: NodeJS.ErrnoException): void => {
        const why = e.code === 'EADDRINUSE' ? 'address already in use' : e.code === 'EADDRNOTAVAIL' ? 'address not available on this host' : errorMessage(e);
        reject(new SealtrailError('IO', `${key}: cannot listen on ${ep.host}:${ep.port}: ${why}; choose another endpoint in the config`, { cause: e }));
      };
      server.once('error', onError);
      server.listen({ host: ep.host, port: ep.port }, () => {
        server.off('error', onError);
        server.on('error', (e) => this.#opts.logger?.error({ err: errorMessage(e) }, 'telemetry server error'));
        const a = server.address() as AddressInfo;
        resolve({ host: a.address, port: a.port });
      });
    });
  }

  #dispatch(routes: Record<string, Route>, req: IncomingMessage, res: ServerResponse): void {
    req.resume(); // bodies are never read; drain so the socket can be reused
    const path = (req.url ?? '/').split('?', 1)[0]!;
    const route = routes[path];
    if (!route) {
      sendJson(res, 404, { error: `not found; this endpoint serves ${Object.keys(routes).join(', ')}` }, req.method === 'HEAD');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      sendJson(res, 405, { error: 'method not allowed; use GET' }, false, { allow: 'GET, HEAD' });
      return;
    }
    route(req, res).catch((e: unknown) => {
      this.#opts.logger?.error({ err: errorMessage(e), path }, 'telemetry request failed');
      if (!res.headersSent) sendJson(res, 500, { error: 'internal error' }, req.method === 'HEAD');
      else res.destroy();
    });
  }

  async #serveMetrics(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // Refresh sealtrail_readiness_check / sealtrail_ready so alerts see readiness even when no
    // probe calls /readyz (e.g. outside Kubernetes).
    await this.#opts.health.evaluate();
    const { registry } = this.#opts.metrics;
    const body = await registry.metrics();
    send(res, 200, registry.contentType, body, req.method === 'HEAD');
  }

  async #serveAlive(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // Alive means the event loop answers. Readiness problems must not restart the agent.
    sendJson(res, 200, { status: 'alive', uptime_seconds: Math.round((Date.now() - this.#startedAt) / 1000) }, req.method === 'HEAD');
  }

  async #serveReady(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const report = await this.#opts.health.evaluate();
    sendJson(res, report.ready ? 200 : 503, report, req.method === 'HEAD');
  }

  /** Close both listeners and their open connections. Safe to call twice, and before start(). */
  shutdown(): Promise<void> {
    this.#stopping ??= (async () => {
      try {
        await this.#starting;
      } catch {
        // start failed: its listeners are already closed
      }
      await this.#closeAll();
    })();
    return this.#stopping;
  }

  async #closeAll(): Promise<void> {
    const servers = this.#servers.splice(0);
    await Promise.all(
      servers.map(
        (s) =>
          new Promise<void>((resolve) => {
            if (!s.listening) return resolve();
            s.close(() => resolve());
            s.closeAllConnections();
          }),
      ),
    );
  }
}
