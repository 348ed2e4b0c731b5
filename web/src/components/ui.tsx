import { useEffect, useRef, useState, type ReactNode } from 'react';
import type { DatasetStatus } from '../api';

export function ErrorBanner({ error, onRetry, onDismiss }: { error: string | null | undefined; onRetry?: () => void; onDismiss?: () => void }) {
  if (!error) return null;
  return (
    <div className="banner banner-error" role="alert">
      <span>{error}</span>
      {onRetry && (
        <button type="button" className="link" onClick={onRetry}>
          Retry
        </button>
      )}
      {onDismiss && (
        <button type="button" className="link" aria-label="Dismiss" onClick={onDismiss}>
          ×
        </button>
      )}
    </div>
  );
}

export function ProgressBar({ value, label }: { value: number; label?: string }) {
  const pct = Math.max(0, Math.min(100, Math.round(value)));
  return (
    <div className="progress" role="progressbar" aria-valuemin={0} aria-valuemax={100} aria-valuenow={pct} aria-label={label ?? 'progress'}>
      <div className="progress-fill" style={{ width: `${pct}%` }} />
      <span className="progress-text">{label ? `${label} · ` : ''}{pct}%</span>
    </div>
  );
}

const STATUS_CLASS: Record<DatasetStatus, string> = {
  DRAFT: 'grey',
  INDEXING: 'blue',
  READY: 'green',
  'READ ONLY': 'amber',
  'PARTIAL INDEX': 'amber',
  ERROR: 'red',
};

export function StatusBadge({ status }: { status: DatasetStatus }) {
  return (
    <span className={`badge badge-${STATUS_CLASS[status] ?? 'grey'}`} data-testid="status">
      {status}
    </span>
  );
}

export function Spinner({ label = 'Loading…' }: { label?: string }) {
  return (
    <div className="spinner" role="status">
      <span className="spinner-dot" aria-hidden /> {label}
    </div>
  );
}

/** A modal dialog (native <dialog>): Escape and the close button call onClose. */
export function Dialog({ title, onClose, children, wide }: { title: string; onClose: () => void; children: ReactNode; wide?: boolean }) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const dialog = ref.current;
    if (dialog && !dialog.open) dialog.showModal();
    return () => dialog?.close();
  }, []);
  return (
    <dialog
      ref={ref}
      className={`dialog${wide ? ' dialog-wide' : ''}`}
      aria-label={title}
      onCancel={(event) => {
        event.preventDefault();
        onClose();
      }}
    >
      <header className="dialog-header">
        <h2>{title}</h2>
        <button type="button" className="icon" aria-label="Close dialog" onClick={onClose}>
          ×
        </button>
      </header>
      <div className="dialog-body">{children}</div>
    </dialog>
  );
}

/** Copies text to the clipboard (falls back to a selection copy where the Clipboard API is unavailable). */
export function CopyButton({ text, label = 'Copy' }: { text: string; label?: string }) {
  const [done, setDone] = useState<string | null>(null);
  const copy = async () => {
    try {
      if (navigator.clipboard && window.isSecureContext) await navigator.clipboard.writeText(text);
      else {
        const area = document.createElement('textarea');
        area.value = text;
        document.body.appendChild(area);
        area.select();
        const ok = document.execCommand('copy');
        area.remove();
        if (!ok) throw new Error('copy refused');
      }
      setDone('Copied');
    } catch {
      setDone('Copy failed: select the text and copy it');
    }
    setTimeout(() => setDone(null), 2000);
  };
  return (
    <button type="button" className="small" onClick={copy}>
      {done ?? label}
    </button>
  );
}

/** A button that is disabled with its reason shown (title and text), as the API would refuse it. */
export function GuardedButton({ reason, onClick, children, className }: { reason: string | null; onClick: () => void; children: ReactNode; className?: string }) {
  return (
    <span className="guarded">
      <button type="button" className={className} disabled={reason !== null} title={reason ?? undefined} data-reason={reason ?? undefined} onClick={onClick}>
        {children}
      </button>
    </span>
  );
}
