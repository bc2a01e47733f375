// How the vault's states read in the console: a tone (colour) and a
// message key (words). Pure, so the mapping is tested.

import type { MessageKey } from '../i18n';

/** A status colour; the words and a symbol always go with it. */
export type Tone = 'ok' | 'warn' | 'bad' | 'info' | 'neutral';

export type ProtectionClass = 'protected' | 'atRisk' | 'breached' | 'pending' | 'noRpo';

/** A source's RPO state (GET /api/v1/status `rpo`) as the overview counts it. */
export function protectionClass(rpo: string): ProtectionClass {
  switch (rpo) {
    case 'met':
      return 'protected';
    case 'at risk':
      return 'atRisk';
    case 'breached':
      return 'breached';
    case 'pending':
      return 'pending';
    default:
      return 'noRpo';
  }
}

export const protectionTone: Record<ProtectionClass, Tone> = {
  protected: 'ok',
  atRisk: 'warn',
  breached: 'bad',
  pending: 'info',
  noRpo: 'neutral',
};

export const protectionLabel: Record<ProtectionClass, MessageKey> = {
  protected: 'status.protected',
  atRisk: 'status.atRisk',
  breached: 'status.breached',
  pending: 'status.pending',
  noRpo: 'status.noRpo',
};

export function jobTone(state: string): Tone {
  switch (state) {
    case 'done':
      return 'ok';
    case 'failed':
    case 'missed':
      return 'bad';
    case 'sent':
      return 'info';
    default:
      return 'neutral';
  }
}

export function jobStateLabel(state: string): MessageKey | null {
  switch (state) {
    case 'queued':
      return 'jobs.state.queued';
    case 'sent':
      return 'jobs.state.sent';
    case 'done':
      return 'jobs.state.done';
    case 'failed':
      return 'jobs.state.failed';
    case 'missed':
      return 'jobs.state.missed';
    default:
      return null;
  }
}

export function severityTone(severity: string): Tone {
  return severity === 'critical' ? 'bad' : 'warn';
}

/** The department a status list entry names: "finance/db-01" or "finance db-01 /srv". */
export function departmentOf(entry: string): string {
  const m = /^([^/\s]+)[/\s]/.exec(entry);
  return m ? m[1] : entry;
}
