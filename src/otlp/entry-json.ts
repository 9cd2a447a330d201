/** Placeholder while the entry renderer is written. */
export function entryToOtlpJson(_entry: Uint8Array): object {
  throw new TypeError('entryToOtlpJson: not implemented yet');
}

export function exportRequestJsonFromEntries(entries: readonly Uint8Array[]): object {
  return { resourceLogs: entries.map(entryToOtlpJson) };
}
