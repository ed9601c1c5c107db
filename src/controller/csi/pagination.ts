import { aborted, invalidArgument } from '../../common/csi';

/**
 * ListVolumes / ListSnapshots paging. The token is the offset of the next entry
 * in the orchestrator's stable (id-sorted) order, as a decimal string: simple to
 * check, and the CSI spec only asks that a bad token be refused with ABORTED so
 * the CO restarts the listing.
 */
export function paginate<T>(items: readonly T[], maxEntries: number | undefined, startingToken: string | undefined): { page: T[]; nextToken: string } {
  const max = maxEntries ?? 0;
  if (max < 0) throw invalidArgument(`max_entries must not be negative, got ${max}`);
  let start = 0;
  if (startingToken) {
    if (!/^\d{1,9}$/.test(startingToken) || Number(startingToken) > items.length) throw aborted(`starting_token "${startingToken}" is not valid; start the listing again`);
    start = Number(startingToken);
  }
  const end = max === 0 ? items.length : Math.min(items.length, start + max);
  return { page: items.slice(start, end), nextToken: end < items.length ? String(end) : '' };
}
