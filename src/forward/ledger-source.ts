/**
 * The forwarder's view of the ledger (src/ledger/ledger.ts; /work/notes/api-ledger.md): sealed
 * segments in sequence order, then checkpoint files in creation order; notified after each new
 * file is durable; `release` deletes the local copy and updates the ledger's disk accounting.
 */
import type { SealedItem, SealedSource } from './replicator.js';

/** The part of the Ledger the forwarder uses (structural, so this file does not import the writer). */
export interface LedgerLike {
  sealedSegments(): ReadonlyArray<{ readonly name: string; readonly path: string }>;
  checkpoints(): ReadonlyArray<{ readonly name: string; readonly path: string; readonly toMs?: number }>;
  onSegmentSealed(cb: (s: unknown) => void): () => void;
  onCheckpoint(cb: (c: unknown) => void): () => void;
  release(name: string): Promise<void>;
}

/** Forwards what the ledger sealed: segments in sequence order, then checkpoints in creation order. */
export function ledgerSealedSource(ledger: LedgerLike): SealedSource {
  return {
    async list(): Promise<SealedItem[]> {
      const segs: SealedItem[] = ledger.sealedSegments().map((s) => ({ kind: 'segment', name: s.name, path: s.path }));
      const cps: SealedItem[] = ledger.checkpoints().map((c) => ({ kind: 'checkpoint', name: c.name, path: c.path }));
      return [...segs, ...cps];
    },
    onNew(cb: () => void): () => void {
      // Subscribe before the first list (api-ledger: events fire after rename + dir fsync).
      const a = ledger.onSegmentSealed(() => cb());
      const b = ledger.onCheckpoint(() => cb());
      return () => {
        a();
        b();
      };
    },
    release: (item) => ledger.release(item.name),
  };
}

