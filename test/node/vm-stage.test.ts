import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { status } from '@grpc/grpc-js';
import { identityService, startCsiServer, type RunningCsiServer } from '../../src/common/csi';
import { silentLogger } from '../../src/common/logger';
import { IscsiAcquirer, iscsiByPathLink, nodeReadinessCheck, nodeService, parseMountInfo, SECRET_CHAP_SECRET, SECRET_CHAP_USER, type MountEntry } from '../../src/node';
import { requireTools } from '../support/host-tools';
import { startTriremeTarget, type TriremeTarget } from '../support/trireme-target';
import { bootVmGuest, VM_GUEST_TOOLS, VM_HARNESS, type VmGuest } from '../support/vm-guest';
import { CsiTestClient, grpcStatus, type CsiServiceName } from './support/csi-client';
import { blockCapability, MiB, mountCapability } from './support/node-harness';

/*
 * The node plugin's real iSCSI path, end to end: `trireme target` volumes on
 * this host, the Linux kernel initiator (iscsi_tcp + open-iscsi) in a qemu VM,
 * and the CSI node service driven over gRPC with every host tool it runs
 * (iscsiadm, blkid, mkfs, mount, stat, ...) running inside that VM through its
 * command agent. This host's kernel has no iSCSI initiator, so the VM is the
 * node. The guest reaches the host's loopback at 10.0.2.2.
 */

const CHAP = { user: 'node-a', secret: 'node-a-chap-secret' };
const VOLUME = 'pvc-vm-1';
const STAGING = `/var/lib/kubelet/plugins/kubernetes.io/csi/csi.trireme.io/${VOLUME}/globalmount`;
const TARGET = `/var/lib/kubelet/pods/pod-1/volumes/kubernetes.io~csi/${VOLUME}/mount`;

interface Rig {
  readonly guest: VmGuest;
  /** The CSI client; a failed call's error carries the guest's state. */
  readonly client: Pick<CsiTestClient, 'call'>;
  /** Runs a shell script in the guest; fails the test when it exits non-zero. */
  sh(script: string): Promise<string>;
  mounts(): Promise<MountEntry[]>;
}

function guestPortal(target: TriremeTarget): string {
  return `10.0.2.2:${target.port}`;
}

function stageRequest(target: TriremeTarget, secrets: Record<string, string>, capability = mountCapability('ext4'), staging = STAGING, volumeId = VOLUME): object {
  return {
    volume_id: volumeId,
    staging_target_path: staging,
    volume_capability: capability,
    volume_context: { portal: guestPortal(target), iqn: target.iqn, lun: '0' },
    secrets,
  };
}

const chapSecrets = { [SECRET_CHAP_USER]: CHAP.user, [SECRET_CHAP_SECRET]: CHAP.secret };

/** Bounded poll of a guest-side condition (the by-path stand-in updates every 0.2 s). */
async function eventually(rig: Rig, script: string, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while ((await rig.guest.executor.run('sh', ['-c', script], { okExitCodes: [1] })).exitCode !== 0) {
    if (Date.now() > deadline) assert.fail(`${what} within 10 s`);
    await sleep(200);
  }
}

async function sessions(rig: Rig): Promise<string> {
  // iscsiadm exits 21 (no objects found) when there is no session.
  const { stdout } = await rig.guest.executor.run('iscsiadm', ['-m', 'session'], { okExitCodes: [21] });
  return stdout;
}

async function stageAndCheck(t: TestContext, rig: Rig, volume: TriremeTarget): Promise<{ device: string; uuid: string }> {
  await rig.client.call('Node', 'NodeStageVolume', stageRequest(volume, chapSecrets));
  const link = iscsiByPathLink({ portal: guestPortal(volume), iqn: volume.iqn, lun: 0 });
  const device = (await rig.sh(`readlink -f ${link}`)).trim();
  assert.match(device, /^\/dev\/sd[a-z]+$/, 'the by-path link names the LUN the kernel initiator scanned');
  const staged = (await rig.mounts()).filter((m) => m.mountPoint === STAGING);
  assert.equal(staged.length, 1);
  assert.equal(staged[0].fsType, 'ext4');
  assert.equal(staged[0].source, device);
  const uuid = (await rig.sh(`blkid -p -o value -s UUID ${device}`)).trim();
  t.diagnostic(`staged ${volume.iqn} as ${device} (ext4 ${uuid})`);
  return { device, uuid };
}

