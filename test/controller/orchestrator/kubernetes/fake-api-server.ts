import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';

/**
 * An in-process stand-in for the few Kubernetes API endpoints the orchestrator
 * and reconciler use, because no cluster (nor kube-apiserver/etcd) can run
 * here. It is a real HTTP server that @kubernetes/client-node talks to through
 * a KubeConfig, with the API server's semantics that matter to the code under
 * test: resourceVersion on every write and 409 Conflict on a stale one, 409
 * AlreadyExists, 404, finalizers and deletionTimestamp, the status
 * subresource, metadata.generation, and watch streams (ADDED, MODIFIED,
 * DELETED) that the test can end to exercise restarts.
 */

export interface RecordedCall {
  readonly group: string;
  readonly resource: string;
  readonly subresource: string;
  readonly verb: string;
  readonly namespace: string;
}

type Obj = { apiVersion?: string; kind?: string; metadata: Record<string, unknown> & { name: string }; spec?: Record<string, unknown>; status?: unknown; data?: Record<string, string>; stringData?: Record<string, string> };

interface Route {
  group: string;
  version: string;
  resource: string;
  namespace: string;
  name: string;
  subresource: string;
}

const KINDS: Record<string, string> = { nodes: 'Node', services: 'Service', secrets: 'Secret', deployments: 'Deployment', triremevolumes: 'TriremeVolume' };

function parsePath(path: string): Route | undefined {
  const m =
    /^\/api\/(v1)\/(?:namespaces\/([^/]+)\/)?([a-z]+)(?:\/([^/]+))?(?:\/([a-z]+))?$/.exec(path) ??
    /^\/apis\/([^/]+\/[^/]+)\/(?:namespaces\/([^/]+)\/)?([a-z]+)(?:\/([^/]+))?(?:\/([a-z]+))?$/.exec(path);
  if (!m) return undefined;
  const [group, version] = m[1].includes('/') ? m[1].split('/') : ['', m[1]];
  return { group, version, namespace: m[2] ?? '', resource: m[3], name: m[4] ?? '', subresource: m[5] ?? '' };
}

export class FakeApiServer {
  private readonly server: Server;
  private readonly objects = new Map<string, Obj>();
  private readonly watchers = new Set<{ route: Route; res: ServerResponse }>();
  private readonly faults: Array<{ method: string; pattern: RegExp; status: number; reason: string }> = [];
  private version = 100;
  private nextIp = 10;
  readonly calls: RecordedCall[] = [];

  constructor() {
    this.server = createServer((req, res) => void this.handle(req, res));
  }

