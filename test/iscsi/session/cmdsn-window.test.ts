import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CmdSnWindow, snLess } from '../../../src/iscsi/session/cmdsn-window';

test('serial arithmetic wraps at 2^32', () => {
  assert.ok(snLess(1, 2));
  assert.ok(snLess(0xffffffff, 0));
  assert.ok(!snLess(0, 0xffffffff));
  assert.ok(!snLess(5, 5));
});

test('work runs in CmdSN order whatever order it arrives and becomes ready in', () => {
  const w = new CmdSnWindow(10, 8);
  const ran: number[] = [];
  for (const sn of [12, 10, 11]) assert.ok(w.accept(sn));
  assert.equal(w.expCmdSN, 13);
  assert.equal(w.maxCmdSN, 20);
  w.markReady(12, () => ran.push(12));
  w.markReady(11, () => ran.push(11));
  assert.equal(ran.length, 0);
  w.markReady(10, () => ran.push(10));
  assert.deepEqual(ran, [10, 11, 12]);
});

test('a gap holds ExpCmdSN until filled; duplicates and out-of-window CmdSNs are refused', () => {
  const w = new CmdSnWindow(0xfffffffe, 4);
  assert.ok(w.accept(0));
  assert.equal(w.expCmdSN, 0xfffffffe);
  assert.ok(!w.accept(0));
  assert.ok(!w.accept(2));
  assert.ok(w.accept(0xfffffffe));
  assert.ok(w.accept(0xffffffff));
  assert.equal(w.expCmdSN, 1);
  assert.ok(!w.accept(0xffffffff));
});

test('a cancelled entry no longer holds up later ones', () => {
  const w = new CmdSnWindow(1, 8);
  const ran: number[] = [];
  w.accept(1);
  w.accept(2);
  w.markReady(2, () => ran.push(2));
  w.cancel(1);
  assert.deepEqual(ran, [2]);
});

test('cancelling a CmdSN that already ran leaves nothing behind', () => {
  const w = new CmdSnWindow(1, 8);
  const ran: number[] = [];
  w.accept(1);
  w.markReady(1, () => ran.push(1));
  w.cancel(1);
  w.accept(2);
  w.markReady(2, () => ran.push(2));
  assert.deepEqual(ran, [1, 2]);
  assert.equal(w.backlog, 0);
});
