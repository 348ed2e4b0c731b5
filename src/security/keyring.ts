import crypto from 'node:crypto';

/**
 * Keys derived from the one server key: one for encrypting API secrets at rest, one for signing
 * session cookies and links. Rotating the server key invalidates both, by design.
 */
export class Keyring {
  private readonly encryptionKey: Buffer;
  private readonly signingKey: Buffer;

  constructor(serverKey: string) {
    const ikm = Buffer.from(serverKey, 'utf8');
    this.encryptionKey = Buffer.from(crypto.hkdfSync('sha256', ikm, 'vizdex', 'api-secret-encryption', 32));
    this.signingKey = Buffer.from(crypto.hkdfSync('sha256', ikm, 'vizdex', 'signing', 32));
  }

  /** AES-256-GCM; output is `v1.<iv>.<tag>.<ciphertext>` in base64url. */
  encrypt(plaintext: string): string {
    const iv = crypto.randomBytes(12);
    const cipher = crypto.createCipheriv('aes-256-gcm', this.encryptionKey, iv);
    const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return ['v1', iv, cipher.getAuthTag(), body].map((p) => (typeof p === 'string' ? p : p.toString('base64url'))).join('.');
  }

  decrypt(sealed: string): string {
    const [version, iv, tag, body] = sealed.split('.');
    if (version !== 'v1' || !iv || !tag || body === undefined) throw new Error('Unrecognised sealed value');
    const decipher = crypto.createDecipheriv('aes-256-gcm', this.encryptionKey, Buffer.from(iv, 'base64url'));
    decipher.setAuthTag(Buffer.from(tag, 'base64url'));
    return Buffer.concat([decipher.update(Buffer.from(body, 'base64url')), decipher.final()]).toString('utf8');
  }

  sign(value: string): string {
    return crypto.createHmac('sha256', this.signingKey).update(value).digest('base64url');
  }

  verify(value: string, signature: string): boolean {
    const expected = Buffer.from(this.sign(value));
    const given = Buffer.from(signature);
    return expected.length === given.length && crypto.timingSafeEqual(expected, given);
  }
}

export function randomToken(bytes = 32): string {
  return crypto.randomBytes(bytes).toString('base64url');
}

export function sha256Hex(value: string): string {
  return crypto.createHash('sha256').update(value).digest('hex');
}