  async listen(): Promise<number> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return (this.server.address() as AddressInfo).port;
  }

  kubeConfig(): KubeConfig {
    const kc = new KubeConfig();
    const port = (this.server.address() as AddressInfo).port;
    kc.loadFromOptions({
      clusters: [{ name: 'fake', server: `http://127.0.0.1:${port}`, skipTLSVerify: true }],
      users: [{ name: 'csi', token: 'fake-token' }],
      contexts: [{ name: 'fake', cluster: 'fake', user: 'csi' }],
      currentContext: 'fake',
    });
    return kc;
  }

  async close(): Promise<void> {
    this.endWatches();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** The next `count` requests matching method and path answer `status` (409 conflicts, 500s). */
  failNext(method: string, pattern: RegExp, status: number, count = 1): void {
    for (let i = 0; i < count; i++) this.faults.push({ method, pattern, status, reason: status === 409 ? 'Conflict' : 'InternalError' });
  }

  /** Ends every open watch, as an API server does on timeout or restart. */
  endWatches(): void {
    for (const w of this.watchers) w.res.end();
    this.watchers.clear();
  }

  /** Sends a watch ERROR event (410 Gone, as after etcd compaction) to every open watch, then ends them. */
  expireWatches(): void {
    for (const w of this.watchers) {
      w.res.write(`${JSON.stringify({ type: 'ERROR', object: { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'Expired', code: 410, message: 'too old resource version' } })}\n`);
    }
    this.endWatches();
  }

  get watchCount(): number {
    return this.watchers.size;
  }

  private key(r: { group: string; resource: string; namespace: string; name: string }): string {
    return `${r.group}/${r.resource}/${r.namespace}/${r.name}`;
  }

  /** Direct access for test setup and assertions (as kubectl would). */
  put(group: string, resource: string, namespace: string, obj: Obj): Obj {
    const stored = this.stamp(structuredClone(obj), undefined);
    this.objects.set(this.key({ group, resource, namespace, name: obj.metadata.name }), stored);
    this.notify({ group, version: '', resource, namespace, name: obj.metadata.name, subresource: '' }, 'ADDED', stored);
    return stored;
  }

  get(group: string, resource: string, namespace: string, name: string): Obj | undefined {
    const o = this.objects.get(this.key({ group, resource, namespace, name }));
    return o && structuredClone(o);
  }

  list(group: string, resource: string, namespace: string): Obj[] {
    const prefix = `${group}/${resource}/${namespace}/`;
    return [...this.objects.entries()].filter(([k]) => k.startsWith(prefix)).map(([, v]) => structuredClone(v));
  }

  remove(group: string, resource: string, namespace: string, name: string): void {
    const k = this.key({ group, resource, namespace, name });
    const o = this.objects.get(k);
    if (!o) return;
    this.objects.delete(k);
    this.notify({ group, version: '', resource, namespace, name, subresource: '' }, 'DELETED', o);
  }

  private stamp(obj: Obj, previous: Obj | undefined): Obj {
    obj.metadata.resourceVersion = String(++this.version);
    obj.metadata.uid ??= previous?.metadata.uid ?? `uid-${this.version}`;
    obj.metadata.creationTimestamp ??= previous?.metadata.creationTimestamp ?? new Date().toISOString();
    const specChanged = JSON.stringify(previous?.spec) !== JSON.stringify(obj.spec);
    obj.metadata.generation = ((previous?.metadata.generation as number | undefined) ?? 0) + (previous === undefined || specChanged ? 1 : 0);
    return obj;
  }

  private notify(route: Route, type: string, obj: Obj): void {
    for (const w of this.watchers) {
      if (w.route.group === route.group && w.route.resource === route.resource && (w.route.namespace === '' || w.route.namespace === route.namespace)) {
        w.res.write(`${JSON.stringify({ type, object: obj })}\n`);
      }
    }
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fake');
    const route = parsePath(url.pathname);
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const send = (status: number, body: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    const fail = (status: number, reason: string, message: string): void => send(status, { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason, message, code: status });
    if (!route || !KINDS[route.resource]) return fail(404, 'NotFound', `no route for ${url.pathname}`);
    const watch = url.searchParams.get('watch') === 'true';
    const method = req.method ?? 'GET';
    const verb = watch ? 'watch' : method === 'GET' ? (route.name ? 'get' : 'list') : method === 'POST' ? 'create' : method === 'PUT' ? 'update' : method === 'PATCH' ? 'patch' : method === 'DELETE' ? 'delete' : method;
    this.calls.push({ group: route.group, resource: route.resource, subresource: route.subresource, verb, namespace: route.namespace });
    const fault = this.faults.findIndex((f) => f.method === method && f.pattern.test(url.pathname));
    if (fault >= 0) {
      const [f] = this.faults.splice(fault, 1);
      return fail(f.status, f.reason, 'injected fault');
    }
    const body = chunks.length ? (JSON.parse(Buffer.concat(chunks).toString()) as Obj) : undefined;
    if (watch) return this.openWatch(route, res);
    const key = this.key(route);
    const current = this.objects.get(key);
    switch (verb) {
      case 'list': {
        const items = this.list(route.group, route.resource, route.namespace);
        return send(200, { kind: `${KINDS[route.resource]}List`, apiVersion: route.group ? `${route.group}/${route.version}` : 'v1', metadata: { resourceVersion: String(this.version) }, items });
      }
      case 'get':
        return current ? send(200, current) : fail(404, 'NotFound', `${route.resource} "${route.name}" not found`);
      case 'create': {
        if (!body?.metadata?.name) return fail(422, 'Invalid', 'metadata.name is required');
        const k = this.key({ ...route, name: body.metadata.name });
        if (this.objects.has(k)) return fail(409, 'AlreadyExists', `${route.resource} "${body.metadata.name}" already exists`);
        const obj = this.prepare(route, body, undefined);
        this.objects.set(k, obj);
        this.notify(route, 'ADDED', obj);
        return send(201, obj);
      }
      case 'update': {
        if (!current || !body) return fail(404, 'NotFound', `${route.resource} "${route.name}" not found`);
        if (body.metadata.resourceVersion !== undefined && body.metadata.resourceVersion !== current.metadata.resourceVersion) {
          return fail(409, 'Conflict', `the object has been modified; please apply your changes to the latest version and try again`);
        }
        // With a status subresource, the main resource ignores status and /status ignores everything else.
        const merged: Obj =
          route.subresource === 'status'
            ? { ...structuredClone(current), status: body.status }
            : route.resource === 'triremevolumes'
              ? { ...body, status: current.status, metadata: { ...body.metadata, deletionTimestamp: current.metadata.deletionTimestamp } }
              : body;
        const obj = this.prepare(route, merged, current);
        if (obj.metadata.deletionTimestamp && !((obj.metadata.finalizers as string[] | undefined) ?? []).length) {
          this.objects.delete(key);
          this.notify(route, 'DELETED', obj);
          return send(200, obj);
        }
        this.objects.set(key, obj);
        this.notify(route, 'MODIFIED', obj);
        return send(200, obj);
      }
      case 'delete': {
        if (!current) return fail(404, 'NotFound', `${route.resource} "${route.name}" not found`);
        if (((current.metadata.finalizers as string[] | undefined) ?? []).length) {
          if (!current.metadata.deletionTimestamp) {
            current.metadata.deletionTimestamp = new Date().toISOString();
            this.stamp(current, structuredClone(current));
            this.notify(route, 'MODIFIED', current);
          }
          return send(200, current);
        }
        this.objects.delete(key);
        this.notify(route, 'DELETED', current);
        return send(200, { kind: 'Status', apiVersion: 'v1', status: 'Success', code: 200 });
      }
      default:
        return fail(405, 'MethodNotAllowed', `${method} is not served by this fake`);
    }
  }

  /** What the API server adds on write: identity, versions, a ClusterIP, Secret stringData folded into data. */
  private prepare(route: Route, body: Obj, previous: Obj | undefined): Obj {
    const obj = structuredClone(body);
    obj.metadata.namespace = route.namespace || undefined;
    if (route.resource === 'services') {
      const spec = (obj.spec ??= {});
      spec.clusterIP = (previous?.spec?.clusterIP as string | undefined) ?? `10.152.183.${this.nextIp++}`;
    }
    if (route.resource === 'secrets' && obj.stringData) {
      obj.data = { ...obj.data, ...Object.fromEntries(Object.entries(obj.stringData).map(([k, v]) => [k, Buffer.from(v).toString('base64')])) };
      delete obj.stringData;
    }
    return this.stamp(obj, previous);
  }

  private openWatch(route: Route, res: ServerResponse): void {
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    res.flushHeaders();
    const entry = { route, res };
    this.watchers.add(entry);
    res.on('close', () => this.watchers.delete(entry));
  }
}

/** A node as the kubelet registers it. */
export function node(name: string, ready = true, unschedulable = false): Obj {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name, labels: { 'kubernetes.io/hostname': name, 'trireme.io/storage': 'true' } },
    spec: unschedulable ? { unschedulable: true } : {},
    status: { conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }] },
  };
}
