import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import type { Logger } from '../common/logger';
import type { Registry } from '../common/metrics';
import { InvalidArgumentError } from '../common/errors';
import { LoginStatus } from './pdu/opcodes';
import type { LoginEnvironment, LoginOutcome } from './login/login-state';
import { DEFAULT_OFFERS, type TargetOffers } from './login/params';
import { createScsiTarget } from './scsi';
import type { Nexus } from './scsi/types';
import type { ChapCredentials, TargetConfig } from './target-config';
import { DEFAULT_CONNECTION_OPTIONS, IscsiConnection, type ConnectionHost, type ConnectionOptions } from './session/connection';
import { createTransportMetrics, type TransportMetrics } from './session/metrics';
import { IscsiSession } from './session/session';
import type { SessionHooks, SessionView, Task, TargetEntry } from './session/session-types';

export interface IscsiServerOptions {
  logger: Logger;
  registry?: Registry;
  /** Target portal group tag of this portal (RFC 7143 §13.9). */
  portalGroupTag?: number;
  offers?: Partial<TargetOffers>;
  connection?: Partial<ConnectionOptions>;
  /** Open TCP connections allowed at once; further ones are refused by the listener. */
  maxConnections?: number;
  /** CHAP that discovery sessions must pass (RFC 7143 §12.1.3); without it discovery needs no authentication. */
  discoveryChap?: { chap: ChapCredentials; mutualChap?: ChapCredentials };
}

const DEFAULT_MAX_CONNECTIONS = 1024;
/** Seconds an initiator gets to log out after the shutdown Async Message. */
const SHUTDOWN_LOGOUT_SECONDS = 2;

const IQN_PATTERN = /^(iqn\.\d{4}-\d{2}\.[^\s]+|eui\.[0-9A-Fa-f]{16}|naa\.[0-9A-Fa-f]{16,32})$/;

/**
 * The iSCSI target server: one listening portal serving any number of targets
 * and sessions. It owns the session table (TSIH allocation, reinstatement by
 * initiator name + ISID, RFC 7143 §4.3.3) and SendTargets discovery.
 */
export class IscsiServer implements ConnectionHost, SessionHooks {
  readonly loginEnvironment: LoginEnvironment;
  private readonly targets = new Map<string, TargetEntry>();
  private readonly sessions = new Map<number, IscsiSession>();
  private readonly connections = new Set<IscsiConnection>();
  private readonly metrics: TransportMetrics;
  private readonly logger: Logger;
  private readonly connectionOptions: ConnectionOptions;
  private readonly portalGroupTag: number;
  private server?: Server;
  private nextTsih = 1;

  constructor(private readonly options: IscsiServerOptions) {
    this.logger = options.logger.child({ component: 'iscsi' });
    this.metrics = createTransportMetrics(options.registry);
    this.connectionOptions = { ...DEFAULT_CONNECTION_OPTIONS, ...options.connection };
    this.portalGroupTag = options.portalGroupTag ?? 1;
    const offers = { ...DEFAULT_OFFERS, ...options.offers };
    this.loginEnvironment = { findTarget: (name) => this.targets.get(name)?.config, portalGroupTag: this.portalGroupTag, offers, discoveryChap: options.discoveryChap };
  }

  /** Logged-in normal (non-discovery) sessions: a controller refuses a snapshot revert while any exist. */
  activeSessions(): number {
    let count = 0;
    for (const session of this.sessions.values()) if (session.type === 'normal') count++;
    return count;
  }

  addTarget(config: TargetConfig): void {
    if (!IQN_PATTERN.test(config.iqn)) throw new InvalidArgumentError(`invalid target name "${config.iqn}"`);
    if (this.targets.has(config.iqn)) throw new InvalidArgumentError(`target ${config.iqn} exists already`);
    if (config.luns.length === 0) throw new InvalidArgumentError(`target ${config.iqn} has no LUN`);
    if (config.mutualChap && !config.chap) throw new InvalidArgumentError('mutual CHAP needs one-way CHAP');
    const scsi = createScsiTarget({ iqn: config.iqn, luns: config.luns, logger: this.logger.child({ target: config.iqn }), registry: this.options.registry });
    this.targets.set(config.iqn, { config, scsi });
  }

