import { describe, expect, it } from 'vitest';
import { en } from './en';
import { zh } from './zh';
import { interpolate, translate } from './index';

const params = (s: string) => [...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();

describe('message catalogs', () => {
  it('have identical key sets', () => {
    const a = Object.keys(en).sort();
    const b = Object.keys(zh).sort();
    expect(b.filter((k) => !a.includes(k))).toEqual([]);
    expect(a.filter((k) => !b.includes(k))).toEqual([]);
  });

  it('have no empty message', () => {
    for (const [lang, cat] of [['en', en], ['zh', zh]] as const) {
      for (const [k, v] of Object.entries(cat)) {
        expect(typeof v, `${lang} ${k}`).toBe('string');
        expect(v.trim(), `${lang} ${k}`).not.toBe('');
      }
    }
  });

  it('use the same parameters in both languages', () => {
    for (const k of Object.keys(en) as (keyof typeof en)[]) {
      expect(params(zh[k]), k).toEqual(params(en[k]));
    }
  });

  it('translate Chinese messages into Chinese text', () => {
    // A Chinese message that is letter-for-letter the English one was
    // probably forgotten; only names and symbols may stay the same.
    const same = (Object.keys(en) as (keyof typeof en)[]).filter(
      (k) => en[k] === zh[k] && /[a-z]{4,}/.test(en[k].replace(/\{\w+\}/g, '')) && !/^(app\.name|lang\.)/.test(k),
    );
    expect(same).toEqual([]);
  });

  it('interpolates parameters and leaves unknown ones visible', () => {
    expect(interpolate('{a} of {b}', { a: 1, b: 'x' })).toBe('1 of x');
    expect(interpolate('{a} and {c}', { a: 1 })).toBe('1 and {c}');
    expect(translate('zh', 'jobs.queued', { id: 7, host: 'db-01' })).toBe('任务 7 已为 db-01 排队。');
    expect(translate('en', 'jobs.queued', { id: 7, host: 'db-01' })).toBe('Job 7 queued for db-01.');
  });
});