test('the CSI node plugin stages, publishes and unstages Trireme volumes through the Linux kernel initiator in a VM', { timeout: 600_000 }, async (t) => {
  if (!requireTools(t, VM_GUEST_TOOLS)) return;
  if (!existsSync(VM_HARNESS)) {
    // CI checks out shared/ beside the repository; its absence there is a broken set-up.
    if (process.env.CI === 'true') throw new Error(`missing ${VM_HARNESS}`);
    return t.skip(`needs ${VM_HARNESS}`);
  }
  const logger = silentLogger();
  const dir = mkdtempSync(join(tmpdir(), 'trireme-vm-stage-'));
  // Undone in reverse order, whatever step a failure stops at.
  const cleanups: Array<() => unknown> = [() => rmSync(dir, { recursive: true, force: true })];
  t.after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });
  const started = await Promise.allSettled([
    startTriremeTarget({ device: 'mem', size: '256M', extraArgs: ['--chap-user', CHAP.user, '--chap-secret', CHAP.secret] }),
    startTriremeTarget({ device: `file:${join(dir, 'block.img')}`, size: '64M' }),
    bootVmGuest(logger),
  ]);
  for (const s of started) if (s.status === 'fulfilled') cleanups.push(() => s.value.stop());
  for (const s of started) if (s.status === 'rejected') throw s.reason;
  const [guarded, open, guest] = started.map((s) => (s as PromiseFulfilledResult<unknown>).value) as [TriremeTarget, TriremeTarget, VmGuest];
  const executor = guest.executor;
  const acquirer = new IscsiAcquirer(executor, logger);
  const server: RunningCsiServer = await startCsiServer({
    endpoint: `unix://${join(dir, 'csi.sock')}`,
    identity: identityService({ version: '0.0.0-test', controllerService: false, readinessChecks: [{ name: 'host', check: nodeReadinessCheck(executor, acquirer) }], logger }),
    // The plugin's own stage records stay on this host (a hostPath in a pod); everything it does to the node happens in the guest.
    node: nodeService({ nodeId: 'vm-node', maxVolumesPerNode: 0, executor, acquirer, stateDir: join(dir, 'state'), deviceTimeoutMs: 30_000, logger }),
    logger,
  });
  cleanups.push(() => server.close());
  const client = new CsiTestClient(server.socketPath);
  cleanups.push(() => client.close());
  const vm = guest;
  const rig: Rig = {
    guest: vm,
    client: {
      call: async <T>(service: CsiServiceName, method: string, request?: object): Promise<T> => {
        try {
          return await client.call<T>(service, method, request);
        } catch (err) {
          // The message keeps the gRPC status text matchers look for; the guest's state follows it.
          (err as Error).message += `\n--- guest state ---\n${await vm.state()}`;
          throw err;
        }
      },
    },
    sh: async (script) => {
      try {
        return (await vm.executor.run('sh', ['-c', script])).stdout;
      } catch (err) {
        return assert.fail(`guest: ${(err as Error).message}\n${vm.console().slice(-2000)}`);
      }
    },
    mounts: async () => parseMountInfo((await vm.executor.run('cat', ['/proc/self/mountinfo'])).stdout),
  };
  const volume = guarded;
  const plain = open;

  await t.test('Probe: iscsiadm, blkid and mount answer in the guest', async () => {
    const probe = await rig.client.call<{ ready: { value: boolean } }>('Identity', 'Probe');
    assert.equal(probe.ready.value, true);
  });

  await t.test('a wrong CHAP secret fails NodeStageVolume with UNAUTHENTICATED and leaves no session', async () => {
    const wrong = { ...chapSecrets, [SECRET_CHAP_SECRET]: 'not-the-secret-0' };
    await assert.rejects(rig.client.call('Node', 'NodeStageVolume', stageRequest(volume, wrong)), (err: Error & { code: number }) => {
      grpcStatus(status.UNAUTHENTICATED)(err);
      assert.match(err.message, /refused the CHAP credentials/);
      assert.ok(!err.message.includes('not-the-secret-0'), 'the secret never reaches the error');
      return true;
    });
    assert.equal((await sessions(rig)).trim(), '');
  });

  let first = { device: '', uuid: '' };
  await t.test('NodeStageVolume logs in with CHAP, makes ext4 on the empty volume and mounts it; a repeat changes nothing', async (st) => {
    first = await stageAndCheck(st, rig, volume);
    await rig.client.call('Node', 'NodeStageVolume', stageRequest(volume, chapSecrets));
    assert.equal((await rig.mounts()).filter((m) => m.mountPoint === STAGING).length, 1, 'still one staging mount');
    assert.equal((await sessions(rig)).trim().split('\n').length, 1, 'still one session');
    assert.match(await sessions(rig), new RegExp(`10\\.0\\.2\\.2:${volume.port},\\d+ ${volume.iqn.replace(/\./g, '\\.')}`));
  });

  await t.test('NodePublishVolume bind-mounts it; a file written there is on the volume; stats see it', async () => {
    const publish = { volume_id: VOLUME, staging_target_path: STAGING, target_path: TARGET, volume_capability: mountCapability('ext4') };
    await rig.client.call('Node', 'NodePublishVolume', publish);
    await rig.client.call('Node', 'NodePublishVolume', publish);
    const target = (await rig.mounts()).filter((m) => m.mountPoint === TARGET);
    assert.equal(target.length, 1);
    assert.equal(target[0].source, first.device);
    await rig.sh(`head -c ${4 * MiB} /dev/urandom > ${TARGET}/data && echo hello-from-the-pod > ${TARGET}/hello && sha256sum ${TARGET}/data | cut -d' ' -f1 > /tmp/data.sum && sync`);
    assert.equal((await rig.sh(`cat ${STAGING}/hello`)).trim(), 'hello-from-the-pod', 'the bind mount and the staging mount are one filesystem');
    const stats = await rig.client.call<{ usage: Array<{ unit: string; total: number; used: number; available: number }>; volume_condition: { abnormal: boolean } }>('Node', 'NodeGetVolumeStats', {
      volume_id: VOLUME,
      volume_path: TARGET,
    });
    const bytes = stats.usage.find((u) => u.unit === 'BYTES');
    assert.ok(bytes, 'a BYTES usage entry');
    assert.ok(bytes.total > 200 * MiB && bytes.total <= 256 * MiB, `ext4 on a 256 MiB volume, total ${bytes.total}`);
    assert.ok(bytes.used >= 4 * MiB, `the 4 MiB file counts as used (${bytes.used})`);
    assert.equal(stats.volume_condition.abnormal, false);
  });

  await t.test('NodeUnpublishVolume and NodeUnstageVolume unmount, log out and remove the device', async () => {
    await rig.client.call('Node', 'NodeUnpublishVolume', { volume_id: VOLUME, target_path: TARGET });
    await rig.client.call('Node', 'NodeUnstageVolume', { volume_id: VOLUME, staging_target_path: STAGING });
    const left = (await rig.mounts()).filter((m) => m.mountPoint === TARGET || m.mountPoint === STAGING);
    assert.deepEqual(left, []);
    assert.equal((await rig.guest.executor.run('test', ['-e', TARGET], { okExitCodes: [1] })).exitCode, 1, 'the target path is removed');
    assert.equal((await sessions(rig)).trim(), '', 'logged out');
    await eventually(rig, `! test -e /sys/block/${first.device.slice(5)} && ! test -e ${iscsiByPathLink({ portal: guestPortal(volume), iqn: volume.iqn, lun: 0 })}`, 'the disk and its link go away');
  });

  await t.test('staging again logs back in and mounts the same filesystem with the file intact (no second mkfs)', async (st) => {
    const again = await stageAndCheck(st, rig, volume);
    assert.equal(again.uuid, first.uuid, 'the filesystem was not re-created');
    assert.equal((await rig.sh(`cat ${STAGING}/hello`)).trim(), 'hello-from-the-pod');
    assert.equal((await rig.sh(`sha256sum ${STAGING}/data | cut -d' ' -f1`)).trim(), (await rig.sh('cat /tmp/data.sum')).trim());
    await rig.client.call('Node', 'NodeUnstageVolume', { volume_id: VOLUME, staging_target_path: STAGING });
    assert.equal((await sessions(rig)).trim(), '');
  });

  await t.test('a raw block volume without CHAP: staged, published as a device node, written and read back', async () => {
    const id = 'pvc-vm-block';
    const staging = `/var/lib/kubelet/plugins/kubernetes.io/csi/volumeDevices/staging/${id}`;
    const target = `/var/lib/kubelet/pods/pod-2/volumeDevices/kubernetes.io~csi/${id}`;
    await rig.client.call('Node', 'NodeStageVolume', stageRequest(plain, {}, blockCapability(), staging, id));
    await rig.client.call('Node', 'NodePublishVolume', { volume_id: id, staging_target_path: staging, target_path: target, volume_capability: blockCapability() });
    assert.equal((await rig.sh(`stat -L -c %F ${target}`)).trim(), 'block special file');
    assert.equal(Number((await rig.sh(`blockdev --getsize64 ${target}`)).trim()), 64 * MiB);
    const link = iscsiByPathLink({ portal: guestPortal(plain), iqn: plain.iqn, lun: 0 });
    const written = await rig.sh(`head -c ${MiB} /dev/urandom > /tmp/pattern && dd if=/tmp/pattern of=${target} bs=1M seek=63 oflag=direct conv=fsync status=none && sha256sum < /tmp/pattern`);
    const read = await rig.sh(`dd if=${link} bs=1M skip=63 count=1 iflag=direct status=none | sha256sum`);
    assert.equal(read, written, 'the last MiB reads back through the by-path device');
    const stats = await rig.client.call<{ usage: Array<{ total: number }>; volume_condition: { abnormal: boolean } }>('Node', 'NodeGetVolumeStats', { volume_id: id, volume_path: target });
    assert.equal(stats.usage[0].total, 64 * MiB);
    assert.equal(stats.volume_condition.abnormal, false);
    await rig.client.call('Node', 'NodeUnpublishVolume', { volume_id: id, target_path: target });
    await rig.client.call('Node', 'NodeUnstageVolume', { volume_id: id, staging_target_path: staging });
    assert.equal((await sessions(rig)).trim(), '');
  });
});
