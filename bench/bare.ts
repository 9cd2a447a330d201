/**
 * The bare receiver of `npm run bench` (issue 7, "the transport ceiling"): node:http and node:http2
 * servers that read each request body completely and answer success without looking at it — 200
 * with an empty ExportLogsServiceResponse (or `{}` for JSON), and for gRPC an empty response message
 * followed by `grpc-status: 0` in the trailers. Whatever the agent costs beyond this is the product.
 *
 * Run by bench/run.ts as `node dist/bench/bare.js` (pinned like the agent); reports its ports over IPC.
 */
import http from 'node:http';
import http2 from 'node:http2';
import type net from 'node:net';
import type { AddressInfo } from 'node:net';

const EMPTY_GRPC_MESSAGE = Buffer.from([0, 0, 0, 0, 0]);

function httpServer(): http.Server {
  const s = http.createServer((req, res) => {
    req.on('data', () => undefined);
    req.on('end', () => {
      const json = (req.headers['content-type'] ?? '').startsWith('application/json');
      const body = json ? '{}' : '';
      res.writeHead(200, { 'content-type': json ? 'application/json' : 'application/x-protobuf', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
  });
  s.keepAliveTimeout = 60_000;
  return s;
}

function grpcServer(): http2.Http2Server {
  const s = http2.createServer({ settings: { initialWindowSize: 8 * 1024 * 1024 } });
  s.on('connection', (socket: net.Socket) => socket.setNoDelay(true)); // as node:http servers do by default
  s.on('session', (session) => session.setLocalWindowSize(32 * 1024 * 1024));
  s.on('stream', (stream) => {
    stream.on('data', () => undefined);
    stream.on('end', () => {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
      stream.end(EMPTY_GRPC_MESSAGE);
    });
    stream.on('error', () => undefined);
  });
  return s;
}

function listen(s: http.Server | http2.Http2Server): Promise<number> {
  return new Promise((resolve, reject) => {
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => resolve((s.address() as AddressInfo).port));
  });
}

const h1 = httpServer();
const h2 = grpcServer();
const [httpPort, grpcPort] = await Promise.all([listen(h1), listen(h2)]);
if (process.send) process.send({ type: 'listening', http: httpPort, grpc: grpcPort });
else process.stdout.write(`${JSON.stringify({ http: httpPort, grpc: grpcPort })}\n`);
const stop = (): void => {
  h1.closeAllConnections();
  h1.close();
  h2.close();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.on('disconnect', stop);
