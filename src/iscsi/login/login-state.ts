import type { ChapCredentials, TargetConfig } from '../target-config';
import { LoginStage, LoginStatus } from '../pdu/opcodes';
import type { LoginRequestPdu } from '../pdu/parse';
import { TextAccumulator, parseTextPairs, type TextPairs } from '../pdu/text';
import { CHAP_MD5, chapResponse, newChallenge, parseBinary, toHex, verifyResponse, type ChapChallenge } from './chap';
import { finishNegotiation, negotiateKey } from './keys';
import { defaultParams, type SessionParams, type TargetOffers } from './params';

/** What the login needs from the server: target lookup and the portal's identity. */
export interface LoginEnvironment {
  findTarget(name: string): TargetConfig | undefined;
  readonly portalGroupTag: number;
  readonly offers: TargetOffers;
  /** CHAP required of discovery sessions (and, optionally, the target's mutual answer to them). */
  readonly discoveryChap?: { readonly chap: ChapCredentials; readonly mutualChap?: ChapCredentials };
}

/** One login response to send (RFC 7143 §11.13), before sequence numbers are filled in. */
export interface LoginReply {
  readonly status: LoginStatus;
  readonly transit: boolean;
  readonly csg: number;
  readonly nsg: number;
  readonly pairs: TextPairs;
  /** The login reached full feature phase with this response. */
  readonly complete: boolean;
}

export interface LoginOutcome {
  readonly initiatorName: string;
  readonly initiatorAlias?: string;
  readonly isid: string;
  readonly tsih: number;
  readonly cid: number;
  readonly initialCmdSN: number;
  readonly discovery: boolean;
  readonly target?: TargetConfig;
  readonly params: SessionParams;
}

type AuthState = 'start' | 'none' | 'chap-wait-algorithm' | 'chap-wait-response' | 'done';

/** Keys that are declarations or security keys rather than operational negotiations. */
const NAME_KEYS = new Set(['InitiatorName', 'TargetName', 'SessionType', 'InitiatorAlias', 'TargetAlias', 'TargetPortalGroupTag', 'TargetAddress']);

const fail = (status: LoginStatus, csg: number): LoginReply => ({ status, transit: false, csg, nsg: 0, pairs: [], complete: false });

/**
 * The login phase of one connection as a pure state machine (RFC 7143 §6.3,
 * §11.12): security negotiation (None or CHAP, §12.1.3), operational
 * negotiation, transit to full feature phase. It does no I/O; the connection
 * sends each reply and applies digests and limits once `complete`.
 */
export class LoginState {
  readonly params: SessionParams = defaultParams();
  private first?: LoginRequestPdu;
  private initiatorName?: string;
  private initiatorAlias?: string;
  private discovery = false;
  private target?: TargetConfig;
  private auth: AuthState = 'start';
  private challenge?: ChapChallenge;
  private declared = false;
  private readonly text = new TextAccumulator(65536);

  constructor(private readonly env: LoginEnvironment) {}

  /** The result once the last reply had `complete`. */
  outcome(tsih: number): LoginOutcome {
    const first = this.first as LoginRequestPdu;
    return {
      initiatorName: this.initiatorName as string,
      initiatorAlias: this.initiatorAlias,
      isid: first.isid,
      tsih,
      cid: first.cid,
      initialCmdSN: first.cmdSN,
      discovery: this.discovery,
      target: this.target,
      params: this.params,
    };
  }

