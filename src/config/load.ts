/**
 * Loads the YAML configuration: parse, substitute `${env:VAR}` / `${file:PATH}` references inside
 * string values, then validate against the one schema. Fails fast with every problem listed, each
 * with its key path (`receivers.otlp.protocols.http.endpoint: …`).
 */
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { SealtrailError, errorMessage } from '../errors.js';
import { type Config, configSchema } from './schema.js';

const REF = /\$\{(env|file):[^}]*\}/;

/** Replace `${env:NAME}` and `${file:PATH}` in one string; `$${` escapes a literal `${`. */
function substitute(value: string, path: string, baseDir: string, problems: string[]): string {
  return value.replace(/\$\$\{|\$\{(env|file):([^}]*)\}/g, (match, kind: string, ref: string) => {
    if (match === '$${') return '${';
    if (kind === 'env') {
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(ref)) {
        problems.push(`${path}: invalid environment variable name "${ref}" in ${match}`);
        return '';
      }
      const v = process.env[ref];
      if (v === undefined) {
        problems.push(`${path}: environment variable ${ref} is not set (referenced as ${match})`);
        return '';
      }
      return v;
    }
    const file = isAbsolute(ref) ? ref : resolve(baseDir, ref);
    try {
      return readFileSync(file, 'utf8').replace(/\r?\n$/, '');
    } catch (e) {
      problems.push(`${path}: cannot read ${match}: ${errorMessage(e)}`);
      return '';
    }
  });
}

function walk(node: unknown, path: string, baseDir: string, problems: string[]): unknown {
  if (typeof node === 'string') return REF.test(node) || node.includes('$${') ? substitute(node, path, baseDir, problems) : node;
  if (Array.isArray(node)) return node.map((v, i) => walk(v, `${path}[${i}]`, baseDir, problems));
  if (node !== null && typeof node === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(node)) out[k] = walk(v, path ? `${path}.${k}` : k, baseDir, problems);
    return out;
  }
  return node;
}

export function formatIssuePath(path: ReadonlyArray<PropertyKey>): string {
  let s = '';
  for (const p of path) s += typeof p === 'number' ? `[${p}]` : s ? `.${String(p)}` : String(p);
  return s || '(top level)';
}

function describeIssue(issue: z.core.$ZodIssue): string {
  if (issue.code === 'unrecognized_keys') {
    const base = issue.path.length ? `${formatIssuePath(issue.path)}.` : '';
    return issue.keys.map((k) => `${base}${k}: unknown key (check the spelling; see docs/configuration.md)`).join('\n');
  }
  return `${formatIssuePath(issue.path)}: ${issue.message}`;
}

/**
 * Validate an already-parsed configuration object.
 * @throws SealtrailError CONFIG_INVALID listing every problem with its key path.
 */
export function parseConfig(raw: unknown, source = 'config', baseDir = process.cwd()): Config {
  const problems: string[] = [];
  const substituted = walk(raw ?? {}, '', baseDir, problems);
  if (problems.length) throw new SealtrailError('CONFIG_INVALID', `invalid configuration in ${source}:\n  ${problems.join('\n  ')}`);
  const r = configSchema.safeParse(substituted);
  if (!r.success) {
    const lines = r.error.issues.map(describeIssue).join('\n').split('\n');
    throw new SealtrailError('CONFIG_INVALID', `invalid configuration in ${source}:\n  ${lines.join('\n  ')}`);
  }
  return r.data;
}

/**
 * Read, substitute and validate a YAML configuration file. Relative paths inside the config
 * (ledger.dir, key files, …) stay relative to the working directory, like the Collector's.
 * @throws SealtrailError CONFIG_IO when unreadable, CONFIG_INVALID when invalid.
 */
export function loadConfigFile(file: string): Config {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new SealtrailError('CONFIG_IO', `cannot read config file ${file}: ${errorMessage(e)}`, { cause: e });
  }
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: true });
  if (doc.errors.length) {
    throw new SealtrailError(
      'CONFIG_INVALID',
      `invalid YAML in ${file}:\n  ${doc.errors.map((e) => e.message.split('\n')[0]).join('\n  ')}`,
    );
  }
  return parseConfig(doc.toJS(), file, dirname(resolve(file)));
}
