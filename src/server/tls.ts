/**
 * TLS material: loading a certificate and key from files, making the SecureContext shared by
 * STARTTLS and implicit TLS, and a self-signed pair for --demo made with the `openssl` binary.
 */
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { createSecureContext, type SecureContext } from 'node:tls';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** A PEM certificate chain and its private key. */
export interface TlsMaterial {
  cert: Buffer;
  key: Buffer;
}

/** Read PEM files; the error names the file that could not be read. */
export async function loadTlsFiles(certPath: string, keyPath: string): Promise<TlsMaterial> {
  const read = async (path: string, what: string): Promise<Buffer> => {
    try {
      return await fs.readFile(path);
    } catch (err) {
      throw new Error(`cannot read TLS ${what} ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  };
  return { cert: await read(certPath, 'certificate'), key: await read(keyPath, 'key') };
}

/** The server's TLS context (TLS 1.2 and later). Throws when cert and key do not match or parse. */
export function createTlsContext(material: TlsMaterial): SecureContext {
  return createSecureContext({ cert: material.cert, key: material.key, minVersion: 'TLSv1.2' });
}

/**
 * A self-signed certificate for localhost/127.0.0.1 in `dir` (cert.pem, key.pem), made with
 * `openssl` unless both files already exist there. For --demo only: clients will warn about it.
 */
export async function generateSelfSigned(dir: string): Promise<TlsMaterial & { certPath: string; keyPath: string }> {
  const certPath = join(dir, 'cert.pem');
  const keyPath = join(dir, 'key.pem');
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  const exists = async (p: string): Promise<boolean> => fs.access(p).then(() => true, () => false);
  if (!((await exists(certPath)) && (await exists(keyPath)))) {
    try {
      await run('openssl', [
        'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
        '-keyout', keyPath, '-out', certPath, '-days', '365', '-subj', '/CN=localhost',
        '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1',
      ]);
    } catch (err) {
      throw new Error(`cannot generate a self-signed certificate with openssl: ${(err as Error).message}`);
    }
    await fs.chmod(keyPath, 0o600);
  }
  return { ...(await loadTlsFiles(certPath, keyPath)), certPath, keyPath };
}
