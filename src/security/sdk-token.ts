import { SignJWT } from 'jose';

/** A JWT exactly as the Visual Layer SDKs mint it: HS256, kid = sub = api_key, iss "sdk". */
export async function mintSdkToken(apiKey: string, apiSecret: string, ttlSeconds = 600): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ sub: apiKey, iss: 'sdk' })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT', kid: apiKey })
    .setIssuedAt(now)
    .setExpirationTime(now + ttlSeconds)
    .sign(new TextEncoder().encode(apiSecret));
}
