/**
 * deploy/kubernetes/: every manifest validates against the Kubernetes API schemas (kubernetes-models:
 * generated from the Kubernetes OpenAPI document, compiled with ajv), strictly (an unknown field —
 * a typo such as `readOnlyRootFileSystem` — fails, as `kubectl apply` does), and the pieces fit
 * together: the embedded agent config passes sealtrail's own schema with `${env:NODE_NAME}`
 * substituted, ports/paths/probes agree with it, the security settings are the ones DESIGN.md
 * and issue 6 ask for, and the verify CronJob's script fails loudly (run here with a stand-in
 * `sealtrail`, after the kubelet's `$(VAR)` expansion).
 */
import { execFile } from 'node:child_process';
import { chmod, mkdtemp, readFile, readdir, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';
import { parse, parseAllDocuments } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { parseEndpoint } from '../../src/config/schema.js';
import type { Config } from '../../src/config/schema.js';

const run = promisify(execFile);
const ROOT = new URL('../..', import.meta.url).pathname;
const DIR = join(ROOT, 'deploy/kubernetes');

// ---- loading ---------------------------------------------------------------------------------

/* eslint-disable @typescript-eslint/no-explicit-any -- manifests are untyped YAML trees */
type Obj = Record<string, any>;

interface Manifest {
  readonly file: string;
  readonly doc: Obj;
}

async function yamlFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await yamlFiles(p)));
    else if (/\.ya?ml$/.test(e.name)) out.push(p);
  }
  return out.sort();
}

async function loadManifests(): Promise<Manifest[]> {
  const out: Manifest[] = [];
  for (const file of await yamlFiles(DIR)) {
    // Kubernetes decodes YAML 1.1 (0400 is octal, yes/no are booleans): parse the way it does.
    const docs = parseAllDocuments(await readFile(file, 'utf8'), { version: '1.1', uniqueKeys: true });
    for (const d of Array.isArray(docs) ? docs : [docs]) {
      if (d.errors.length) throw new Error(`${relative(ROOT, file)}: ${d.errors.map((e) => e.message).join('; ')}`);
      const doc = d.toJS() as Obj | null;
      if (doc !== null) out.push({ file: relative(ROOT, file), doc });
    }
  }
  return out;
}

// ---- schema validation -----------------------------------------------------------------------

type ValidateFn = ((data: unknown) => boolean) & { errors?: Array<{ instancePath: string; message?: string; keyword: string; params: unknown }> | null };

/** `apps/v1` + `DaemonSet` → kubernetes-models' compiled schema `IoK8sApiAppsV1DaemonSet`. */
async function schemaFor(apiVersion: string, kind: string): Promise<ValidateFn> {
  const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') : ['core', apiVersion];
  const cap = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);
  const name = `IoK8sApi${cap(group!.split('.')[0]!)}${cap(version!)}${kind}`;
  const mod = (await import(`kubernetes-models/_schemas/${name}`)) as { validate: ValidateFn };
  return mod.validate;
}

/**
 * Validate, and list fields the schema does not know. The compiled validator reads every property
 * its schema defines (and every entry of a map); a key of a visited object that it never read is
 * therefore not in the schema — the same "unknown field" kubectl's strict decoding reports.
 */
