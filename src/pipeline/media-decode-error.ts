/**
 * A file that cannot be decoded as the media it claims to be. `reason` is a
 * short human-readable explanation suitable for showing next to the file in
 * an ingest report; the error itself is expected, not a bug.
 */
export class MediaDecodeError extends Error {
  override readonly name = 'MediaDecodeError';

  constructor(readonly reason: string, options?: ErrorOptions) {
    super(reason, options);
  }
}
