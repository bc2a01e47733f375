// Files made in the browser: no request leaves it.

export function downloadText(filename: string, text: string, type: string): void {
  const blob = new Blob([text], { type });
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = filename;
  a.rel = 'noopener';
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

/** CSV with a UTF-8 byte order mark, so that spreadsheets read Chinese text right. */
export function downloadCsv(filename: string, csv: string): void {
  downloadText(filename, '\ufeff' + csv, 'text/csv;charset=utf-8');
}

export function downloadJson(filename: string, value: unknown): void {
  downloadText(filename, JSON.stringify(value, null, 2) + '\n', 'application/json');
}

/** "2026-12-02T17-30" for file names, in local time. */
export function fileStamp(d: Date = new Date()): string {
  const p = (n: number) => n.toString().padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}-${p(d.getMinutes())}`;
}
