import assert from 'node:assert/strict';
import { test } from 'node:test';
import { chapResponse, parseBinary } from '../../../src/iscsi/login/chap';
import { KEY_TABLE, negotiateKey } from '../../../src/iscsi/login/keys';
import { LoginState, type LoginEnvironment } from '../../../src/iscsi/login/login-state';
import { DEFAULT_OFFERS, defaultParams } from '../../../src/iscsi/login/params';
import { PduFramer } from '../../../src/iscsi/pdu/framer';
import { parseLoginRequest } from '../../../src/iscsi/pdu/parse';
import type { TextPairs } from '../../../src/iscsi/pdu/text';
import type { TargetConfig } from '../../../src/iscsi/target-config';
import { loginRequest } from '../support/raw-initiator';

const IQN = 'iqn.2026-11.io.trireme:t';
const target = (extra: Partial<TargetConfig> = {}): TargetConfig => ({ iqn: IQN, luns: [], ...extra });
const env = (config: TargetConfig): LoginEnvironment => ({ findTarget: (n) => (n === IQN ? config : undefined), portalGroupTag: 1, offers: DEFAULT_OFFERS });
const request = (csg: number, nsg: number, transit: boolean, pairs: TextPairs) =>
  parseLoginRequest(new PduFramer({ maxDataSegmentLength: 8192, headerDigest: false, dataDigest: false }).push(loginRequest({ csg, nsg, transit, pairs }))[0]);
const get = (pairs: TextPairs, key: string) => pairs.find(([k]) => k === key)?.[1];
const BASE: TextPairs = [['InitiatorName', 'iqn.2026-11.test:i'], ['TargetName', IQN]];

test('every operational key answers with its result function', () => {
  const ctx = { params: defaultParams(), offers: DEFAULT_OFFERS, discovery: false };
  assert.equal(negotiateKey('HeaderDigest', 'CRC32C,None', ctx), 'CRC32C');
  assert.equal(ctx.params.headerDigest, true);
  assert.equal(negotiateKey('DataDigest', 'None', ctx), 'None');
  assert.equal(negotiateKey('MaxBurstLength', '16776192', ctx), String(DEFAULT_OFFERS.maxBurstLength));
  assert.equal(negotiateKey('FirstBurstLength', '4096', ctx), '4096');
  assert.equal(negotiateKey('InitialR2T', 'No', ctx), 'No');
  assert.equal(negotiateKey('ImmediateData', 'Yes', ctx), 'Yes');
  assert.equal(negotiateKey('MaxOutstandingR2T', '1', ctx), '1');
  assert.equal(negotiateKey('MaxConnections', '8', ctx), '1');
  assert.equal(negotiateKey('ErrorRecoveryLevel', '2', ctx), '0');
  assert.equal(negotiateKey('DefaultTime2Wait', '0', ctx), '2');
  assert.equal(negotiateKey('DefaultTime2Retain', '20', ctx), '0');
  assert.equal(negotiateKey('DataPDUInOrder', 'No', ctx), 'Yes');
  assert.equal(negotiateKey('DataSequenceInOrder', 'No', ctx), 'Yes');
  assert.equal(negotiateKey('MaxRecvDataSegmentLength', '65536', ctx), undefined);
  assert.equal(ctx.params.initiatorMaxRecvDataSegmentLength, 65536);
  assert.equal(negotiateKey('TaskReporting', 'ResponseFence,RFC3720', ctx), 'RFC3720');
  assert.equal(negotiateKey('X-com.example.Foo', 'bar', ctx), 'NotUnderstood');
  assert.equal(negotiateKey('Bogus', 'bar', ctx), 'NotUnderstood');
  assert.equal(negotiateKey('MaxBurstLength', '100', ctx), 'Reject');
  assert.equal(negotiateKey('InitialR2T', 'maybe', ctx), 'Reject');
  assert.equal(negotiateKey('MaxBurstLength', '0x100000', ctx), String(Math.min(0x100000, DEFAULT_OFFERS.maxBurstLength)));
  const discovery = { params: defaultParams(), offers: DEFAULT_OFFERS, discovery: true };
  assert.equal(negotiateKey('MaxBurstLength', '65536', discovery), 'Irrelevant');
  assert.ok(Object.keys(KEY_TABLE).length >= 14);
});

test('RFC defaults hold when nothing is negotiated', () => {
  const p = defaultParams();
  assert.deepEqual(
    [p.maxBurstLength, p.firstBurstLength, p.initialR2T, p.immediateData, p.maxOutstandingR2T, p.initiatorMaxRecvDataSegmentLength, p.errorRecoveryLevel],
    [262144, 65536, true, true, 1, 8192, 0],
  );
});

