/**
 * OTLP logs: strict decoding at the edge into entries, entry rendering, response bodies.
 * The public surface of src/otlp; import from here only.
 */
export type { DecodeLimits, DecodeResult } from './types.js';
export { DEFAULT_MAX_DECODED_BYTES, ENTRY_OVERHEAD_BYTES } from './types.js';
export { decodeLogsProtobuf } from './decode-protobuf.js';
export { decodeLogsJson } from './decode-json.js';
export { EntryArena, POOL_POISON, SLAB_BYTES, giveBackSlab, takeSlab } from './wire.js';
export { entryToOtlpJson, exportRequestJsonFromEntries } from './entry-json.js';
export {
  exportLogsResponseProtobuf,
  exportLogsResponseJson,
  rpcStatusProtobuf,
  rpcStatusJson,
} from './responses.js';
