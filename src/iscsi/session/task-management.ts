import * as encode from '../pdu/encode';
import { TmfFunction, TmfResponse } from '../pdu/opcodes';
import type { TaskManagementPdu } from '../pdu/parse';
import { snLess } from './cmdsn-window';
import type { SessionView, Task, TargetEntry } from './session-types';

/** Longest wait for aborted commands to settle before the TMF response goes out anyway. */
const ABORT_WAIT_MS = 10_000;

const withTimeout = (work: Promise<void>): Promise<void> =>
  new Promise((resolve) => {
    const timer = setTimeout(resolve, ABORT_WAIT_MS);
    void work.finally(() => {
      clearTimeout(timer);
      resolve();
    });
  });

/**
 * Task management (RFC 7143 §11.5, SAM-5 §7). Aborted tasks get no SCSI
 * Response; the TMF response is sent once the aborted tasks have stopped, so
 * no status for them can follow it.
 */
export async function taskManagement(session: SessionView, pdu: TaskManagementPdu): Promise<void> {
  const response = await perform(session, pdu);
  session.channel.send([{ status: true, build: (seq) => encode.taskManagementResponse({ itt: pdu.itt, response, seq }) }]);
}

async function perform(session: SessionView, pdu: TaskManagementPdu): Promise<TmfResponse> {
  const target = session.target as TargetEntry;
  const lunScoped = pdu.function !== TmfFunction.TargetWarmReset && pdu.function !== TmfFunction.TargetColdReset;
  if (lunScoped && pdu.function <= TmfFunction.LogicalUnitReset && !target.scsi.hasLun(pdu.lun)) return TmfResponse.LunDoesNotExist;
  switch (pdu.function) {
    case TmfFunction.AbortTask:
      return abortTask(session, pdu);
    case TmfFunction.AbortTaskSet:
      await withTimeout(session.abortWhere((t) => t.lun === pdu.lun && before(t, pdu)));
      return TmfResponse.FunctionComplete;
    case TmfFunction.ClearTaskSet:
      await withTimeout(session.hooks.abortAcrossTarget(target.config.iqn, (t) => t.lun === pdu.lun));
      return TmfResponse.FunctionComplete;
    case TmfFunction.LogicalUnitReset:
      await withTimeout(session.hooks.abortAcrossTarget(target.config.iqn, (t) => t.lun === pdu.lun));
      target.scsi.reset({ kind: 'lun', lun: pdu.lun }, session.nexus);
      return TmfResponse.FunctionComplete;
    case TmfFunction.TargetWarmReset:
      await withTimeout(session.hooks.abortAcrossTarget(target.config.iqn, () => true));
      target.scsi.reset({ kind: 'target' }, session.nexus);
      return TmfResponse.FunctionComplete;
    case TmfFunction.TaskReassign:
      // Reassignment moves tasks between connections, which needs ERL 2 (§6.2.2).
      return TmfResponse.ReassignmentNotSupported;
    default:
      return TmfResponse.FunctionNotSupported;
  }
}

/** ABORT TASK SET affects only tasks received before the TMF request (§4.2.3.3 of RFC 7143 on ordering). */
function before(task: Task, pdu: TaskManagementPdu): boolean {
  return task.immediate || pdu.immediate || snLess(task.cmdSN, pdu.cmdSN);
}

async function abortTask(session: SessionView, pdu: TaskManagementPdu): Promise<TmfResponse> {
  const task = session.tasks.get(pdu.referencedTaskTag);
  if (!task || task.lun !== pdu.lun) {
    // §11.5.1 b: a task that has not arrived but whose RefCmdSN lies in the window
    // (and before the request) is considered received: its CmdSN is taken and
    // cancelled, so the command is ignored if it turns up later.
    const inWindow = !snLess(pdu.refCmdSN, session.expCmdSN) && !snLess(session.maxCmdSN, pdu.refCmdSN);
    if (!task && inWindow && snLess(pdu.refCmdSN, pdu.cmdSN)) {
      if (session.window.accept(pdu.refCmdSN)) session.window.cancel(pdu.refCmdSN);
      return TmfResponse.FunctionComplete;
    }
    return TmfResponse.TaskDoesNotExist;
  }
  await withTimeout(session.abortWhere((t) => t === task));
  return TmfResponse.FunctionComplete;
}
