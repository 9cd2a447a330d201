/** Builds protobuf wire bytes by hand, for inputs no well-behaved encoder would produce. */
export function cat(...parts: (Uint8Array | number[])[]): Uint8Array {
  return Uint8Array.from(parts.flatMap((p) => Array.from(p)));
}

export function varint(v: number | bigint): number[] {
  let x = BigInt.asUintN(64, BigInt(v));
  const out: number[] = [];
  while (x >= 0x80n) {
    out.push(Number(x & 0x7fn) | 0x80);
    x >>= 7n;
  }
  out.push(Number(x));
  return out;
}

export function key(field: number, wire: number): number[] {
  return varint(field * 8 + wire);
}

/** A length-delimited field. */
export function ld(field: number, ...payload: (Uint8Array | number[])[]): Uint8Array {
  const p = cat(...payload);
  return cat(key(field, 2), varint(p.length), p);
}

export function vf(field: number, v: number | bigint): Uint8Array {
  return cat(key(field, 0), varint(v));
}

export function str(field: number, s: string): Uint8Array {
  return ld(field, new TextEncoder().encode(s));
}

/** ExportLogsServiceRequest{ resource_logs: [ResourceLogs{ scope_logs: [ScopeLogs{ log_records: records }] }] } */
export function oneScope(...records: Uint8Array[]): Uint8Array {
  return ld(1, ld(2, ...records.map((r) => ld(2, r))));
}

/** AnyValue nested `depth` levels deep (arrays of arrays), innermost a string. */
export function nestedAnyValue(depth: number): Uint8Array {
  let v: Uint8Array = str(1, 'leaf');
  for (let d = 1; d < depth; d++) v = ld(5, ld(1, v));
  return v;
}

/** The same nesting as OTLP/JSON. */
export function nestedAnyValueJson(depth: number): unknown {
  let v: unknown = { stringValue: 'leaf' };
  for (let d = 1; d < depth; d++) v = { arrayValue: { values: [v] } };
  return v;
}
