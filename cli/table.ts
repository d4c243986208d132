// kubectl-style tables: upper-case headers, columns padded to the widest cell,
// three spaces apart, no trailing spaces.

export type Row = readonly string[];

export interface Table {
  headers: readonly string[];
  rows: readonly Row[];
}

export function renderTable(table: Table, options: { noHeaders?: boolean } = {}): string {
  const lines = options.noHeaders ? [...table.rows] : [table.headers, ...table.rows];
  if (lines.length === 0) return '';
  const widths = table.headers.map((_, column) => Math.max(...lines.map((line) => (line[column] ?? '').length)));
  return lines
    .map((line) =>
      widths
        .map((width, column) => (line[column] ?? '').padEnd(width))
        .join('   ')
        .trimEnd(),
    )
    .map((line) => `${line}\n`)
    .join('');
}

/** `-` for what is absent, as kubectl prints `<none>` but shorter. */
export const orDash = (value: string | number | undefined | null): string =>
  value === undefined || value === null || value === '' ? '-' : String(value);