test('login without authentication: TPGT in the first answer, our MaxRecvDataSegmentLength declared', () => {
  const state = new LoginState(env(target({ alias: 'disk' })));
  const reply = state.handle(request(1, 3, true, [...BASE, ['HeaderDigest', 'None'], ['Foo', 'x']]));
  assert.equal(reply.status, 0);
  assert.equal(reply.complete, true);
  assert.equal(get(reply.pairs, 'TargetPortalGroupTag'), '1');
  assert.equal(get(reply.pairs, 'TargetAlias'), 'disk');
  assert.equal(get(reply.pairs, 'MaxRecvDataSegmentLength'), String(DEFAULT_OFFERS.maxRecvDataSegmentLength));
  assert.equal(get(reply.pairs, 'Foo'), 'NotUnderstood');
});

test('login refusals: missing names, unknown target, bad version, auth skipped', () => {
  assert.equal(new LoginState(env(target())).handle(request(1, 3, true, [['TargetName', IQN]])).status, 0x0207);
  assert.equal(new LoginState(env(target())).handle(request(1, 3, true, [['InitiatorName', 'i']])).status, 0x0207);
  assert.equal(new LoginState(env(target())).handle(request(1, 3, true, [['InitiatorName', 'i'], ['TargetName', 'iqn.2026-11.x:nope']])).status, 0x0203);
  assert.equal(new LoginState(env(target({ chap: { user: 'u', secret: 's' } }))).handle(request(1, 3, true, BASE)).status, 0x0201);
  assert.equal(new LoginState(env(target())).handle(request(1, 3, true, [...BASE, ['SessionType', 'Weird']])).status, 0x0209);
});

function chapLogin(config: TargetConfig, secret: string, mutual?: { id: number; challenge: Buffer }) {
  const state = new LoginState(env(config));
  const r1 = state.handle(request(0, 1, false, [...BASE, ['AuthMethod', 'CHAP,None']]));
  assert.equal(get(r1.pairs, 'AuthMethod'), 'CHAP');
  const r2 = state.handle(request(0, 1, false, [['CHAP_A', '7,5']]));
  assert.equal(get(r2.pairs, 'CHAP_A'), '5');
  const id = Number(get(r2.pairs, 'CHAP_I'));
  const challenge = parseBinary(get(r2.pairs, 'CHAP_C') as string) as Buffer;
  const answer: TextPairs = [['CHAP_N', 'alice'], ['CHAP_R', `0x${chapResponse(id, secret, challenge).toString('hex')}`]];
  if (mutual) answer.push(['CHAP_I', String(mutual.id)], ['CHAP_C', `0x${mutual.challenge.toString('hex')}`]);
  return state.handle(request(0, 1, true, answer));
}

test('CHAP one-way: right secret passes, wrong secret fails with 0x0201', () => {
  const config = target({ chap: { user: 'alice', secret: 'secretsecret12' } });
  const ok = chapLogin(config, 'secretsecret12');
  assert.equal(ok.status, 0);
  assert.equal(ok.transit, true);
  assert.equal(chapLogin(config, 'wrong').status, 0x0201);
});

test('CHAP mutual: the target proves its own secret; reflection is refused', () => {
  const config = target({ chap: { user: 'alice', secret: 'secretsecret12' }, mutualChap: { user: 'tgt', secret: 'targetsecret1' } });
  const challenge = Buffer.from('00112233445566778899aabbccddeeff', 'hex');
  const reply = chapLogin(config, 'secretsecret12', { id: 42, challenge });
  assert.equal(reply.status, 0);
  assert.equal(get(reply.pairs, 'CHAP_N'), 'tgt');
  assert.equal(get(reply.pairs, 'CHAP_R'), `0x${chapResponse(42, 'targetsecret1', challenge).toString('hex')}`);
  const noMutual = chapLogin(target({ chap: { user: 'alice', secret: 'secretsecret12' } }), 'secretsecret12', { id: 1, challenge });
  assert.equal(noMutual.status, 0x0201);
});

test('binary values: hex and base64', () => {
  assert.deepEqual(parseBinary('0x0a0B'), Buffer.from([10, 11]));
  assert.deepEqual(parseBinary('0x123'), Buffer.from([1, 0x23]));
  assert.deepEqual(parseBinary('0bAQI='), Buffer.from([1, 2]));
  assert.equal(parseBinary('12'), undefined);
  assert.equal(parseBinary(`0x${'00'.repeat(2000)}`), undefined);
});
