import { useCallback, useEffect, useRef, useState } from 'react';
import { ApiError } from './api';

export interface AsyncState<T> {
  data: T | undefined;
  error: string | null;
  loading: boolean;
  reload: () => void;
  setData: (data: T) => void;
}

export const messageOf = (error: unknown): string => (error instanceof Error ? error.message : String(error));

/** Runs `load` when `deps` change (cancelling the previous run); its result, error and a reload. */
export function useAsync<T>(load: (signal: AbortSignal) => Promise<T>, deps: unknown[]): AsyncState<T> {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<string | null>(null);
  const [loading, setLoading] = useState(true);
  const [version, setVersion] = useState(0);
  const loadRef = useRef(load);
  loadRef.current = load;

  useEffect(() => {
    const controller = new AbortController();
    setLoading(true);
    setError(null);
    loadRef.current(controller.signal).then(
      (value) => {
        if (controller.signal.aborted) return;
        setData(value);
        setLoading(false);
      },
      (err: unknown) => {
        if (controller.signal.aborted) return;
        setError(messageOf(err));
        setLoading(false);
      },
    );
    return () => controller.abort();
  }, [...deps, version]);

  const reload = useCallback(() => setVersion((v) => v + 1), []);
  return { data, error, loading, reload, setData };
}

/**
 * Calls `tick` every `intervalMs` while `active`, one call at a time; a failing call reports its
 * error (cleared by the next success) and polling goes on with a growing pause.
 */
export function usePolling(tick: (signal: AbortSignal) => Promise<void>, active: boolean, intervalMs = 1500): string | null {
  const [error, setError] = useState<string | null>(null);
  const tickRef = useRef(tick);
  tickRef.current = tick;
  useEffect(() => {
    if (!active) return;
    const controller = new AbortController();
    let timer: ReturnType<typeof setTimeout>;
    let failures = 0;
    const run = async () => {
      try {
        await tickRef.current(controller.signal);
        failures = 0;
        setError(null);
      } catch (err) {
        if (controller.signal.aborted) return;
        failures++;
        setError(messageOf(err));
      }
      if (!controller.signal.aborted) timer = setTimeout(run, intervalMs * Math.min(8, 2 ** failures));
    };
    timer = setTimeout(run, intervalMs);
    return () => {
      controller.abort();
      clearTimeout(timer);
    };
  }, [active, intervalMs]);
  return active ? error : null;
}

/** `value`, once it has stopped changing for `ms`. */
export function useDebounced<T>(value: T, ms: number): T {
  const [settled, setSettled] = useState(value);
  useEffect(() => {
    const timer = setTimeout(() => setSettled(value), ms);
    return () => clearTimeout(timer);
  }, [value, ms]);
  return settled;
}

export const isCancel = (error: unknown) => error instanceof ApiError && error.message === 'Cancelled';
