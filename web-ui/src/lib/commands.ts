// The command lines the console hands people to copy.
import { compactDuration } from './format';

/** The default agent port of `cairn-vault serve --listen`. */
export const kDefaultAgentPort = 7420;

/**
 * The vault address an agent enrols with: the first of the vault's agent
 * addresses when the API names them, else this page's host name with the
 * default agent port (a guess, and the page says so).
 */
export function enrolAddress(agentAddresses: string[] | undefined, hostname: string): { address: string; guessed: boolean } {
  const first = (agentAddresses ?? []).find((a) => a.trim() !== '');
  if (first) return { address: first, guessed: false };
  const host = hostname.includes(':') && !hostname.startsWith('[') ? `[${hostname}]` : hostname;
  return { address: `${host}:${kDefaultAgentPort}`, guessed: true };
}

export function enrolCommand(address: string, token: string): string {
  return `cairn-agent enroll --vault ${address} --token ${token} --state /var/lib/cairn-agent`;
}

/** Quotes a shell word when it needs it (paths people type may hold spaces). */
export function shellQuote(word: string): string {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(word)) return word;
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

export interface RestoreCommandOptions {
  snapshot: string;
  state: string;
  target: string;
  sandbox: string;
  rtoSeconds?: number;
}

/** The cairn-restore command lines for a snapshot (doc/design.md sections 12 and 23). */
export function restoreCommands(o: RestoreCommandOptions): { restore: string; verify: string; drill: string } {
  const q = shellQuote;
  const restore = `cairn-restore restore ${q(o.snapshot)} --state ${q(o.state)} --target ${q(o.target)}`;
  const verify = `cairn-restore restore ${q(o.snapshot)} --state ${q(o.state)} --target ${q(o.target)} --verify-only`;
  const rto = o.rtoSeconds ? ` --rto ${compactDuration(o.rtoSeconds)}` : '';
  const drill = `cairn-restore drill ${q(o.snapshot)} --state ${q(o.state)} --sandbox ${q(o.sandbox)}${rto}`;
  return { restore, verify, drill };
}

