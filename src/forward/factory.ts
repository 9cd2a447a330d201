/** Builds destinations from the validated config (src/config/schema.ts `destinations`). */
import type { DestinationConfig } from '../config/schema.js';
import type { Logger } from '../telemetry/logger.js';
import type { Destination } from './destination.js';
import { FsDestination } from './fs.js';

/**
 * One Destination per config entry. The S3 implementation (and the AWS SDK, ~25 MB of RSS and a
 * slower start) is loaded only when an `s3` destination is configured.
 * `logger` receives the S3 SDK's own warnings at debug level (s3.ts sdkLogger).
 * @throws SealtrailError CONFIG_INVALID / CONFIG_IO for S3 credential or CA file problems.
 */
export async function createDestination(cfg: DestinationConfig, logger?: Logger): Promise<Destination> {
  if (cfg.type === 'fs') return new FsDestination({ name: cfg.name, path: cfg.path });
  const { S3Destination } = await import('./s3.js');
  return new S3Destination({
    name: cfg.name,
    bucket: cfg.bucket,
    prefix: cfg.prefix,
    ...(cfg.endpoint !== undefined ? { endpoint: cfg.endpoint } : {}),
    region: cfg.region,
    forcePathStyle: cfg.force_path_style,
    ...(cfg.access_key_id !== undefined ? { accessKeyId: cfg.access_key_id } : {}),
    ...(cfg.secret_access_key !== undefined ? { secretAccessKey: cfg.secret_access_key } : {}),
    ...(cfg.ca_file !== undefined ? { caFile: cfg.ca_file } : {}),
    retentionDays: cfg.retention.days,
    ...(logger !== undefined ? { logger: logger.child({ destination: cfg.name }) } : {}),
  });
}