function validateStrict(validate: ValidateFn, doc: Obj): { errors: string[]; unknown: string[] } {
  const proxies = new WeakMap<object, object>();
  const reads = new Map<object, Set<string>>();
  const wrap = (v: unknown): unknown => {
    if (v === null || typeof v !== 'object') return v;
    const known = proxies.get(v);
    if (known) return known;
    const read = new Set<string>();
    reads.set(v, read);
    const p = new Proxy(v, {
      get(t, k, r) {
        if (typeof k === 'string') read.add(k);
        return wrap(Reflect.get(t, k, r));
      },
    });
    proxies.set(v, p);
    return p;
  };
  const ok = validate(wrap(doc));
  const errors = ok ? [] : (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? e.keyword} ${JSON.stringify(e.params)}`);
  const unknown: string[] = [];
  const walk = (v: unknown, path: string): void => {
    if (v === null || typeof v !== 'object') return;
    if (Array.isArray(v)) return v.forEach((x, i) => walk(x, `${path}/${i}`));
    const read = reads.get(v);
    for (const [k, child] of Object.entries(v)) {
      if (read && !read.has(k)) unknown.push(`${path}/${k}`);
      walk(child, `${path}/${k}`);
    }
  };
  walk(doc, '');
  return { errors, unknown };
}

// ---- helpers ---------------------------------------------------------------------------------

function find(ms: Manifest[], kind: string, name: string): Obj {
  const m = ms.find((x) => x.doc.kind === kind && x.doc.metadata?.name === name);
  if (!m) throw new Error(`no ${kind} ${name} in deploy/kubernetes`);
  return m.doc;
}

function container(podSpec: Obj, name: string, init = false): Obj {
  const c = (init ? podSpec.initContainers : podSpec.containers)?.find((x: Obj) => x.name === name);
  if (!c) throw new Error(`no ${init ? 'init ' : ''}container ${name}`);
  return c;
}

function mountOf(c: Obj, volume: string): Obj {
  const m = c.volumeMounts?.find((x: Obj) => x.name === volume);
  if (!m) throw new Error(`container ${c.name} does not mount ${volume}`);
  return m;
}

function volumeOf(podSpec: Obj, name: string): Obj {
  const v = podSpec.volumes?.find((x: Obj) => x.name === name);
  if (!v) throw new Error(`no volume ${name}`);
  return v;
}

function portNamed(c: Obj, name: string | number): Obj {
  const p = c.ports?.find((x: Obj) => x.name === name || x.containerPort === name);
  if (!p) throw new Error(`container ${c.name} has no port ${name}`);
  return p;
}

/**
 * The kubelet's `$(VAR)` expansion of command, args and env values (Kubernetes API reference,
 * "EnvVar.value" / "Container.command"): `$$` escapes `$`; `$(NAME)` becomes the value of a
 * variable defined EARLIER in the env list; an unresolvable reference is left unchanged.
 */
function kubeExpand(s: string, vars: ReadonlyMap<string, string>): string {
  let out = '';
  for (let i = 0; i < s.length; i++) {
    if (s[i] !== '$' || i + 1 >= s.length) {
      out += s[i];
      continue;
    }
    const next = s[i + 1];
    if (next === '$') {
      out += '$';
      i++;
    } else if (next === '(') {
      const close = s.indexOf(')', i + 2);
      if (close < 0) {
        out += s.slice(i);
        break;
      }
      const name = s.slice(i + 2, close);
      out += vars.has(name) ? vars.get(name) : `$(${name})`;
      i = close;
    } else {
      out += '$';
    }
  }
  return out;
}

/** Env of a container as the kubelet resolves it; `fieldRef` values come from `downward`. */
function resolveEnv(c: Obj, downward: Record<string, string>): Map<string, string> {
  const vars = new Map<string, string>();
  for (const e of c.env ?? []) {
    if (e.value !== undefined) vars.set(e.name, kubeExpand(String(e.value), vars));
    else if (e.valueFrom?.fieldRef) vars.set(e.name, downward[e.valueFrom.fieldRef.fieldPath] ?? `<${e.valueFrom.fieldRef.fieldPath}>`);
  }
  return vars;
}

// ---- the tests -------------------------------------------------------------------------------

const manifests = await loadManifests();
const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { version: string };
const dockerUser = /^USER (\d+):(\d+)$/m.exec(await readFile(join(ROOT, 'Dockerfile'), 'utf8'))!;

const ds = find(manifests, 'DaemonSet', 'sealtrail');
const dsPod = ds.spec.template.spec as Obj;
const agent = container(dsPod, 'agent');
const prepare = container(dsPod, 'prepare', true);
const agentCm = find(manifests, 'ConfigMap', 'sealtrail-config');

function agentConfig(nodeName: string | undefined): Config {
  const saved = process.env.NODE_NAME;
  if (nodeName === undefined) delete process.env.NODE_NAME;
  else process.env.NODE_NAME = nodeName;
  try {
    return parseConfig(parse(agentCm.data['agent.yaml']), 'ConfigMap sealtrail-config, key agent.yaml');
  } finally {
    if (saved === undefined) delete process.env.NODE_NAME;
    else process.env.NODE_NAME = saved;
  }
}
const cfg = agentConfig('node-a');

describe('every manifest validates against the Kubernetes schemas', () => {
  it('finds the expected objects', () => {
    const kinds = manifests.map((m) => `${m.doc.kind}/${m.doc.metadata?.name}`).sort();
    expect(kinds).toEqual([
      'ConfigMap/sealtrail-config',
      'ConfigMap/sealtrail-verify',
      'CronJob/sealtrail-verify',
      'DaemonSet/sealtrail',
      'Deployment/example-app',
      'Namespace/sealtrail',
      'ServiceAccount/sealtrail',
    ]);
  });

  for (const { file, doc } of manifests) {
    it(`${file}: ${doc.kind}/${doc.metadata?.name} is valid and has no unknown field`, async () => {
      expect(typeof doc.apiVersion).toBe('string');
      const validate = await schemaFor(doc.apiVersion, doc.kind);
      const { errors, unknown } = validateStrict(validate, doc);
      expect(errors).toEqual([]);
      expect(unknown).toEqual([]);
    });
  }

  it('the validation is strict and catches wrong types (so passing means something)', async () => {
    const validate = await schemaFor('apps/v1', 'DaemonSet');
    const typo = structuredClone(ds);
    typo.spec.template.spec.containers[0].securityContext.readOnlyRootFileSystem = true;
    expect(validateStrict(validate, typo)).toEqual({ errors: [], unknown: ['/spec/template/spec/containers/0/securityContext/readOnlyRootFileSystem'] });
    const wrongType = structuredClone(ds);
    wrongType.spec.template.spec.containers[0].ports[0].containerPort = '4317';
    expect(validateStrict(validate, wrongType).errors.join('\n')).toMatch(/\/ports\/0\/containerPort type \{"type":"integer"\}/);
    const missing = structuredClone(ds);
    delete missing.spec.selector;
    expect(validateStrict(validate, missing).errors.join('\n')).toMatch(/missingProperty.*selector/);
    const badEnum = structuredClone(ds);
    badEnum.spec.template.spec.volumes[1].hostPath.type = 'DirectoryOrCreated';
    expect(validateStrict(validate, badEnum).errors.join('\n')).toMatch(/hostPath\/type enum/);
  });

  it('sealtrail objects live in the sealtrail namespace and use one image, tagged with the package version', () => {
    for (const { doc } of manifests) {
      if (doc.kind === 'Namespace' || doc.metadata.name === 'example-app') continue;
      expect(doc.metadata.namespace, `${doc.kind}/${doc.metadata.name}`).toBe('sealtrail');
    }
    const images = new Set<string>();
    const pods = [dsPod, find(manifests, 'CronJob', 'sealtrail-verify').spec.jobTemplate.spec.template.spec];
    for (const p of pods) for (const c of [...(p.initContainers ?? []), ...p.containers]) images.add(c.image);
    expect([...images]).toEqual([`registry.example.com/sealtrail:${pkg.version}`]);
  });
});

describe('agent config in the ConfigMap', () => {
  it("passes sealtrail's own schema with ${env:NODE_NAME} substituted; refuses to load without it", () => {
    expect(cfg.ledger.origin).toBe('sealtrail.k8s.example/prod/node-a');
    expect(() => agentConfig(undefined)).toThrow(/ledger\.origin: environment variable NODE_NAME is not set/);
    // a real node name (DNS subdomain) makes a valid origin too
    expect(agentConfig('ip-10-1-2-3.eu-central-1.compute.internal').ledger.origin).toMatch(/compute\.internal$/);
  });

  it('listens on all interfaces inside the pod, on the ports the DaemonSet publishes', () => {
    for (const [proto, portName] of [
      ['grpc', 'otlp-grpc'],
      ['http', 'otlp-http'],
    ] as const) {
      const ep = parseEndpoint(cfg.receivers.otlp.protocols[proto]!.endpoint)!;
      expect(ep.host).toBe('0.0.0.0');
      const p = portNamed(agent, portName);
      expect(p.containerPort).toBe(ep.port);
      expect(p.hostPort).toBe(ep.port);
    }
    expect(portNamed(agent, 'otlp-grpc').hostPort).toBe(4317);
    expect(portNamed(agent, 'otlp-http').hostPort).toBe(4318);
    expect(portNamed(agent, 'metrics').containerPort).toBe(parseEndpoint(cfg.telemetry.metrics.endpoint)!.port);
    expect(portNamed(agent, 'health').containerPort).toBe(parseEndpoint(cfg.telemetry.health.endpoint)!.port);
    expect(Number(ds.spec.template.metadata.annotations['prometheus.io/port'])).toBe(parseEndpoint(cfg.telemetry.metrics.endpoint)!.port);
  });

  it('keeps the ledger on the hostPath and the key in the memory volume', () => {
    const ledgerMount = mountOf(agent, 'ledger').mountPath as string;
    expect(cfg.ledger.dir.startsWith(`${ledgerMount}/`)).toBe(true);
    expect(volumeOf(dsPod, 'ledger').hostPath).toEqual({ path: '/var/lib/sealtrail', type: 'DirectoryOrCreate' });
    const keysMount = mountOf(agent, 'keys');
    expect(cfg.signing.key_file.startsWith(`${keysMount.mountPath}/`)).toBe(true);
    expect(keysMount.readOnly).toBe(true);
    expect(cfg.signing.generate_if_missing).toBe(false); // in a cluster, a missing key is an error, not a new identity
    expect(cfg.destinations.some((d) => d.type === 's3' && d.retention.mode === 'COMPLIANCE')).toBe(true);
  });
});

describe('DaemonSet', () => {
  it('takes NODE_NAME from the downward API (spec.nodeName)', () => {
    expect(agent.env.find((e: Obj) => e.name === 'NODE_NAME').valueFrom).toEqual({ fieldRef: { fieldPath: 'spec.nodeName' } });
  });

  it('mounts the signing-key Secret read-only with mode 0400, and only into the init container', () => {
    const v = volumeOf(dsPod, 'signing-key');
    expect(v.secret.secretName).toBe('sealtrail-signing-key');
    expect(v.secret.defaultMode).toBe(0o400);
    expect(mountOf(prepare, 'signing-key').readOnly).toBe(true);
    expect(agent.volumeMounts.some((x: Obj) => x.name === 'signing-key')).toBe(false);
    expect(volumeOf(dsPod, 'keys').emptyDir.medium).toBe('Memory');
    expect(mountOf(prepare, 'keys').mountPath).toBe(mountOf(agent, 'keys').mountPath);
  });

  // The init container's script, run for real (as root, like the init container) on stand-in
  // directories; then the agent's own key loader, as the agent's uid, accepts the copy — and
  // refuses what an fsGroup-based mount (0440) would have given it.
  it.runIf(process.getuid?.() === 0)('init container hands the agent an owner-only key copy that loadSigner accepts', async () => {
    const { writeKeyPair } = await import('../../src/keys/files.js');
    const t = await mkdtemp(join(tmpdir(), 'sealtrail-init-'));
    try {
      await chmod(t, 0o755);
      const dirs = { ledger: join(t, 'ledger'), secret: join(t, 'secret'), keys: join(t, 'keys') };
      for (const d of Object.values(dirs)) await mkdir(d, { mode: 0o755 });
      await chmod(dirs.keys, 0o777); // emptyDir default mode
      await writeKeyPair(join(t, 'gen'), 'signing', 'sealtrail.k8s.example/prod');
      await writeFile(join(dirs.secret, 'signing.key'), await readFile(join(t, 'gen/signing.key')));
      await writeFile(join(dirs.secret, 'previous.key'), await readFile(join(t, 'gen/signing.key')));
      await chmod(join(dirs.secret, 'signing.key'), 0o400); // as the Secret volume presents it (root, 0400)
      await chmod(join(dirs.secret, 'previous.key'), 0o400);
      const script = (prepare.command[2] as string)
        .replaceAll(mountOf(prepare, 'ledger').mountPath, dirs.ledger)
        .replaceAll(mountOf(prepare, 'signing-key').mountPath, dirs.secret)
        .replaceAll(mountOf(prepare, 'keys').mountPath, dirs.keys);
      expect(prepare.command.slice(0, 2)).toEqual(['/bin/sh', '-c']);
      await run('/bin/sh', ['-c', kubeExpand(script, resolveEnv(prepare, {}))]);
      const uid = agent.securityContext.runAsUser as number;
      const keyFile = cfg.signing.key_file.replace(mountOf(agent, 'keys').mountPath, dirs.keys);
      const { stat } = await import('node:fs/promises');
      for (const f of [keyFile, join(dirs.keys, 'previous.key')]) {
        const st = await stat(f);
        expect([st.uid, st.mode & 0o777]).toEqual([uid, 0o400]);
      }
      const ledgerSt = await stat(dirs.ledger);
      expect([ledgerSt.uid, ledgerSt.mode & 0o777]).toEqual([uid, 0o700]);
      // the agent's key loader, as the agent's user
      // compiled dist/ (test/global-setup.ts keeps it fresh): no TypeScript loader in the child
      const files = join(ROOT, 'dist/src/keys/files.js');
      const loader = `const { loadSigner } = await import(${JSON.stringify(files)}); try { const s = await loadSigner(process.argv[1]); console.log('loaded ' + s.name); } catch (e) { console.log(e.code + ': ' + e.message); }`;
      const load = async (path: string) =>
        run('/usr/bin/setpriv', [`--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', process.execPath, '--input-type=module', '-e', loader, path]).then(
          (r) => r.stdout.trim(),
          (e: { stdout: string; stderr: string }) => (e.stdout + e.stderr).trim(),
        );
      expect(await load(keyFile)).toBe('loaded sealtrail.k8s.example/prod');
      await chmod(keyFile, 0o440); // what fsGroup would produce
      expect(await load(keyFile)).toMatch(/KEY_PERMISSIONS/);
    } finally {
      await rm(t, { recursive: true, force: true });
    }
  });

  it('probes /healthz (liveness, startup) and /readyz (readiness) on the health port', () => {
    const health = portNamed(agent, 'health').containerPort;
    expect(health).toBe(13133);
    for (const [probe, path] of [
      ['livenessProbe', '/healthz'],
      ['startupProbe', '/healthz'],
      ['readinessProbe', '/readyz'],
    ] as const) {
      const p = agent[probe].httpGet;
      expect(p.path).toBe(path);
      expect(portNamed(agent, p.port).containerPort).toBe(health);
    }
    // a readiness check may take up to 2 s (health.ts default timeout): the probe must wait longer
    expect(agent.readinessProbe.timeoutSeconds).toBeGreaterThan(2);
  });

  it('sets requests and limits for every container', () => {
    for (const c of [...dsPod.initContainers, ...dsPod.containers]) {
      expect(Object.keys(c.resources.requests).sort(), c.name).toEqual(['cpu', 'memory']);
      expect(c.resources.limits.memory, c.name).toBeDefined();
    }
  });

  it('runs the agent non-root, without privilege escalation, read-only root fs, no capabilities, RuntimeDefault seccomp', () => {
    const sc = agent.securityContext;
    expect(sc.runAsNonRoot).toBe(true);
    expect(sc.runAsUser).toBe(Number(dockerUser[1]));
    expect(sc.runAsGroup).toBe(Number(dockerUser[2]));
    expect(sc.allowPrivilegeEscalation).toBe(false);
    expect(sc.readOnlyRootFilesystem).toBe(true);
    expect(sc.privileged).toBe(false);
    expect(sc.capabilities).toEqual({ drop: ['ALL'] });
    expect(sc.seccompProfile).toEqual({ type: 'RuntimeDefault' });
    expect(dsPod.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
    expect(dsPod.automountServiceAccountToken).toBe(false);
    expect(dsPod.hostNetwork).toBeUndefined();
    // the init container is root but may only chown/chmod, nothing else
    expect(prepare.securityContext).toMatchObject({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'], add: ['CHOWN', 'FOWNER'] },
    });
  });

  it('gives the agent longer than its shutdown grace to seal, and never runs two agents on one node', () => {
    expect(dsPod.terminationGracePeriodSeconds * 1000).toBeGreaterThanOrEqual(cfg.shutdown.grace_period + 15_000);
    expect(ds.spec.updateStrategy.rollingUpdate.maxSurge).toBe(0);
    expect(ds.spec.selector.matchLabels).toEqual(
      Object.fromEntries(Object.entries(ds.spec.template.metadata.labels).filter(([k]) => k in ds.spec.selector.matchLabels)),
    );
    expect(dsPod.serviceAccountName).toBe(find(manifests, 'ServiceAccount', 'sealtrail').metadata.name);
  });

  it('tells the operator how to create the Secret and ConfigMap it references but does not ship', async () => {
    const text = await readFile(join(DIR, '02-configmap.yaml'), 'utf8');
    expect(text).toContain('create secret generic sealtrail-signing-key --from-file=signing.key=');
    expect(text).toContain('create configmap sealtrail-verifier-keys --from-file=signing.pub=');
    expect(text).toContain('create secret generic sealtrail-s3');
    // and ships no key material of any kind
    for (const { doc } of manifests) expect(JSON.stringify(doc)).not.toMatch(/PRIVATE\+KEY|BEGIN .*PRIVATE/);
    expect(manifests.some((m) => m.doc.kind === 'Secret')).toBe(false);
  });
});

