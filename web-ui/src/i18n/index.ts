// Message catalogs and the current language. Every string the console shows
// comes from en.ts or zh.ts (same keys; a unit test holds them equal and
// non-empty). Parameters are written {name} in the messages.

import { en } from './en';
import { zh } from './zh';
import type { DurationUnits } from '../lib/format';

export type MessageKey = keyof typeof en;
export type Catalog = Record<MessageKey, string>;
export type Lang = 'en' | 'zh';

export const catalogs: Record<Lang, Catalog> = { en, zh };
export const languages: Lang[] = ['en', 'zh'];

const kLangKey = 'cairn.lang';

function storedLang(): Lang | null {
  try {
    const v = typeof localStorage !== 'undefined' ? localStorage.getItem(kLangKey) : null;
    return v === 'en' || v === 'zh' ? v : null;
  } catch {
    return null;
  }
}

function browserLang(): Lang {
  const nav = typeof navigator !== 'undefined' ? navigator.language ?? '' : '';
  return nav.toLowerCase().startsWith('zh') ? 'zh' : 'en';
}

let current: Lang = storedLang() ?? browserLang();
const listeners = new Set<(lang: Lang) => void>();

export function getLang(): Lang {
  return current;
}

export function setLang(lang: Lang): void {
  current = lang;
  try {
    localStorage.setItem(kLangKey, lang);
  } catch {
    /* private mode: the choice lasts this page only */
  }
  applyDocumentLang();
  for (const l of [...listeners]) l(lang);
}

export function onLangChange(listener: (lang: Lang) => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

export function applyDocumentLang(): void {
  if (typeof document !== 'undefined') {
    document.documentElement.lang = current === 'zh' ? 'zh-CN' : 'en';
    document.title = t('app.title');
  }
}

export function interpolate(message: string, params?: Record<string, string | number>): string {
  if (!params) return message;
  return message.replace(/\{(\w+)\}/g, (whole, name: string) =>
    Object.prototype.hasOwnProperty.call(params, name) ? String(params[name]) : whole,
  );
}

export function translate(
  lang: Lang,
  key: MessageKey,
  params?: Record<string, string | number>,
): string {
  return interpolate(catalogs[lang][key] ?? catalogs.en[key] ?? key, params);
}

export function t(key: MessageKey, params?: Record<string, string | number>): string {
  return translate(current, key, params);
}

/** Duration unit words of the current language, for lib/format. */
export function units(): DurationUnits {
  return { d: t('unit.day'), h: t('unit.hour'), m: t('unit.minute'), s: t('unit.second') };
}
