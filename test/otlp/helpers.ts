/**
 * protobufjs, loaded from proto/ — the independent implementation our decoder is checked against
 * (STYLE.md habit 9).
 */
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import protobuf from 'protobufjs';

const PROTO_DIR = fileURLToPath(new URL('../../proto/', import.meta.url));

function loadRoot(): protobuf.Root {
  const root = new protobuf.Root();
  root.resolvePath = (_origin: string, target: string) => path.join(PROTO_DIR, target);
  root.loadSync(['opentelemetry/proto/collector/logs/v1/logs_service.proto', 'google/rpc/status.proto']);
  root.resolveAll();
  return root;
}

export const root = loadRoot();
export const ExportLogsServiceRequest = root.lookupType('opentelemetry.proto.collector.logs.v1.ExportLogsServiceRequest');
export const ExportLogsServiceResponse = root.lookupType('opentelemetry.proto.collector.logs.v1.ExportLogsServiceResponse');
export const ResourceLogs = root.lookupType('opentelemetry.proto.logs.v1.ResourceLogs');
export const LogRecord = root.lookupType('opentelemetry.proto.logs.v1.LogRecord');
export const AnyValue = root.lookupType('opentelemetry.proto.common.v1.AnyValue');
export const Status = root.lookupType('google.rpc.Status');

/** Canonical plain-object form for comparisons: 64-bit as decimal strings, bytes as base64, defaults filled. */
export const CANON: protobuf.IConversionOptions = { longs: String, bytes: String, defaults: true, arrays: true, oneofs: false };

/** Encodes a plain OTLP object (protobufjs field names) as an ExportLogsServiceRequest. */
export function encodeRequest(obj: object): Uint8Array {
  return ExportLogsServiceRequest.encode(ExportLogsServiceRequest.fromObject(obj)).finish();
}

export const LIMITS = { maxNestingDepth: 32 };

export function hex(b: Uint8Array): string {
  return Buffer.from(b).toString('hex');
}
