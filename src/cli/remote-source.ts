/**
 * SOURCEs reached through the destination interface (src/forward/destination.ts): `s3://bucket/prefix`
 * and `dest:NAME` from a config file. Every version of every key is listed, so an overwrite in a
 * versioned bucket (a second version) or a delete marker is seen and reported (api-forward.md).
 */
import { resolve } from 'node:path';
import { loadConfigFile } from '../config/load.js';
import { SealtrailError } from '../errors.js';
import type { Destination } from '../forward/destination.js';
import { createDestination } from '../forward/factory.js';
import { CANARY_FOLDER, originPath } from '../forward/keys.js';
import { S3Destination } from '../forward/s3.js';
import type { LogSource, StoredItem } from '../verify/source.js';
import type { SourceOptions } from './log-sources.js';

class DestinationLogSource implements LogSource {
  readonly description: string;
  readonly kind = 'destination' as const;
  readonly #dest: Destination;
  readonly #base: string;

  constructor(description: string, dest: Destination, origin: string) {
    this.description = description;
    this.#dest = dest;
    this.#base = `${originPath(origin)}/`;
  }

  async list(): Promise<StoredItem[]> {
    const versions = await this.#dest.listVersions(this.#base);
    const byKey = new Map<string, typeof versions>();
    for (const v of versions) {
      const list = byKey.get(v.key) ?? [];
      list.push(v);
      byKey.set(v.key, list);
    }
    const out: StoredItem[] = [];
    for (const [key, list] of byKey) {
      const rel = key.slice(this.#base.length);
      if (rel.startsWith(`${CANARY_FOLDER}/`)) continue;
      const m = /^(segments|checkpoints)\/([^/]+)$/.exec(rel);
      const name = m ? m[2]! : rel;
      let kind: StoredItem['kind'] = 'unknown';
      if (m && m[1] === 'segments' && /^\d{16}\.seg$/.test(name)) kind = 'segment';
      if (m && m[1] === 'checkpoints' && name.endsWith('.cp')) kind = 'checkpoint';
      // listVersions returns oldest first; versionIndex 0 is the original write.
      list.forEach((v, i) => {
        out.push({
          kind,
          name,
          key,
          size: v.size,
          versions: list.length,
          versionIndex: i,
          deleteMarker: v.deleteMarker,
          ...(v.versionId !== undefined ? { versionId: v.versionId } : {}),
        });
      });
    }
    return out;
  }

  async *read(item: StoredItem): AsyncIterable<Uint8Array> {
    yield await this.#dest.get(item.key, item.versionId);
  }

  async released(): Promise<ReadonlySet<string>> {
    return new Set();
  }

  close(): void {
    this.#dest.close();
  }
}

/**
 * Opens `s3://bucket/prefix` or `dest:NAME`.
 * @throws SealtrailError USAGE for a malformed argument or an unknown destination name; CONFIG_* for a bad config
 */
export async function openRemoteSource(arg: string, o: SourceOptions): Promise<LogSource> {
  if (arg.startsWith('s3://')) {
    const m = /^s3:\/\/([^/]+)(?:\/(.*))?$/.exec(arg);
    if (!m || m[1]!.length < 3) throw new SealtrailError('USAGE', `source ${arg}: expected s3://BUCKET[/PREFIX]`);
    const dest = new S3Destination({
      name: 'verify',
      bucket: m[1]!,
      prefix: m[2] ?? '',
      ...(o.endpoint !== undefined ? { endpoint: o.endpoint } : {}),
      ...(o.region !== undefined ? { region: o.region } : {}),
      forcePathStyle: o.forcePathStyle ?? false,
      // Only read here; retention applies to writes.
      retentionDays: 1,
    });
    return new DestinationLogSource(arg, dest, o.origin);
  }
  const name = arg.slice('dest:'.length);
  if (o.configFile === undefined) throw new SealtrailError('USAGE', `source ${arg} needs --config FILE (the agent's config naming that destination)`);
  const cfg = loadConfigFile(resolve(o.cwd, o.configFile));
  const d = cfg.destinations.find((x) => x.name === name);
  if (!d) {
    throw new SealtrailError('USAGE', `source ${arg}: no destination named "${name}" in ${o.configFile} (have: ${cfg.destinations.map((x) => x.name).join(', ') || 'none'})`);
  }
  return new DestinationLogSource(arg, await createDestination(d), o.origin);
}
