/**
 * The container image, tested without a Docker engine (none runs here; DESIGN.md "Operating it").
 *
 * SLOW TEST (~30–60 s, most of it tsc and `npm ci`): it replays the Dockerfile's build and prod
 * stages on the host — compile, `npm pack`, unpack, `npm ci --omit=dev` from the lock file (from the
 * local npm cache when possible) — and then runs the image's ENTRYPOINT with `--version` / `--help`,
 * the image's HEALTHCHECK command against a real health endpoint, and imports every compiled module
 * from the production install (a src/ import of a devDependency would break the image at run time).
 * The Dockerfile itself is read and its runtime settings checked (non-root numeric user,
 * STOPSIGNAL, EXPOSE, VOLUME, HEALTHCHECK).
 */
import { execFile } from 'node:child_process';
import { chmod, cp, mkdir, mkdtemp, readFile, readdir, rm, stat, symlink } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfigFile } from '../../src/config/load.js';
import { Health } from '../../src/telemetry/health.js';
import { Metrics } from '../../src/telemetry/metrics.js';
import { TelemetryServer } from '../../src/telemetry/server.js';
import { AGENT_NODE_FLAGS } from '../../src/cli/node-flags.js';

const run = promisify(execFile);
const ROOT = new URL('../..', import.meta.url).pathname;

interface Instruction {
  readonly op: string;
  readonly args: string;
}

/** Minimal Dockerfile reader: comments, line continuations, one instruction per logical line. */
function parseDockerfile(text: string): Instruction[][] {
  const logical: string[] = [];
  let cur = '';
  for (const raw of text.split('\n')) {
    const line = raw.trimEnd();
    if (cur === '' && /^\s*#/.test(line)) continue;
    if (line.endsWith('\\')) {
      cur += `${line.slice(0, -1)} `;
      continue;
    }
    cur += line;
    if (cur.trim()) logical.push(cur.trim());
    cur = '';
  }
  const stages: Instruction[][] = [];
  for (const l of logical) {
    const m = /^(\S+)\s+([\s\S]*)$/.exec(l);
    if (!m) continue;
    const ins = { op: m[1]!.toUpperCase(), args: m[2]!.replace(/\s+/g, ' ').trim() };
    if (ins.op === 'FROM') stages.push([]);
    stages.at(-1)?.push(ins); // global ARGs before the first FROM are not part of a stage
  }
  return stages;
}

function one(stage: Instruction[], op: string): string {
  const found = stage.filter((i) => i.op === op);
  expect(found, `exactly one ${op} in the runtime stage`).toHaveLength(1);
  return found[0]!.args;
}

const dockerfile = await readFile(join(ROOT, 'Dockerfile'), 'utf8');
const stages = parseDockerfile(dockerfile);
const runtime = stages.at(-1)!;
const entrypoint = JSON.parse(one(runtime, 'ENTRYPOINT')) as string[];
const cmd = JSON.parse(one(runtime, 'CMD')) as string[];
const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as {
  version: string;
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};

let tmp: string;
let app: string; // plays /app
let volume: string; // plays /var/lib/sealtrail (the WORKDIR)

/** The image's ENTRYPOINT with `/app/` mapped to the test's install. */
function imageCommand(extra: string[]): [string, string[]] {
  const mapped = entrypoint.map((a) => (a.startsWith('/app/') ? join(app, a.slice('/app/'.length)) : a));
  return [mapped[0]!, [...mapped.slice(1), ...extra]];
}

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'sealtrail-image-'));
  const stage = join(tmp, 'stage');
  app = join(tmp, 'app');
  volume = join(tmp, 'volume');
  await mkdir(stage);
  await mkdir(app);
  await mkdir(volume);
  // build stage: the build context is the committed tree (HEAD), like a clean clone, so files other
  // engineers are still editing in this checkout cannot break (or fake) the result. Outside a git
  // checkout, the working tree is used.
  if (existsSync(join(ROOT, '.git'))) {
    await run('sh', ['-c', `git archive --format=tar HEAD | tar -x -C "${stage}"`], { cwd: ROOT, maxBuffer: 64 * 1024 * 1024 });
  } else {
    for (const f of ['package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json', 'README.md', 'LICENSE', 'src', 'bench', 'proto', 'config', 'docs']) {
      if (existsSync(join(ROOT, f))) await cp(join(ROOT, f), join(stage, f), { recursive: true });
    }
  }
  await symlink(join(ROOT, 'node_modules'), join(stage, 'node_modules')); // dev dependencies, as after the build stage's npm ci
  await run(join(ROOT, 'node_modules/.bin/tsc'), ['-p', join(stage, 'tsconfig.build.json')], { cwd: stage }).catch((e: { stdout?: string }) => {
    throw new Error(`the committed tree (HEAD) does not compile, so no image could be built:\n${e.stdout ?? String(e)}`);
  });
  await rm(join(stage, 'node_modules'));
  const packed = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', tmp], { cwd: stage });
  const [info] = JSON.parse(packed.stdout) as Array<{ filename: string }>;
  await run('tar', ['-xzf', join(tmp, info!.filename), '-C', app, '--strip-components=1']);
  await cp(join(ROOT, 'package-lock.json'), join(app, 'package-lock.json'));
  // prod stage, as in the Dockerfile (plus --prefer-offline: use the local cache when it has it)
  await run('npm', ['ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline'], {
    cwd: app,
    env: { ...process.env, NODE_ENV: 'production' },
    maxBuffer: 16 * 1024 * 1024,
  });
  // the prod stage builds the native hashing addon with the package's own install script
  await run('npm', ['run', 'install'], { cwd: app, maxBuffer: 16 * 1024 * 1024 });
  await chmod(join(app, 'dist/src/cli/bin.js'), 0o755); // as the prod stage does
  // the runtime stage's `ln -s /app/dist/src/cli/bin.js /usr/local/bin/sealtrail`
  await mkdir(join(tmp, 'bin'));
  await symlink(join(app, 'dist/src/cli/bin.js'), join(tmp, 'bin', 'sealtrail'));
  // read-only like the image: /app is root-owned and not writable by the agent's user
  await run('chmod', ['-R', 'a-w', app]);
}, 240_000);