  handle(pdu: LoginRequestPdu): LoginReply {
    const csg = pdu.csg;
    if (!this.first) {
      if (pdu.versionMin > 0) return fail(LoginStatus.UnsupportedVersion, csg);
      this.first = pdu;
    } else if (pdu.isid !== this.first.isid || pdu.tsih !== this.first.tsih || pdu.cid !== this.first.cid) {
      return fail(LoginStatus.InvalidDuringLogin, csg);
    }
    if (csg === 2 || csg === LoginStage.FullFeature) return fail(LoginStatus.InvalidDuringLogin, csg);
    if (pdu.transit && (pdu.nsg <= csg || pdu.nsg === 2)) return fail(LoginStatus.InvalidDuringLogin, csg);
    try {
      this.text.add(pdu.data);
    } catch {
      return fail(LoginStatus.OutOfResources, csg);
    }
    // C bit: more text follows; answer with an empty response in the same stage (§11.12.2).
    if (pdu.continue) return { status: LoginStatus.Success, transit: false, csg, nsg: 0, pairs: [], complete: false };
    let pairs: TextPairs;
    try {
      pairs = parseTextPairs(this.text.take());
    } catch {
      return fail(LoginStatus.InitiatorError, csg);
    }
    return this.negotiate(pdu, pairs);
  }

  private negotiate(pdu: LoginRequestPdu, pairs: TextPairs): LoginReply {
    const csg = pdu.csg;
    const answers: TextPairs = [];
    const seen = new Set<string>();
    for (const [key] of pairs) {
      if (seen.has(key)) return fail(LoginStatus.InitiatorError, csg);
      seen.add(key);
    }
    const values = new Map(pairs);
    const nameStatus = this.applyNames(values, answers);
    if (nameStatus !== LoginStatus.Success) return fail(nameStatus, csg);

    const chapRequired = this.credentials().chap !== undefined;
    if (csg === LoginStage.Security) {
      const status = this.security(values, answers, chapRequired);
      if (status !== LoginStatus.Success) return fail(status, csg);
    } else if (this.auth !== 'done') {
      // Skipping security negotiation is only allowed when no authentication is required (§6.3).
      if (chapRequired) return fail(LoginStatus.AuthenticationFailure, csg);
      this.auth = 'done';
    }

    for (const [key, value] of pairs) {
      if (NAME_KEYS.has(key) || key === 'AuthMethod' || key.startsWith('CHAP_')) continue;
      const answer = negotiateKey(key, value, { params: this.params, offers: this.env.offers, discovery: this.discovery });
      if (answer !== undefined) answers.push([key, answer]);
    }

    let transit = pdu.transit;
    if (transit && csg === LoginStage.Security && this.auth !== 'done') {
      if (this.auth === 'chap-wait-response' || this.auth === 'chap-wait-algorithm') transit = false;
      else return fail(LoginStatus.AuthenticationFailure, csg);
    }
    if (!this.declared && (csg === LoginStage.Operational || (transit && pdu.nsg === LoginStage.FullFeature))) {
      this.declared = true;
      answers.push(['MaxRecvDataSegmentLength', String(this.env.offers.maxRecvDataSegmentLength)]);
      this.params.targetMaxRecvDataSegmentLength = this.env.offers.maxRecvDataSegmentLength;
    }
    const complete = transit && pdu.nsg === LoginStage.FullFeature;
    if (complete) finishNegotiation(this.params);
    return { status: LoginStatus.Success, transit, csg, nsg: transit ? pdu.nsg : 0, pairs: answers, complete };
  }

  /** InitiatorName, SessionType and TargetName arrive in the first request (§13.4-13.6, §6.3). */
  private applyNames(values: Map<string, string>, answers: TextPairs): LoginStatus {
    if (this.initiatorName === undefined) {
      const initiatorName = values.get('InitiatorName');
      if (!initiatorName) return LoginStatus.MissingParameter;
      this.initiatorName = initiatorName;
      this.initiatorAlias = values.get('InitiatorAlias');
      const sessionType = values.get('SessionType') ?? 'Normal';
      if (sessionType !== 'Normal' && sessionType !== 'Discovery') return LoginStatus.SessionTypeNotSupported;
      this.discovery = sessionType === 'Discovery';
      if (!this.discovery) {
        const targetName = values.get('TargetName');
        if (!targetName) return LoginStatus.MissingParameter;
        this.target = this.env.findTarget(targetName);
        if (!this.target) return LoginStatus.NotFound;
        // The first response of a normal session carries the portal group tag (§13.9).
        answers.push(['TargetPortalGroupTag', String(this.env.portalGroupTag)]);
        if (this.target.alias) answers.push(['TargetAlias', this.target.alias]);
      }
    } else if (values.has('InitiatorName') && values.get('InitiatorName') !== this.initiatorName) {
      return LoginStatus.InitiatorError;
    }
    return LoginStatus.Success;
  }

