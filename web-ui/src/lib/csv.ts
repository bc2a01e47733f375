// CSV for exports (RFC 4180): fields separated by commas, records by CRLF;
// a field holding a comma, a quote, CR or LF, or leading or trailing spaces
// is quoted, with quotes doubled. A text cell that a spreadsheet would run
// as a formula (starting with =, +, -, @, tab or CR, and not a number) gets
// a leading apostrophe, so that an exported path or summary cannot execute
// in the auditor's spreadsheet.

export type Cell = string | number | boolean | null | undefined;

function defuse(text: string): string {
  if (/^[=+\-@\t\r]/.test(text) && !/^[+-]?\d+(\.\d+)?$/.test(text)) return `'${text}`;
  return text;
}

export function csvField(value: Cell): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'number') return Number.isFinite(value) ? String(value) : '';
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  const text = defuse(value);
  if (/[",\r\n]/.test(text) || /^\s|\s$/.test(text)) {
    return `"${text.replace(/"/g, '""')}"`;
  }
  return text;
}

export function toCsv(header: string[], rows: Cell[][]): string {
  const lines = [header.map(csvField).join(',')];
  for (const row of rows) lines.push(row.map(csvField).join(','));
  return lines.join('\r\n') + '\r\n';
}
