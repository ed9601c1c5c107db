import Table from 'cli-table3';
import { formatSize } from '../common/size';

/**
 * Table and progress rendering for the operator commands. Plain text, no
 * colours: the output is read in terminals and in CI logs alike.
 */
export function renderTable(head: string[], rows: Array<Array<string | number>>): string {
  const table = new Table({ head, style: { head: [], border: [], compact: true } });
  for (const row of rows) table.push(row);
  return table.toString();
}

/** `[██████░░░░] 60%`: a fixed-width bar, clamped to 0..100 %. */
export function progressBar(done: number, total: number, width = 20): string {
  const fraction = total > 0 ? Math.min(1, Math.max(0, done / total)) : 0;
  const filled = Math.round(fraction * width);
  return `[${'█'.repeat(filled)}${'░'.repeat(width - filled)}] ${Math.floor(fraction * 100)}%`;
}

/** 75 -> "1m15s"; negative or non-finite means unknown. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

export function formatRate(bytesPerSecond: number): string {
  return `${formatSize(Math.round(bytesPerSecond))}/s`;
}

/** One rebuild as shown in `trireme volume status`. */
export function renderRebuild(r: { kind: string; bytesDone: number; bytesTotal: number; rateBytesPerSecond: number; etaSeconds: number } | null | undefined): string {
  if (!r) return '';
  return `${r.kind} ${progressBar(r.bytesDone, r.bytesTotal)} ${formatSize(r.bytesDone)}/${formatSize(r.bytesTotal)} ${formatRate(r.rateBytesPerSecond)} ETA ${formatDuration(r.etaSeconds)}`;
}
