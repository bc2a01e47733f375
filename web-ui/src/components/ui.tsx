import type { ComponentChildren } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError } from '../api/client';
import { t } from '../i18n';
import { formatDateTime } from '../lib/format';
import type { Tone } from '../lib/status';

/** What went wrong, in words: the vault's message, with what kind of refusal it was. */
export function errorText(error: unknown): string {
  if (error instanceof ApiError) {
    if (error.status === 0) return t('error.network', { message: error.message });
    if (error.status === 401) return t('error.unauthenticated', { message: error.message });
    if (error.forbidden) return t('error.forbidden', { message: error.message });
    if (error.status === 404) return t('error.notFound', { message: error.message });
    if (error.status === 429) return t('error.throttled', { message: error.message });
    if (error.status >= 500) return t('error.server', { message: error.message });
    return t('error.refused', { message: error.message });
  }
  return t('error.unexpected', { message: error instanceof Error ? error.message : String(error) });
}

/** An inline error: a 403 or a refusal stays next to what caused it. */
export function ErrorNote({ error, testid }: { error: unknown; testid?: string }) {
  if (!error) return null;
  return (
    <p class="note note-error" role="alert" data-testid={testid}>
      <span class="note-icon" aria-hidden="true">
        ✕
      </span>{' '}
      {errorText(error)}
    </p>
  );
}

export function Note({
  kind = 'info',
  children,
  testid,
}: {
  kind?: 'info' | 'ok' | 'warn' | 'error';
  children: ComponentChildren;
  testid?: string;
}) {
  const icon = { info: 'i', ok: '✓', warn: '!', error: '✕' }[kind];
  return (
    <p class={`note note-${kind}`} data-testid={testid} role={kind === 'error' ? 'alert' : undefined}>
      <span class="note-icon" aria-hidden="true">
        {icon}
      </span>{' '}
      {children}
    </p>
  );
}

export function Loading() {
  return (
    <p class="muted" aria-live="polite">
      {t('common.loading')}
    </p>
  );
}

/** A panel's load state: the error inline, "loading" the first time. */
export function LoadState({ loading, error, hasData }: { loading: boolean; error: unknown; hasData: boolean }) {
  return (
    <>
      {error ? <ErrorNote error={error} /> : null}
      {loading && !hasData && !error ? <Loading /> : null}
    </>
  );
}


/** A status in colour AND words AND a symbol: never colour alone. */
export function Badge({ tone, children, testid }: { tone: Tone; children: ComponentChildren; testid?: string }) {
  const icon = { ok: '✓', warn: '!', bad: '✕', info: '•', neutral: '–' }[tone];
  return (
    <span class={`badge badge-${tone}`} data-testid={testid}>
      <span aria-hidden="true" class="badge-icon">
        {icon}
      </span>
      {children}
    </span>
  );
}

/** An API time in local time with its UTC offset; the UTC form on hover. */
export function Time({ value }: { value: string | number | null | undefined }) {
  if (value === null || value === undefined || value === '') return <span class="muted">—</span>;
  const title = typeof value === 'string' ? value : undefined;
  const text = formatDateTime(value);
  // Date, then time and offset: the two halves may wrap apart in a narrow cell.
  const cut = text.indexOf(' ');
  return (
    <time title={title} dateTime={title}>
      {cut > 0 ? (
        <>
          <span class="time-part">{text.slice(0, cut)}</span> <span class="time-part">{text.slice(cut + 1)}</span>
        </>
      ) : (
        text
      )}
    </time>
  );
}

export function Panel({
  title,
  children,
  actions,
  testid,
  id,
}: {
  title: ComponentChildren;
  children: ComponentChildren;
  actions?: ComponentChildren;
  testid?: string;
  id?: string;
}) {
  return (
    <section class="panel" data-testid={testid} aria-labelledby={id ? `${id}-title` : undefined}>
      <div class="panel-head">
        <h2 id={id ? `${id}-title` : undefined}>{title}</h2>
        {actions ? <div class="panel-actions">{actions}</div> : null}
      </div>
      {children}
    </section>
  );
}

/** Tables scroll sideways inside this box, never the page. */
export function TableWrap({ children, label }: { children: ComponentChildren; label?: string }) {
  return (
    <div class="table-wrap" role="region" aria-label={label} tabIndex={0}>
      {children}
    </div>
  );
}

export function EmptyRow({ cols, text }: { cols: number; text?: string }) {
  return (
    <tr>
      <td colSpan={cols} class="muted empty">
        {text ?? t('common.none')}
      </td>
    </tr>
  );
}