describe('example app Deployment', () => {
  const app = find(manifests, 'Deployment', 'example-app');
  const c = app.spec.template.spec.containers[0] as Obj;

  it('points its OTLP exporter at the agent on its node: http://$(HOST_IP):4318, HOST_IP from status.hostIP', () => {
    const names = c.env.map((e: Obj) => e.name) as string[];
    expect(c.env.find((e: Obj) => e.name === 'HOST_IP').valueFrom).toEqual({ fieldRef: { fieldPath: 'status.hostIP' } });
    expect(c.env.find((e: Obj) => e.name === 'OTEL_EXPORTER_OTLP_ENDPOINT').value).toBe('http://$(HOST_IP):4318');
    expect(names.indexOf('HOST_IP')).toBeLessThan(names.indexOf('OTEL_EXPORTER_OTLP_ENDPOINT'));
    // resolved as the kubelet does (TEST-NET address, never contacted)
    const env = resolveEnv(c, { 'status.hostIP': '192.0.2.10', 'metadata.name': 'example-app-1', 'metadata.namespace': 'default', 'spec.nodeName': 'node-a' });
    expect(env.get('OTEL_EXPORTER_OTLP_ENDPOINT')).toBe('http://192.0.2.10:4318');
    expect(env.get('OTEL_RESOURCE_ATTRIBUTES')).toBe('k8s.pod.name=example-app-1,k8s.namespace.name=default,k8s.node.name=node-a');
    // the port is the DaemonSet's OTLP/HTTP hostPort
    expect(new URL(env.get('OTEL_EXPORTER_OTLP_ENDPOINT')!).port).toBe(String(portNamed(agent, 'otlp-http').hostPort));
    expect(env.get('OTEL_EXPORTER_OTLP_PROTOCOL')).toBe('http/protobuf');
  });
});

