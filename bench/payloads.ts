/**
 * Pre-encoded OTLP logs requests for the load generator (issue 7): each request is built once as an
 * OTLP/JSON object (the OTLP/JSON mapping: ids hex, 64-bit integers as decimal strings, enums as
 * integers) and encoded once as protobuf with protobufjs from the repository's proto/ files — an
 * encoder independent of src/otlp — so the timed loop only writes bytes.
 *
 * Shape (what an SDK batch processor sends): one resource with 4 attributes, one scope, N records,
 * each with both timestamps, severity, a ~200-byte string body, 4 attributes, trace and span ids.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';

/** The record counts per request the harness measures: the 100, plus 1 and 1,000. */
export const VARIANTS = [1, 100, 1000] as const;
export type Variant = (typeof VARIANTS)[number];

/** gRPC method path of the OTLP logs service (opentelemetry/proto/collector/logs/v1/logs_service.proto). */
export const GRPC_EXPORT_PATH = '/opentelemetry.proto.collector.logs.v1.LogsService/Export';

export interface EncodedRequest {
  readonly records: number;
  /** ExportLogsServiceRequest, protobuf wire format. */
  readonly protobuf: Uint8Array;
  /** The same request as OTLP/JSON (UTF-8). */
  readonly json: Uint8Array;
  /** Sum of the record bodies' UTF-8 lengths (for the "~200-byte bodies" check). */
  readonly bodyBytes: number;
}

/**
 * The repository root: the nearest ancestor of this file holding proto/ (works from bench/ under
 * vitest and from dist/bench/ or any other build output directory).
 * @throws Error when no proto/ directory is found above this file
 */
export function repoRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(path.join(dir, 'proto', 'opentelemetry')) && existsSync(path.join(dir, 'package.json'))) return dir;
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`bench: no proto/ directory above ${fileURLToPath(import.meta.url)}; run from a sealtrail checkout`);
    dir = up;
  }
}

let cachedRoot: protobuf.Root | undefined;

/** protobufjs root with the OTLP logs service and google.rpc.Status loaded from proto/. */
export function otlpProtoRoot(): protobuf.Root {
  if (cachedRoot) return cachedRoot;
  const protoDir = path.join(repoRoot(), 'proto');
  const root = new protobuf.Root();
  root.resolvePath = (_origin: string, target: string) => path.join(protoDir, target);
  root.loadSync(['opentelemetry/proto/collector/logs/v1/logs_service.proto', 'google/rpc/status.proto']);
  root.resolveAll();
  cachedRoot = root;
  return root;
}

/** The protobufjs type of ExportLogsServiceRequest. */
export function exportRequestType(): protobuf.Type {
  return otlpProtoRoot().lookupType('opentelemetry.proto.collector.logs.v1.ExportLogsServiceRequest');
}

type JsonValue = { stringValue: string } | { intValue: string } | { doubleValue: number } | { boolValue: boolean };
interface JsonKv {
  key: string;
  value: JsonValue;
}

const BASE_NS = 1_764_300_000_000_000_000n;

function kv(key: string, value: JsonValue): JsonKv {
  return { key, value };
}

function hex(seed: number, bytes: number): string {
  let s = '';
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < bytes; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    s += (x & 0xff).toString(16).padStart(2, '0');
  }
  return s;
}

/** A ~200-byte log line: an audit event with variable parts, so no two records are identical. */
function body(seq: number, i: number): string {
  const line =
    `audit: user u-${(seq * 7919 + i) % 100_000} (role=admin, tenant=t-${i % 97}) changed permission "billing.export" ` +
    `on project p-${(i * 31) % 1000} from 203.0.113.${i % 256} via SSO session ${hex(seq * 100_003 + i, 8)}; result=allowed`;
  return line.padEnd(200, '.').slice(0, 200);
}

/**
 * OTLP/JSON ExportLogsServiceRequest with `records` records. `seq` varies the content between the
 * requests of one variant (the load generator rotates through a few).
 */
export function requestJsonObject(records: number, seq = 0): object {
  const logRecords = [];
  for (let i = 0; i < records; i++) {
    const t = BASE_NS + BigInt(seq) * 1_000_000_000n + BigInt(i) * 1000n;
    logRecords.push({
      timeUnixNano: String(t),
      observedTimeUnixNano: String(t + 17_000n),
      severityNumber: 9,
      severityText: 'INFO',
      body: { stringValue: body(seq, i) },
      attributes: [
        kv('http.request.method', { stringValue: 'POST' }),
        kv('http.response.status_code', { intValue: String(200 + (i % 3)) }),
        kv('enduser.id', { stringValue: `u-${(seq * 7919 + i) % 100_000}` }),
        kv('duration_ms', { doubleValue: 12.5 + (i % 100) }),
      ],
      traceId: hex(seq * 1_000_003 + i + 1, 16),
      spanId: hex(seq * 1_000_033 + i + 7, 8),
      flags: 1,
    });
  }
  return {
    resourceLogs: [
      {
        resource: {
          attributes: [
            kv('service.name', { stringValue: 'billing-api' }),
            kv('service.instance.id', { stringValue: 'billing-api-7f9c6d5b8-x2k4q' }),
            kv('host.name', { stringValue: 'node-a.example.internal' }),
            kv('deployment.environment.name', { stringValue: 'production' }),
          ],
        },
        scopeLogs: [{ scope: { name: 'com.example.audit', version: '2.3.1' }, logRecords }],
      },
    ],
  };
}

/** OTLP/JSON → protobufjs input: hex ids become bytes (the JSON mapping's only difference here). */
function jsonToProtobufjs(obj: object): object {
  return JSON.parse(JSON.stringify(obj), (key: string, value: unknown) =>
    (key === 'traceId' || key === 'spanId') && typeof value === 'string' ? Buffer.from(value, 'hex') : value,
  ) as object;
}

/**
 * Encode one request both ways. The protobuf bytes come from protobufjs (field-number order, as the
 * SDK's encoder writes them).
 * @throws Error if protobufjs rejects the object (a bug in this file)
 */
export function encodeRequest(records: number, seq = 0): EncodedRequest {
  const obj = requestJsonObject(records, seq);
  const Req = exportRequestType();
  const pbObj = jsonToProtobufjs(obj);
  // fromObject converts the JSON mapping's decimal strings to 64-bit integers (Req.verify would
  // insist on numbers/Longs, so it is not used); the unit test decodes the result back.
  const pb = Req.encode(Req.fromObject(pbObj)).finish();
  let bodyBytes = 0;
  for (let i = 0; i < records; i++) bodyBytes += Buffer.byteLength(body(seq, i));
  return { records, protobuf: pb, json: Buffer.from(JSON.stringify(obj)), bodyBytes };
}

/** A few distinct requests per variant (rotated by the load generator). */
export function encodeVariant(records: number, distinct = 4): EncodedRequest[] {
  const out: EncodedRequest[] = [];
  for (let s = 0; s < distinct; s++) out.push(encodeRequest(records, s));
  return out;
}

/** gRPC length-prefixed message (gRPC over HTTP/2 spec, "Length-Prefixed-Message"): flag 0, u32 BE length, bytes. */
export function grpcFrame(message: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(5 + message.length);
  out[0] = 0; // not compressed
  out.writeUInt32BE(message.length, 1);
  out.set(message, 5);
  return out;
}
