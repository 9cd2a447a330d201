/**
 * The one configuration schema (DESIGN.md, "The public contract"). Types are derived from it;
 * unknown keys are refused everywhere (`strictObject`), and every default is written here once.
 * The names are binding: operators' scripts and the acceptance tests use exactly these keys.
 */
import { z } from 'zod';
import { parseDurationMs } from './duration.js';

/** A duration such as `500ms`, `5s`, `10m`, `1h`, `7d`; parsed to milliseconds. */
export const durationMs = z
  .union([z.string(), z.number()])
  .transform((v, ctx) => {
    const ms = parseDurationMs(v);
    if (ms === undefined) {
      ctx.addIssue({
        code: 'custom',
        message: `invalid duration ${JSON.stringify(v)}: use a number with a unit, e.g. 500ms, 5s, 10m, 1h, 7d`,
      });
      return z.NEVER;
    }
    return ms;
  });

export { parseDurationMs };

/** `host:port`, where host may be a bracketed IPv6 literal; the port 0 asks for any free port. */
const endpoint = z.string().refine((s) => parseEndpoint(s) !== undefined, {
  message: 'expected host:port (for example 127.0.0.1:4318 or [::1]:4318)',
});

export function parseEndpoint(s: string): { host: string; port: number } | undefined {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s[\]]+)):(\d{1,5})$/.exec(s);
  if (!m) return undefined;
  const port = Number(m[3]);
  if (port > 65535) return undefined;
  return { host: (m[1] ?? m[2])!, port };
}

const tls = z.strictObject({
  cert_file: z.string().min(1),
  key_file: z.string().min(1),
  client_ca_file: z.string().min(1).optional(),
  min_version: z.enum(['1.2', '1.3']).default('1.2'),
  /** How often the certificate, key and CA files are re-read; changed files apply to new connections (Collector's key). */
  reload_interval: durationMs.default(5_000),
});

const auth = z.strictObject({
  bearer_token_file: z.string().min(1),
  /** How often the token file is re-read; changes apply to the next request. */
  reload_interval: durationMs.default(5_000),
});

const grpcProtocol = z.strictObject({
  endpoint: endpoint.default('127.0.0.1:4317'),
  /** Largest accepted request message, after decompression (the Collector's key). */
  max_recv_msg_size_mib: z.number().positive().max(1024).default(4),
  /** The request message must have arrived within this after the call's headers (slow-client cut-off). */
  read_timeout: durationMs.default(60_000),
  tls: tls.optional(),
  auth: auth.optional(),
});

const httpProtocol = z.strictObject({
  endpoint: endpoint.default('127.0.0.1:4318'),
  /** Largest accepted body in bytes, after decompression (the Collector's key). */
  max_request_body_size: z.number().int().positive().default(20 * 1024 * 1024),
  /** The whole header block must arrive within this (Collector's key; slowloris cut-off). */
  read_header_timeout: durationMs.default(10_000),
  /** The whole request, body included, must arrive within this (Collector's key). */
  read_timeout: durationMs.default(60_000),
  /** An idle keep-alive connection is closed after this (Collector's key). */
  idle_timeout: durationMs.default(30_000),
  /** Largest request header block in bytes; larger → 431 (Node's maxHeaderSize). */
  max_request_header_size: z.number().int().min(1024).max(1024 * 1024).default(16 * 1024),
  tls: tls.optional(),
  auth: auth.optional(),
});

const otlpReceiver = z.strictObject({
  protocols: z
    .strictObject({
      grpc: grpcProtocol.optional(),
      http: httpProtocol.optional(),
    })
    .refine((p) => p.grpc !== undefined || p.http !== undefined, {
      message: 'enable at least one protocol (grpc or http)',
    }),
  /** Deepest AnyValue nesting (kvlist/array inside each other) accepted; deeper is refused. */
  max_nesting_depth: z.number().int().min(1).max(256).default(32),
  /** Requests handled at once over both protocols; more → 429 / RESOURCE_EXHAUSTED with a retry hint (G2). */
  max_concurrent_requests: z.number().int().min(1).max(100_000).default(64),
  /** Most log records in one request; more → 413 / RESOURCE_EXHAUSTED without a retry hint. */
  max_records_per_request: z.number().int().min(1).default(65_536),
});

