import crypto from 'node:crypto';

/**
 * A UUID-shaped id derived from a name (RFC 9562 version 8 layout): the same name always gives the
 * same id, so work that is retried writes the same rows instead of new ones.
 */
export function deterministicUuid(name: string): string {
  const hex = crypto.createHash('sha256').update(name).digest('hex');
  const variant = ((parseInt(hex[16]!, 16) & 0x3) | 0x8).toString(16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-8${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Whether `text` has a UUID's shape: ids of another shape cannot exist, so lookups skip them. */
export function isUuid(text: string): boolean {
  return UUID_PATTERN.test(text);
}
