import Table from 'cli-table3';

export type Cell = string | number;

/** Numbers in tables: integers with thousands separators, small values with 2-3 significant digits. */
export function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return '-';
  if (Math.abs(value) >= 100) return Math.round(value).toLocaleString('en-US');
  if (Math.abs(value) >= 10) return value.toFixed(1);
  return value.toFixed(2);
}

/** A plain-text table (right-aligned numbers) ready for stdout. */
export function renderTable(head: readonly string[], rows: readonly (readonly Cell[])[]): string {
  const table = new Table({
    head: [...head],
    style: { head: [], border: [], compact: true },
    colAligns: head.map((_, i) => (i === 0 ? 'left' : 'right')),
  });
  for (const row of rows) table.push(row.map((c) => (typeof c === 'number' ? formatNumber(c) : c)));
  return table.toString();
}