  /** Whose secrets apply: the target's for a normal session, the portal's discovery ones otherwise. */
  private credentials(): { chap?: ChapCredentials; mutualChap?: ChapCredentials } {
    if (this.discovery) return this.env.discoveryChap ?? {};
    return { chap: this.target?.chap, mutualChap: this.target?.mutualChap };
  }

  private security(values: Map<string, string>, answers: TextPairs, chapRequired: boolean): LoginStatus {
    const authMethod = values.get('AuthMethod');
    if (this.auth === 'start') {
      if (authMethod === undefined) {
        if (chapRequired) return LoginStatus.AuthenticationFailure;
        this.auth = 'done';
        return LoginStatus.Success;
      }
      const offered = authMethod.split(',');
      if (chapRequired) {
        if (!offered.includes('CHAP')) return LoginStatus.AuthenticationFailure;
        answers.push(['AuthMethod', 'CHAP']);
        this.auth = 'chap-wait-algorithm';
        return LoginStatus.Success;
      }
      if (!offered.includes('None')) return LoginStatus.AuthenticationFailure;
      answers.push(['AuthMethod', 'None']);
      this.auth = 'done';
      return LoginStatus.Success;
    }
    if (this.auth === 'chap-wait-algorithm') {
      const algorithms = values.get('CHAP_A');
      if (algorithms === undefined) return LoginStatus.Success;
      if (!algorithms.split(',').includes(CHAP_MD5)) return LoginStatus.AuthenticationFailure;
      this.challenge = newChallenge();
      answers.push(['CHAP_A', CHAP_MD5], ['CHAP_I', String(this.challenge.id)], ['CHAP_C', toHex(this.challenge.challenge)]);
      this.auth = 'chap-wait-response';
      return LoginStatus.Success;
    }
    if (this.auth === 'chap-wait-response') return this.verifyChap(values, answers);
    return LoginStatus.Success;
  }

  /** Checks CHAP_N/CHAP_R, and answers a mutual challenge (CHAP_I/CHAP_C) when configured (§12.1.3). */
  private verifyChap(values: Map<string, string>, answers: TextPairs): LoginStatus {
    const { chap, mutualChap } = this.credentials();
    const challenge = this.challenge;
    const name = values.get('CHAP_N');
    const response = parseBinary(values.get('CHAP_R') ?? '');
    if (!chap || !challenge || name === undefined || !response) return LoginStatus.AuthenticationFailure;
    if (name !== chap.user || !verifyResponse(chapResponse(challenge.id, chap.secret, challenge.challenge), response)) {
      return LoginStatus.AuthenticationFailure;
    }
    const theirId = values.get('CHAP_I');
    const theirChallenge = values.get('CHAP_C');
    if (theirId !== undefined || theirChallenge !== undefined) {
      const mutual = mutualChap;
      const id = Number(theirId);
      const binary = parseBinary(theirChallenge ?? '');
      if (!mutual || !binary || !/^[0-9]{1,3}$/.test(theirId ?? '') || id > 255) return LoginStatus.AuthenticationFailure;
      // A reflected challenge would let an attacker use us as an oracle for our own secret.
      if (binary.equals(challenge.challenge)) return LoginStatus.AuthenticationFailure;
      answers.push(['CHAP_N', mutual.user], ['CHAP_R', toHex(chapResponse(id, mutual.secret, binary))]);
    }
    this.auth = 'done';
    return LoginStatus.Success;
  }
}
