import { createHash, createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  PasswordSchemeError,
  dummyVerify,
  hashPassword,
  passwordScheme,
  saslPrep,
  scramCredentials,
  scryptCostOf,
  unsupportedReason,
  verifyPassword,
} from '../../src/auth/password.js';

describe('hashPassword / verifyPassword', () => {
  it('produces a self-describing $scrypt$ string with the default cost', async () => {
    const h = await hashPassword('secret');
    expect(h).toMatch(/^\$scrypt\$ln=15,r=8,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$/);
    expect(await verifyPassword('secret', h)).toBe(true);
    expect(await verifyPassword('Secret', h)).toBe(false);
  });

  it('uses a fresh salt each time', async () => {
    const a = await hashPassword('same', { ln: 4 });
    const b = await hashPassword('same', { ln: 4 });
    expect(a).not.toBe(b);
    expect(await verifyPassword('same', a)).toBe(true);
    expect(await verifyPassword('same', b)).toBe(true);
    expect(scryptCostOf(a)).toBe(4);
  });

  it('accepts the {SCRYPT} prefixed form', async () => {
    const h = await hashPassword('pw', { ln: 4 });
    expect(await verifyPassword('pw', `{SCRYPT}${h}`)).toBe(true);
    expect(await verifyPassword('px', `{scrypt}${h}`)).toBe(false);
    expect(passwordScheme(`{scrypt}${h}`)).toBe('SCRYPT');
  });

  it('accepts Dovecot {PLAIN}, {CLEAR} and {PLAIN.B64}', async () => {
    expect(await verifyPassword('hunter2', '{PLAIN}hunter2')).toBe(true);
    expect(await verifyPassword('hunter', '{PLAIN}hunter2')).toBe(false);
    expect(await verifyPassword('a:b', '{CLEAR}a:b')).toBe(true);
    expect(await verifyPassword('', '{PLAIN}')).toBe(true);
    expect(await verifyPassword('x', '{PLAIN}')).toBe(false);
    expect(await verifyPassword('héllo', `{PLAIN.B64}${Buffer.from('héllo').toString('base64')}`)).toBe(true);
  });

  it('handles non-ASCII passwords', async () => {
    const h = await hashPassword('pässwörd ✓', { ln: 4 });
    expect(await verifyPassword('pässwörd ✓', h)).toBe(true);
    expect(await verifyPassword('passwort ✓', h)).toBe(false);
  });

  it('refuses unsupported schemes with a clear reason', async () => {
    await expect(verifyPassword('x', '{SHA512-CRYPT}$6$abc$def')).rejects.toThrow(/\{SHA512-CRYPT\} is not supported/);
    await expect(verifyPassword('x', 'plaintext-without-scheme')).rejects.toBeInstanceOf(PasswordSchemeError);
    expect(unsupportedReason('{BLF-CRYPT}$2y$05$xyz')).toMatch(/BLF-CRYPT/);
    expect(unsupportedReason('{PLAIN}x')).toBeNull();
  });

  it('refuses malformed or hostile scrypt strings', async () => {
    await expect(verifyPassword('x', '$scrypt$ln=15,r=8,p=1$abc')).rejects.toThrow(/malformed/);
    await expect(verifyPassword('x', '$scrypt$ln=40,r=8,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2g')).rejects.toThrow(/out of range/);
    await expect(verifyPassword('x', '$scrypt$ln=4,r=8,p=1$c2FsdHNhbHRzYWx0$!!!')).rejects.toThrow(/base64/);
  });

  it('dummyVerify resolves', async () => {
    await expect(dummyVerify({ ln: 4 })).resolves.toBeUndefined();
  });
});

describe('scramCredentials', () => {
  // RFC 7677 section 3: user "user", password "pencil".
  const salt = Buffer.from('W22ZaJ0SNY7soEsUEjb6gQ==', 'base64');
  const clientFirstBare = 'n=user,r=rOprNGfwEbeRWgbNEkqO';
  const serverFirst = 'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096';
  const clientFinalNoProof = 'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0';
  const authMessage = `${clientFirstBare},${serverFirst},${clientFinalNoProof}`;

  it('gives the server signature of the RFC 7677 example', () => {
    const c = scramCredentials('pencil', 4096, salt);
    expect(c.iterations).toBe(4096);
    expect(c.salt.equals(salt)).toBe(true);
    const serverSignature = createHmac('sha256', c.serverKey).update(authMessage).digest('base64');
    expect(serverSignature).toBe('6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=');
  });

  it('verifies the client proof of the RFC 7677 example', () => {
    const c = scramCredentials('pencil', 4096, salt);
    const proof = Buffer.from('dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=', 'base64');
    const clientSignature = createHmac('sha256', c.storedKey).update(authMessage).digest();
    const clientKey = Buffer.alloc(32);
    for (let i = 0; i < 32; i++) clientKey[i] = proof[i]! ^ clientSignature[i]!;
    expect(createHash('sha256').update(clientKey).digest().equals(c.storedKey)).toBe(true);
    const wrong = scramCredentials('pencil2', 4096, salt);
    expect(wrong.storedKey.equals(c.storedKey)).toBe(false);
  });

  it('uses a random 16-byte salt by default', () => {
    const a = scramCredentials('pw', 16);
    const b = scramCredentials('pw', 16);
    expect(a.salt.length).toBe(16);
    expect(a.salt.equals(b.salt)).toBe(false);
    expect(a.storedKey.equals(b.storedKey)).toBe(false);
    expect(() => scramCredentials('pw', 0)).toThrow(RangeError);
  });

  it('applies SASLprep mapping', () => {
    expect(saslPrep('I\u00ADX')).toBe('IX');
    expect(saslPrep('a\u00A0b')).toBe('a b');
    expect(saslPrep('\u2168')).toBe('IX');
    const s = Buffer.alloc(16, 1);
    expect(scramCredentials('I\u00ADX', 16, s).storedKey.equals(scramCredentials('IX', 16, s).storedKey)).toBe(true);
  });
});