  async listen(host: string, port: number): Promise<{ host: string; port: number }> {
    const server = createServer((socket) => this.accept(socket));
    // Each connection holds buffers and timers: a flood of them is bounded here.
    server.maxConnections = this.options.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (err) => this.logger.error({ err }, 'listener error'));
    const address = server.address() as AddressInfo;
    return { host: address.address, port: address.port };
  }

  private accept(socket: Socket): void {
    const logger = this.logger.child({ initiator: `${socket.remoteAddress}:${socket.remotePort}` });
    const connection = new IscsiConnection(socket, this, logger, this.metrics, this.connectionOptions);
    this.connections.add(connection);
    this.metrics.connections.inc();
  }

  connectionClosed(connection: IscsiConnection): void {
    if (this.connections.delete(connection)) this.metrics.connections.dec();
  }

  openSession(outcome: LoginOutcome, connection: IscsiConnection): IscsiSession | LoginStatus {
    const target = outcome.target ? this.targets.get(outcome.target.iqn) : undefined;
    if (outcome.tsih !== 0) {
      // Adding a connection to a session: we negotiate MaxConnections=1 (§13.2).
      return this.sessions.has(outcome.tsih) ? LoginStatus.TooManyConnections : LoginStatus.SessionDoesNotExist;
    }
    if (target) {
      // Session reinstatement (§6.3.5): same initiator, ISID and target with TSIH 0 replaces the old session.
      for (const old of this.sessions.values()) {
        if (old.target === target && old.nexus.initiatorName === outcome.initiatorName && old.nexus.isid === outcome.isid) {
          this.logger.info({ tsih: old.tsih }, 'session reinstated');
          old.channel.close('session reinstated');
          old.end('session reinstated');
        }
      }
    }
    const tsih = this.allocateTsih();
    const nexus: Nexus = {
      id: `${outcome.initiatorName},i,0x${outcome.isid}`,
      initiatorName: outcome.initiatorName,
      isid: outcome.isid,
      targetName: target?.config.iqn ?? '',
      portalGroupTag: this.portalGroupTag,
    };
    const logger = connection.logger.child({ tsih, initiatorName: outcome.initiatorName, target: target?.config.iqn });
    const session = new IscsiSession(tsih, nexus, outcome.params, outcome.initialCmdSN, target, connection, this, logger, this.metrics);
    this.sessions.set(tsih, session);
    this.metrics.sessions.inc({ type: session.type });
    logger.info({ discovery: outcome.discovery, params: outcome.params }, 'session opened');
    return session;
  }

  private allocateTsih(): number {
    for (;;) {
      const tsih = this.nextTsih;
      this.nextTsih = this.nextTsih >= 0xffff ? 1 : this.nextTsih + 1;
      if (!this.sessions.has(tsih)) return tsih;
    }
  }

  ended(session: SessionView): void {
    if (this.sessions.get(session.tsih) === session) {
      this.sessions.delete(session.tsih);
      this.metrics.sessions.dec({ type: session.type });
    }
  }

  async abortAcrossTarget(iqn: string, match: (task: Task) => boolean): Promise<void> {
    const work = [...this.sessions.values()].filter((s) => s.target?.config.iqn === iqn).map((s) => s.abortWhere(match));
    await Promise.all(work);
  }

  /** RFC 7143 §13.3, Appendix C: All lists every target (discovery sessions); a name, or empty in a normal session, lists one. */
  sendTargets(value: string, session: SessionView, localAddress: string): Array<[string, string]> {
    let names: string[];
    if (value === 'All') names = session.type === 'discovery' ? [...this.targets.keys()] : session.target ? [session.target.config.iqn] : [];
    else if (value === '') names = session.target ? [session.target.config.iqn] : [];
    else names = this.targets.has(value) ? [value] : [];
    return names.flatMap((name): Array<[string, string]> => [
      ['TargetName', name],
      ['TargetAddress', `${localAddress},${this.portalGroupTag}`],
    ]);
  }

  /** Stops listening, asks initiators to log out (Async Message, §11.9.1), then closes what remains. */
  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    const closed = server ? new Promise<void>((resolve) => server.close(() => resolve())) : Promise.resolve();
    if (this.sessions.size > 0) {
      for (const session of this.sessions.values()) (session.channel as IscsiConnection).requestLogout(SHUTDOWN_LOGOUT_SECONDS);
      const deadline = Date.now() + SHUTDOWN_LOGOUT_SECONDS * 1000;
      while (this.sessions.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    }
    for (const connection of [...this.connections]) connection.close('target shutting down');
    await closed;
    for (const target of this.targets.values()) await target.scsi.close();
  }
}