async function copyText(text: string): Promise<boolean> {
  try {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(text);
      return true;
    }
  } catch {
    /* fall back below */
  }
  const area = document.createElement('textarea');
  area.value = text;
  area.setAttribute('readonly', '');
  area.style.position = 'fixed';
  area.style.opacity = '0';
  document.body.appendChild(area);
  area.select();
  let ok = false;
  try {
    ok = document.execCommand('copy');
  } catch {
    ok = false;
  }
  area.remove();
  return ok;
}

export function CopyButton({ text, testid, label }: { text: string; testid?: string; label?: string }) {
  const [state, setState] = useState<'idle' | 'copied' | 'failed'>('idle');
  useEffect(() => {
    if (state === 'idle') return undefined;
    const id = setTimeout(() => setState('idle'), 2000);
    return () => clearTimeout(id);
  }, [state]);
  return (
    <button
      type="button"
      class="btn btn-small"
      data-testid={testid}
      onClick={async () => setState((await copyText(text)) ? 'copied' : 'failed')}
    >
      {state === 'copied' ? t('common.copied') : state === 'failed' ? t('common.copyFailed') : (label ?? t('common.copy'))}
    </button>
  );
}

/** A command line to copy: shown whole, selectable, with a copy button. */
export function CommandLine({ command, testid }: { command: string; testid: string }) {
  return (
    <div class="command">
      <code data-testid={testid}>{command}</code>
      <CopyButton text={command} testid={`${testid}-copy`} />
    </div>
  );
}

const focusable =
  'a[href], button:not([disabled]), input:not([disabled]), select:not([disabled]), textarea:not([disabled]), [tabindex]:not([tabindex="-1"])';

/**
 * A modal dialog: focus moves in and is trapped (Tab and Shift+Tab cycle),
 * Escape closes, and focus returns to what opened it.
 */
export function Dialog({
  title,
  onClose,
  children,
  testid,
}: {
  title: string;
  onClose: () => void;
  children: ComponentChildren;
  testid?: string;
}) {
  const box = useRef<HTMLDivElement>(null);
  const close = useRef(onClose);
  close.current = onClose;

  useEffect(() => {
    const opener = document.activeElement as HTMLElement | null;
    const first =
      box.current?.querySelector<HTMLElement>('[data-autofocus]') ?? box.current?.querySelector<HTMLElement>(focusable);
    (first ?? box.current)?.focus();
    // On the document, so that Escape and Tab work wherever focus went
    // (content replaced under it falls back to the body).
    const onKey = (e: KeyboardEvent) => {
      if (!box.current) return;
      if (e.key === 'Escape') {
        e.preventDefault();
        e.stopPropagation();
        close.current();
        return;
      }
      if (e.key !== 'Tab') return;
      const items = Array.from(box.current.querySelectorAll<HTMLElement>(focusable)).filter(
        (el) => el.offsetParent !== null,
      );
      if (items.length === 0) {
        e.preventDefault();
        box.current.focus();
        return;
      }
      const firstItem = items[0];
      const last = items[items.length - 1];
      const active = document.activeElement as HTMLElement | null;
      const inside = active !== null && box.current.contains(active);
      if (!inside) {
        e.preventDefault();
        (e.shiftKey ? last : firstItem).focus();
      } else if (e.shiftKey && (active === firstItem || active === box.current)) {
        e.preventDefault();
        last.focus();
      } else if (!e.shiftKey && active === last) {
        e.preventDefault();
        firstItem.focus();
      }
    };
    document.addEventListener('keydown', onKey, true);
    return () => {
      document.removeEventListener('keydown', onKey, true);
      opener?.focus?.();
    };
  }, []);

  return (
    <div class="dialog-backdrop" onMouseDown={(e) => e.target === e.currentTarget && onClose()}>
      <div
        class="dialog"
        role="dialog"
        aria-modal="true"
        aria-labelledby="dialog-title"
        ref={box}
        tabIndex={-1}
        data-testid={testid ?? 'dialog'}
      >
        <h2 id="dialog-title">{title}</h2>
        {children}
      </div>
    </div>
  );
}

/**
 * Asks before an action that cannot be taken back: states the consequence in
 * plain words, optionally requires a reason (sent with the request), and
 * shows the vault's refusal inline.
 */