afterAll(async () => {
  if (!tmp) return;
  await run('chmod', ['-R', 'u+w', tmp]).catch(() => undefined);
  await rm(tmp, { recursive: true, force: true });
});

describe('image start command from a production install (npm pack + npm ci --omit=dev)', () => {
  it('ENTRYPOINT --version prints the package version', async () => {
    const [file, args] = imageCommand(['--version']);
    const r = await run(file, args, { cwd: volume, env: { PATH: process.env.PATH, NODE_ENV: 'production' } });
    expect(r.stdout).toBe(`sealtrail ${pkg.version}\n`);
  });

  it('the production install hashes with the native addon its prod stage built (not the fallback)', async () => {
    const probe = `import('${join(app, 'dist/src/ledger/native-hash.js')}').then((m) => console.log(m.nativeHashStatus))`;
    const r = await run(process.execPath, ['-e', probe], { cwd: volume, env: { PATH: process.env.PATH, NODE_ENV: 'production' } });
    // The status names the addon file and which SHA-256 it uses (native/sha256_ni.h or OpenSSL).
    const status = r.stdout.trim();
    expect(status.startsWith(`native (${join(app, 'build/Release/sealtrail_hash.node')}; SHA-256: `)).toBe(true);
    expect(status).toMatch(/; SHA-256: (sha-ni|openssl)\)$/);
  });

  it('ENTRYPOINT --help lists the commands, including the CMD one', async () => {
    const [file, args] = imageCommand(['--help']);
    const r = await run(file, args, { cwd: volume, env: { PATH: process.env.PATH, NODE_ENV: 'production' } });
    expect(r.stdout).toMatch(/sealtrail agent --config FILE/);
    expect(r.stdout).toMatch(/sealtrail verify SOURCE/);
    expect(cmd[0]).toBe('agent');
  });

  it('`sealtrail` is on PATH in the image (the verify CronJob calls it by name)', async () => {
    expect(runtime.filter((i) => i.op === 'RUN').map((i) => i.args).join(' ')).toContain('ln -s /app/dist/src/cli/bin.js /usr/local/bin/sealtrail');
    expect(stages[1]!.filter((i) => i.op === 'RUN').map((i) => i.args).join(' ')).toContain('chmod 0755 dist/src/cli/bin.js');
    const r = await run('sealtrail', ['--version'], { cwd: volume, env: { PATH: `${join(tmp, 'bin')}:${process.env.PATH}` } });
    expect(r.stdout).toBe(`sealtrail ${pkg.version}\n`);
  });

  it("the CMD's config ships in the package and passes sealtrail's own schema", async () => {
    expect(cmd.slice(1, 2)).toEqual(['--config']);
    const inImage = cmd[2]!;
    expect(inImage.startsWith('/app/')).toBe(true);
    const file = join(app, inImage.slice('/app/'.length));
    const cfg = loadConfigFile(file);
    // everything the agent writes is inside the volume (read-only root filesystem)
    const vol = runtime.find((i) => i.op === 'VOLUME')!.args;
    const volPath = (JSON.parse(vol) as string[])[0]!;
    for (const p of [cfg.ledger.dir, cfg.signing.key_file, ...cfg.destinations.flatMap((d) => (d.type === 'fs' ? [d.path] : []))]) {
      expect(p.startsWith(`${volPath}/`), `${p} is under ${volPath}`).toBe(true);
    }
    // reachable from outside the container, and the shutdown fits in docker stop's default 10 s
    expect(cfg.receivers.otlp.protocols.http!.endpoint).toBe('0.0.0.0:4318');
    expect(cfg.receivers.otlp.protocols.grpc!.endpoint).toBe('0.0.0.0:4317');
    expect(cfg.shutdown.grace_period).toBeLessThan(10_000);
  });

  it('has every production dependency and no development-only package', async () => {
    for (const d of Object.keys(pkg.dependencies)) expect(existsSync(join(app, 'node_modules', d)), d).toBe(true);
    // The lock file marks packages needed only by devDependencies with "dev": true (some
    // devDependencies, e.g. protobufjs, are also needed by production ones and must stay).
    const lock = JSON.parse(await readFile(join(ROOT, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, { dev?: boolean; optional?: boolean; devOptional?: boolean }>;
    };
    const devOnly = Object.entries(lock.packages).filter(([p, e]) => p.startsWith('node_modules/') && e.dev);
    expect(devOnly.length).toBeGreaterThan(50);
    for (const [p] of devOnly) expect(existsSync(join(app, p)), `${p} (dev only) is not installed`).toBe(false);
    for (const d of ['typescript', 'vitest', 'eslint', 'fast-check']) expect(existsSync(join(app, 'node_modules', d)), d).toBe(false);
    // the package carries no tests, sources or local state
    const top = (await readdir(app)).sort();
    expect(top).not.toContain('test');
    expect(top).not.toContain('src');
    expect(top).not.toContain('data');
    expect(existsSync(join(app, 'dist/src/cli/bin.js'))).toBe(true);
  });

  it('every compiled module loads with production dependencies only', async () => {
    const files: string[] = [];
    const walk = async (dir: string): Promise<void> => {
      for (const e of await readdir(dir, { withFileTypes: true })) {
        const p = join(dir, e.name);
        if (e.isDirectory()) await walk(p);
        else if (e.name.endsWith('.js')) files.push(p);
      }
    };
    await walk(join(app, 'dist/src'));
    const modules = files.filter((f) => !f.endsWith('/cli/bin.js')).map((f) => `./${relative(app, f)}`);
    expect(modules.length).toBeGreaterThan(10);
    const script = `for (const m of ${JSON.stringify(modules)}) { try { await import(m); } catch (e) { console.error(m + ': ' + e.message); process.exitCode = 1; } }`;
    const r = await run(process.execPath, ['--input-type=module', '-e', script], { cwd: app, env: { PATH: process.env.PATH, NODE_ENV: 'production' } }).catch(
      (e: { stderr: string; code: number }) => e,
    );
    expect('stderr' in r ? r.stderr : '').toBe('');
  });

  it("as the image's numeric USER: the start command works, the package is not writable, the volume is", async () => {
    const [uid, gid] = one(runtime, 'USER').split(':').map(Number) as [number, number];
    // Run as that user when we are root (as in CI), so file permissions really apply.
    const asUser = process.getuid?.() === 0 && existsSync('/usr/bin/setpriv');
    const wrap = (file: string, args: string[]): [string, string[]] =>
      asUser ? ['/usr/bin/setpriv', [`--reuid=${uid}`, `--regid=${gid}`, '--clear-groups', file, ...args]] : [file, args];
    if (asUser) {
      await chmod(tmp, 0o755);
      await run('chown', [`${uid}:${gid}`, volume]);
    }
    const [file, args] = imageCommand(['--version']);
    const r = await run(...wrap(file, args), { cwd: volume, env: { PATH: process.env.PATH, NODE_ENV: 'production' } });
    expect(r.stdout).toBe(`sealtrail ${pkg.version}\n`);
    const tryWrite = (dir: string) =>
      run(...wrap(process.execPath, ['-e', `require('node:fs').writeFileSync(${JSON.stringify(join(dir, 'probe'))}, 'x')`])).then(
        () => 'written',
        (e: { stderr: string }) => (/EACCES|EPERM|EROFS/.test(e.stderr) ? 'denied' : e.stderr),
      );
    if (asUser) {
      expect(await tryWrite(join(app, 'dist/src'))).toBe('denied');
      expect(await tryWrite(volume)).toBe('written');
    } else {
      expect((await stat(join(app, 'dist/src/cli/bin.js'))).mode & 0o222).toBe(0);
    }
  });
});

describe('Dockerfile runtime settings', () => {
  it('is multi-stage: build with dev deps, prod deps with npm ci --omit=dev, runtime copies the result', () => {
    expect(stages.length).toBe(3);
    const runs = (s: Instruction[]) => s.filter((i) => i.op === 'RUN').map((i) => i.args).join(' && ');
    expect(runs(stages[0]!)).toMatch(/npm ci /);
    expect(runs(stages[0]!)).toMatch(/npm run build/);
    expect(runs(stages[1]!)).toMatch(/npm ci --omit=dev --ignore-scripts/);
    // the native hashing addon is built in the prod stage, and its absence fails the image build
    expect(runs(stages[1]!)).toMatch(/npm run install && test -f build\/Release\/sealtrail_hash\.node/);
    expect(runtime.filter((i) => i.op === 'COPY').map((i) => i.args)).toEqual(['--from=prod /app /app']);
    expect(runs(runtime)).not.toMatch(/npm (ci|install)/);
    expect(dockerfile).not.toMatch(/^\s*ADD\s+https?:/m);
    expect(one(stages[0]!, 'FROM')).toMatch(/^\$\{NODE_IMAGE\} AS build$/);
    expect(dockerfile).toMatch(/^ARG NODE_IMAGE=node:(2[2-9]|[3-9]\d)-[a-z]+-slim$/m); // a current LTS, slim
  });

  it('runs as a numeric non-root user, data in a volume, SIGTERM, Collector ports, node-based HEALTHCHECK', () => {
    const user = one(runtime, 'USER');
    expect(user).toMatch(/^\d+:\d+$/);
    expect(Number(user.split(':')[0])).toBeGreaterThan(0);
    expect(one(runtime, 'STOPSIGNAL')).toBe('SIGTERM');
    expect(one(runtime, 'EXPOSE').split(' ').sort()).toEqual(['13133', '4317', '4318', '8888']);
    expect(JSON.parse(one(runtime, 'VOLUME'))).toEqual(['/var/lib/sealtrail']);
    expect(one(runtime, 'WORKDIR')).toBe('/var/lib/sealtrail');
    expect(one(runtime, 'HEALTHCHECK')).toMatch(/^--interval=\S+ --timeout=\S+ --start-period=\S+ --retries=\d+ CMD \["node"/);
    expect(entrypoint).toEqual(['node', ...AGENT_NODE_FLAGS, '/app/dist/src/cli/bin.js']); // flags: test/ops/node-flags.test.ts
  });

  it('.dockerignore is an allow-list that keeps keys, data and node_modules out of the build context', async () => {
    const lines = (await readFile(join(ROOT, '.dockerignore'), 'utf8')).split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
    expect(lines[0]).toBe('*');
    const allowed = lines.filter((l) => l.startsWith('!')).map((l) => l.slice(1).replace(/\/$/, ''));
    for (const bad of ['node_modules', 'dist', 'data', '.git', 'test']) expect(allowed).not.toContain(bad);
    expect(lines).toContain('**/*.key');
    // everything the build stage needs is allowed
    for (const need of ['package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json', 'src', 'config']) expect(allowed).toContain(need);
    // and what the package's install script needs to build the native addon in the prod stage
    for (const need of ['binding.gyp', 'native', 'scripts/build-native.mjs']) expect(allowed).toContain(need);
  });
});

describe('HEALTHCHECK command', () => {
  const hc = /CMD (\[.*\])$/.exec(one(runtime, 'HEALTHCHECK'))!;
  const argv = JSON.parse(hc[1]!) as string[];
  const check = (url: string) =>
    run(argv[0] === 'node' ? process.execPath : argv[0]!, argv.slice(1), { env: { PATH: process.env.PATH, SEALTRAIL_HEALTHCHECK_URL: url } }).then(
      () => 0,
      (e: { code: number }) => e.code,
    );

  it('exits 0 against a live /healthz, 1 when refused or unhealthy', async () => {
    const metrics = new Metrics({ defaultMetrics: false });
    const server = new TelemetryServer({ metricsEndpoint: '127.0.0.1:0', healthEndpoint: '127.0.0.1:0', metrics, health: new Health() });
    await server.start();
    const bad = createServer((_q, s) => s.writeHead(500).end());
    await new Promise<void>((r) => bad.listen(0, '127.0.0.1', r));
    try {
      expect(await check(`http://127.0.0.1:${server.healthAddress!.port}/healthz`)).toBe(0);
      expect(await check(`http://127.0.0.1:${(bad.address() as { port: number }).port}/healthz`)).toBe(1);
      const port = server.healthAddress!.port;
      await server.shutdown();
      expect(await check(`http://127.0.0.1:${port}/healthz`)).toBe(1);
    } finally {
      await server.shutdown();
      await new Promise<void>((r) => bad.close(() => r()));
    }
    // and without the override it targets the default health endpoint
    expect(argv.join(' ')).toContain("'http://127.0.0.1:13133/healthz'");
  });
});