describe('verify CronJob', () => {
  const cj = find(manifests, 'CronJob', 'sealtrail-verify');
  const job = cj.spec.jobTemplate.spec as Obj;
  const pod = job.template.spec as Obj;
  const v = container(pod, 'verify');
  const env = resolveEnv(v, { 'spec.nodeName': 'node-x' });
  const script = kubeExpand(v.command[2] as string, env);
  let tmp: string;

  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'sealtrail-cronjob-'));
  });
  afterAll(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  it('runs `sealtrail verify dest:NAME --config --key --origin` with paths that exist in the pod', () => {
    expect(v.command.slice(0, 2)).toEqual(['/bin/sh', '-c']);
    const m = /sealtrail verify dest:(\S+) --config (\S+)\s+(?:\\\s+)?--key (\S+) --origin "\$origin"/.exec(script);
    expect(m, script).not.toBeNull();
    expect(cfg.destinations.map((d) => d.name)).toContain(m![1]);
    expect(m![2]).toBe(`${mountOf(v, 'config').mountPath}/agent.yaml`);
    expect(m![3]!.startsWith(`${mountOf(v, 'verifier-keys').mountPath}/`)).toBe(true);
    expect(volumeOf(pod, 'verifier-keys').configMap.name).toBe('sealtrail-verifier-keys');
    expect(script).toContain(`< ${mountOf(v, 'origins').mountPath}/origins`);
    expect(volumeOf(pod, 'origins').configMap.name).toBe('sealtrail-verify');
    // the config it loads needs NODE_NAME, and the job provides it
    expect(env.get('NODE_NAME')).toBe('node-x');
  });

  it('fails the Job at once on findings (exit 1), never overlaps, never restarts in place', () => {
    expect(job.podFailurePolicy.rules[0]).toEqual({ action: 'FailJob', onExitCodes: { containerName: 'verify', operator: 'In', values: [1] } });
    expect(cj.spec.concurrencyPolicy).toBe('Forbid');
    expect(pod.restartPolicy).toBe('Never');
    expect(v.securityContext).toMatchObject({ runAsNonRoot: true, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });
  });

  it('lists origins that follow the agent origin template', () => {
    const template = parse(agentCm.data['agent.yaml']).ledger.origin as string;
    const [before, after] = template.split('${env:NODE_NAME}');
    const origins = (find(manifests, 'ConfigMap', 'sealtrail-verify').data.origins as string).split('\n').filter(Boolean);
    expect(origins.length).toBeGreaterThan(0);
    for (const o of origins) expect(o.startsWith(before!) && o.endsWith(after!), o).toBe(true);
  });

  /** Run the script (as the kubelet passes it) with a stand-in `sealtrail` whose exit code depends on the origin. */
  async function runScript(origins: string[]): Promise<{ code: number; calls: string[]; stderr: string; stdout: string }> {
    const dir = await mkdtemp(join(tmp, 'run-'));
    await mkdir(join(dir, 'bin'));
    await mkdir(join(dir, 'verify'));
    await writeFile(join(dir, 'verify', 'origins'), origins.join('\n') + '\n');
    const fake = [
      '#!/bin/sh',
      `echo "$*" >> "${dir}/calls"`,
      'while [ $# -gt 0 ]; do [ "$1" = --origin ] && o="$2"; shift; done',
      'case "$o" in *-findings) exit 1 ;; *-ioerror) exit 2 ;; *) exit 0 ;; esac',
    ].join('\n');
    await writeFile(join(dir, 'bin', 'sealtrail'), fake);
    await chmod(join(dir, 'bin', 'sealtrail'), 0o755);
    const local = script.replaceAll(`${mountOf(v, 'origins').mountPath}/origins`, join(dir, 'verify', 'origins'));
    const r = await run('/bin/sh', ['-c', local], { env: { PATH: `${join(dir, 'bin')}:/usr/bin:/bin` } }).then(
      (x) => ({ code: 0, ...x }),
      (e: { code: number; stdout: string; stderr: string }) => e,
    );
    const calls = (await readFile(join(dir, 'calls'), 'utf8').catch(() => '')).split('\n').filter(Boolean);
    return { code: r.code, calls, stderr: r.stderr, stdout: r.stdout };
  }

  it('the script is valid sh', async () => {
    await expect(run('/bin/sh', ['-n', '-c', script])).resolves.toBeDefined();
  });

  it('exit 0 when every log is intact; checks every listed origin', async () => {
    const r = await runScript(['o/node-a', '# a comment', '', 'o/node b with space']);
    expect(r.code).toBe(0);
    expect(r.calls).toHaveLength(2);
    expect(r.calls[0]).toBe('verify dest:s3-primary --config /etc/sealtrail/agent.yaml --key /etc/sealtrail/verifier/signing.pub --origin o/node-a --expect-fresh 15m');
    expect(r.stdout).toMatch(/all 2 logs intact/);
  });

  it('exit 1 when any log has findings — even if another could not be verified — after checking all', async () => {
    const r = await runScript(['o/a-ioerror', 'o/b-findings', 'o/c']);
    expect(r.code).toBe(1);
    expect(r.calls).toHaveLength(3);
    expect(r.stderr).toMatch(/o\/b-findings: INTEGRITY FINDINGS/);
    expect(r.stderr).toMatch(/o\/a-ioerror: could not verify \(exit 2\)/);
  });

  it('exit 2 when a log could not be verified, and when no origin is listed', async () => {
    expect((await runScript(['o/a', 'o/b-ioerror'])).code).toBe(2);
    const none = await runScript(['# nothing yet']);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/no origins listed/);
  });
});

describe('kubelet $(VAR) expansion helper (used above)', () => {
  it('follows the documented rules', () => {
    const vars = new Map([['A', 'x']]);
    expect(kubeExpand('$(A)-$(B)-$$(A)-$((n + 1))-$x-$', vars)).toBe('x-$(B)-$(A)-$((n + 1))-$x-$');
  });
});