export function ConfirmDialog({
  title,
  consequence,
  confirmLabel,
  requireReason = false,
  danger = false,
  onConfirm,
  onClose,
}: {
  title: string;
  consequence: ComponentChildren;
  confirmLabel: string;
  requireReason?: boolean;
  danger?: boolean;
  onConfirm: (reason: string) => Promise<void>;
  onClose: () => void;
}) {
  const [reason, setReason] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [touched, setTouched] = useState(false);
  const missing = requireReason && reason.trim() === '';
  const submit = async (e: Event) => {
    e.preventDefault();
    setTouched(true);
    if (missing) return;
    setBusy(true);
    setError(null);
    try {
      await onConfirm(reason.trim());
      onClose();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <Dialog title={title} onClose={onClose} testid="confirm-dialog">
      <form noValidate onSubmit={submit}>
        <div class="consequence" data-testid="confirm-consequence">
          {consequence}
        </div>
        {requireReason ? (
          <div class="field">
            <label for="confirm-reason">{t('confirm.reason')}</label>
            <textarea
              id="confirm-reason"
              data-testid="confirm-reason"
              data-autofocus
              rows={3}
              value={reason}
              required
              aria-invalid={touched && missing}
              aria-describedby="confirm-reason-help"
              onInput={(e) => setReason((e.target as HTMLTextAreaElement).value)}
            />
            <small id="confirm-reason-help" class="muted">
              {t('confirm.reasonHelp')}
            </small>
            {touched && missing ? <Note kind="error">{t('confirm.reasonMissing')}</Note> : null}
          </div>
        ) : null}
        <ErrorNote error={error} testid="confirm-error" />
        <div class="form-actions">
          <button type="button" class="btn" onClick={onClose} data-testid="confirm-cancel">
            {t('common.cancel')}
          </button>
          <button
            type="submit"
            class={danger ? 'btn btn-danger' : 'btn btn-primary'}
            disabled={busy}
            data-testid="confirm-submit"
          >
            {busy ? t('common.working') : confirmLabel}
          </button>
        </div>
      </form>
    </Dialog>
  );
}

export function Select<T extends string>({
  id,
  label,
  value,
  options,
  onChange,
  testid,
  allLabel,
}: {
  id: string;
  label: string;
  value: T | '';
  options: { value: T; label: string }[];
  onChange: (v: T | '') => void;
  testid?: string;
  allLabel?: string;
}) {
  return (
    <div class="field">
      <label for={id}>{label}</label>
      <select
        id={id}
        data-testid={testid}
        value={value}
        onChange={(e) => onChange((e.target as HTMLSelectElement).value as T | '')}
      >
        {allLabel !== undefined ? <option value="">{allLabel}</option> : null}
        {options.map((o) => (
          <option value={o.value} key={o.value}>
            {o.label}
          </option>
        ))}
      </select>
    </div>
  );
}

export function YesNo({ value }: { value: boolean | null | undefined }) {
  if (value === null || value === undefined) return <span class="muted">—</span>;
  return <span>{value ? t('common.yes') : t('common.no')}</span>;
}

/** A list of paths, one a line. */
export function Paths({ paths }: { paths: string[] }) {
  if (!paths || paths.length === 0) return <span class="muted">—</span>;
  return (
    <span class="paths">
      {paths.map((p) => (
        <code key={p}>{p}</code>
      ))}
    </span>
  );
}

/**
 * A labelled text input (or a textarea with `rows`), with its help line: the
 * form field every page uses.
 */
export function TextField({
  id,
  label,
  value,
  onInput,
  placeholder,
  rows,
  help,
  grow = false,
  invalid = false,
}: {
  id: string;
  label: string;
  value: string;
  onInput: (v: string) => void;
  placeholder?: string;
  rows?: number;
  help?: string;
  grow?: boolean;
  invalid?: boolean;
}) {
  return (
    <div class={grow ? 'field grow' : 'field'}>
      <label for={id}>{label}</label>
      {rows ? (
        <textarea
          id={id}
          data-testid={id}
          rows={rows}
          placeholder={placeholder}
          value={value}
          aria-invalid={invalid}
          onInput={(e) => onInput((e.target as HTMLTextAreaElement).value)}
        />
      ) : (
        <input
          id={id}
          data-testid={id}
          placeholder={placeholder}
          value={value}
          aria-invalid={invalid}
          onInput={(e) => onInput((e.target as HTMLInputElement).value)}
        />
      )}
      {help ? <small class="muted">{help}</small> : null}
    </div>
  );
}