const ledger = z.strictObject({
  dir: z.string().min(1).default('./data/ledger'),
  origin: z
    .string()
    .min(1)
    .max(255)
    // C2SP tlog-checkpoint: the origin is one line of printable text; no newline injection.
    .regex(/^[\x21-\x7e]([\x20-\x7e]*[\x21-\x7e])?$/, 'origin must be printable ASCII without newlines and not start or end with a space')
    .default('sealtrail.local/dev'),
  durability: z.enum(['fsync', 'none']).default('fsync'),
  max_segment_bytes: z.number().int().min(4096).default(64 * 1024 * 1024),
  max_segment_age: durationMs.default(60_000),
  seal_interval: durationMs.default(5_000),
  max_disk_bytes: z.number().int().positive().default(10 * 1024 * 1024 * 1024),
});

const signing = z.strictObject({
  key_file: z.string().min(1).default('./data/keys/signing.key'),
  /** Generate the key on first start (with a loud warning). Only the embedded default sets this. */
  generate_if_missing: z.boolean().default(false),
  /**
   * Key rotation: the key that signed this ledger so far. When set and the ledger's newest checkpoint
   * was signed by it, the agent first signs a checkpoint with this old key announcing `key_file`'s
   * public key (`sealtrail-key`), then signs with the new key only.
   */
  previous_key_file: z.string().min(1).optional(),
});

const retention = z.strictObject({
  mode: z.literal('COMPLIANCE').default('COMPLIANCE'),
  days: z.number().int().min(1).max(36500).default(365),
});

const destinationName = z
  .string()
  .regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'destination name: lowercase letters, digits, - and _ (max 63)');

const fsDestination = z.strictObject({
  name: destinationName,
  type: z.literal('fs'),
  path: z.string().min(1),
  accept_unsafe: z.boolean().default(false),
});

const s3Destination = z.strictObject({
  name: destinationName,
  type: z.literal('s3'),
  bucket: z.string().min(3).max(63),
  prefix: z.string().default(''),
  endpoint: z.string().url().optional(),
  region: z.string().default('us-east-1'),
  force_path_style: z.boolean().default(false),
  access_key_id: z.string().optional(),
  secret_access_key: z.string().optional(),
  ca_file: z.string().optional(),
  retention: retention.default({ mode: 'COMPLIANCE', days: 365 }),
  accept_unsafe: z.boolean().default(false),
});

const destination = z.discriminatedUnion('type', [fsDestination, s3Destination]);

const forwarding = z.strictObject({
  quorum: z.number().int().min(1).default(1),
  /** Delete a local sealed segment once `quorum` confirmed it and it is at least this old. */
  delete_after: z.enum(['all', 'quorum']).default('all'),
  min_local_age: durationMs.default(0),
  retry_initial: durationMs.default(1_000),
  retry_max: durationMs.default(60_000),
});

const telemetry = z.strictObject({
  metrics: z.strictObject({ endpoint: endpoint.default('127.0.0.1:8888') }).default({ endpoint: '127.0.0.1:8888' }),
  health: z.strictObject({ endpoint: endpoint.default('127.0.0.1:13133') }).default({ endpoint: '127.0.0.1:13133' }),
  logs: z
    .strictObject({ level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info') })
    .default({ level: 'info' }),
});

export const configSchema = z
  .strictObject({
    receivers: z.strictObject({ otlp: otlpReceiver }),
    ledger: ledger.default(ledger.parse({})),
    signing: signing.default(signing.parse({})),
    destinations: z.array(destination).default([]),
    forwarding: forwarding.default(forwarding.parse({})),
    telemetry: telemetry.default(telemetry.parse({})),
    shutdown: z
      .strictObject({ grace_period: durationMs.default(10_000) })
      .default({ grace_period: 10_000 }),
  })
  .superRefine((c, ctx) => {
    const names = new Set<string>();
    c.destinations.forEach((d, i) => {
      if (names.has(d.name)) {
        ctx.addIssue({ code: 'custom', path: ['destinations', i, 'name'], message: `duplicate destination name "${d.name}"` });
      }
      names.add(d.name);
    });
    if (c.destinations.length > 0 && c.forwarding.quorum > c.destinations.length) {
      ctx.addIssue({
        code: 'custom',
        path: ['forwarding', 'quorum'],
        message: `quorum ${c.forwarding.quorum} is larger than the ${c.destinations.length} configured destinations`,
      });
    }
  });

export type Config = z.output<typeof configSchema>;
export type LedgerConfig = Config['ledger'];
export type DestinationConfig = Config['destinations'][number];
export type FsDestinationConfig = z.output<typeof fsDestination>;
export type S3DestinationConfig = z.output<typeof s3Destination>;
export type GrpcReceiverConfig = z.output<typeof grpcProtocol>;
export type HttpReceiverConfig = z.output<typeof httpProtocol>;
export type OtlpReceiverConfig = Config['receivers']['otlp'];
