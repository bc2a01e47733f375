import { describe, expect, it } from 'vitest';
import { enrolAddress, enrolCommand, restoreCommands, shellQuote } from './commands';

describe('enrolment command', () => {
  it('uses the vault\'s own agent address when the API gives one', () => {
    expect(enrolAddress(['vault.city.gov:7420', 'dr.city.gov:7420'], 'console.city.gov')).toEqual({
      address: 'vault.city.gov:7420',
      guessed: false,
    });
  });

  it('falls back to this page\'s host and the default port, and says it guessed', () => {
    expect(enrolAddress([], '10.1.2.3')).toEqual({ address: '10.1.2.3:7420', guessed: true });
    expect(enrolAddress(undefined, 'vault')).toEqual({ address: 'vault:7420', guessed: true });
    expect(enrolAddress([''], '::1').address).toBe('[::1]:7420');
  });

  it('is the one line the design names', () => {
    expect(enrolCommand('vault:7420', 'tok123')).toBe(
      'cairn-agent enroll --vault vault:7420 --token tok123 --state /var/lib/cairn-agent',
    );
  });
});

describe('restore commands', () => {
  it('quote only what the shell would split', () => {
    expect(shellQuote('/srv/restore/ab12')).toBe('/srv/restore/ab12');
    expect(shellQuote('/srv/my dir')).toBe("'/srv/my dir'");
    expect(shellQuote("it's")).toBe(`'it'\\''s'`);
    expect(shellQuote('$(rm -rf /)')).toBe("'$(rm -rf /)'");
  });

  it('restore, verify and drill the full snapshot ID', () => {
    const c = restoreCommands({
      snapshot: 'ab12cd340000000000000007',
      state: '/var/lib/cairn-agent',
      target: '/srv/restore/ab12cd34',
      sandbox: '/var/tmp/drill',
      rtoSeconds: 7200,
    });
    expect(c.restore).toBe(
      'cairn-restore restore ab12cd340000000000000007 --state /var/lib/cairn-agent --target /srv/restore/ab12cd34',
    );
    expect(c.verify).toBe(`${c.restore} --verify-only`);
    expect(c.drill).toBe(
      'cairn-restore drill ab12cd340000000000000007 --state /var/lib/cairn-agent --sandbox /var/tmp/drill --rto 2h',
    );
  });

  it('leave --rto out when the policy sets none', () => {
    const c = restoreCommands({ snapshot: 'x', state: 's', target: 't', sandbox: 'b' });
    expect(c.drill).toBe('cairn-restore drill x --state s --sandbox b');
  });
});
