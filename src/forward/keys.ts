/**
 * Object keys at a destination. The same relative layout is used by every destination type so that
 * `sealtrail verify` reads an fs directory and an S3 prefix the same way (DESIGN.md "Forwarding":
 * keys are deterministic from origin and segment sequence; the ledger's file names sort in order).
 *
 *   <originPath>/segments/<segment file name>
 *   <originPath>/checkpoints/<checkpoint file name>
 */

export type ItemKind = 'segment' | 'checkpoint';

const SAFE = /^[A-Za-z0-9._-]$/;

/** Folder written by the write-once canary; readers skip it. */
export const CANARY_FOLDER = '.sealtrail-canary';

/**
 * Maps an origin to a relative folder path. `/` stays a separator; every other byte outside
 * `[A-Za-z0-9._-]` is percent-encoded, and the components `.`, `..` and `` (empty) are encoded so
 * that an origin can never climb out of the destination root. The mapping is injective, so two
 * different origins never share a folder.
 */
export function originPath(origin: string): string {
  if (origin.length === 0) throw new RangeError('origin must not be empty');
  return origin
    .split('/')
    .map((c) => {
      if (c === '') return '%';
      if (c === '.') return '%2E';
      if (c === '..') return '%2E%2E';
      let out = '';
      for (const b of Buffer.from(c, 'utf8')) {
        const ch = String.fromCharCode(b);
        out += SAFE.test(ch) ? ch : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
      }
      return out;
    })
    .join('/');
}

const NAME = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,254}$/;

/**
 * Validates a ledger file name used as the last key component.
 * @throws RangeError when the name could escape its folder or is not a plain file name.
 */
export function checkName(name: string): string {
  if (!NAME.test(name)) {
    throw new RangeError(`invalid object name ${JSON.stringify(name)}: expected a plain file name of [A-Za-z0-9._-], not starting with a dot`);
  }
  return name;
}

/** The relative key of one ledger file at every destination. */
export function objectKey(origin: string, kind: ItemKind, name: string): string {
  checkName(name);
  return `${originPath(origin)}/${kind === 'segment' ? 'segments' : 'checkpoints'}/${name}`;
}

/**
 * Checks a relative key before it is turned into a path or an S3 key.
 * @throws RangeError for absolute keys, backslashes, NUL or `.`/`..`/empty components.
 */
export function checkKey(key: string): string {
  if (key.length === 0 || key.length > 900) throw new RangeError(`invalid object key ${JSON.stringify(key)}: empty or longer than 900 bytes`);
  if (key.includes('\\') || key.includes('\0')) throw new RangeError(`invalid object key ${JSON.stringify(key)}: backslash or NUL`);
  for (const c of key.split('/')) {
    if (c === '' || c === '.' || c === '..') {
      throw new RangeError(`invalid object key ${JSON.stringify(key)}: empty, "." or ".." component`);
    }
  }
  return key;
}
