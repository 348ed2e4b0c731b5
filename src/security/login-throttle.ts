/**
 * Counts failed log-ins (and failed sign-ups) per email and per client address in a sliding window,
 * so password guessing is slowed to a handful of tries per quarter hour.
 *
 * In memory and bounded: at most `maxKeys` keys are tracked, the least recently touched are dropped
 * first. With several API processes (scale-out) each keeps its own window, so an attacker spread
 * over N processes gets N times the budget; that is still bounded, and needs no shared store.
 */
export interface LoginThrottleOptions {
  /** Failures allowed in the window; the next attempt is refused. */
  maxFailures: number;
  windowMs: number;
  /** How many emails/addresses are tracked at most. */
  maxKeys: number;
  now?: () => number;
}

export const DEFAULT_LOGIN_THROTTLE: LoginThrottleOptions = { maxFailures: 10, windowMs: 15 * 60 * 1000, maxKeys: 10_000 };

export class LoginThrottle {
  /** key → failure timestamps (ms), oldest first; Map order doubles as the LRU order. */
  private readonly failures = new Map<string, number[]>();
  private readonly now: () => number;

  constructor(private readonly options: LoginThrottleOptions = DEFAULT_LOGIN_THROTTLE) {
    this.now = options.now ?? Date.now;
  }

  /** Seconds until one of `keys` may try again, or 0 when none is over its budget. */
  retryAfterSeconds(keys: string[]): number {
    const now = this.now();
    let wait = 0;
    for (const key of keys) {
      const times = this.live(key, now);
      if (times && times.length >= this.options.maxFailures) {
        const until = times[times.length - this.options.maxFailures]! + this.options.windowMs;
        wait = Math.max(wait, Math.ceil((until - now) / 1000));
      }
    }
    return wait;
  }

  recordFailure(keys: string[]): void {
    const now = this.now();
    for (const key of keys) {
      const times = this.live(key, now) ?? [];
      times.push(now);
      // Only the newest maxFailures matter for the decision: the array stays small.
      if (times.length > this.options.maxFailures) times.splice(0, times.length - this.options.maxFailures);
      this.failures.delete(key);
      this.failures.set(key, times);
    }
    while (this.failures.size > this.options.maxKeys) {
      const oldest = this.failures.keys().next().value as string;
      this.failures.delete(oldest);
    }
  }

  reset(key: string): void {
    this.failures.delete(key);
  }

  /** How many keys are tracked (for tests of the bound). */
  get size(): number {
    return this.failures.size;
  }

  private live(key: string, now: number): number[] | undefined {
    const times = this.failures.get(key);
    if (!times) return undefined;
    const cutoff = now - this.options.windowMs;
    while (times.length > 0 && times[0]! <= cutoff) times.shift();
    if (times.length === 0) {
      this.failures.delete(key);
      return undefined;
    }
    return times;
  }
}

export const emailKey = (email: string): string => `email:${email.trim().toLowerCase()}`;
export const ipKey = (ip: string): string => `ip:${ip}`;
