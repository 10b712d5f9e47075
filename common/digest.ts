/** sha256 digests: of bytes in memory, and of files streamed so a multi-GB model never sits in memory. */
import crypto from 'node:crypto';
import fs from 'node:fs';

export interface Digest {
  sha256: string;
  size: number;
}

/** Hex sha256 of a string (UTF-8) or bytes. */
export function sha256Hex(data: string | Uint8Array): string {
  return crypto.createHash('sha256').update(data).digest('hex');
}

export async function digestFile(file: string): Promise<Digest> {
  const hash = crypto.createHash('sha256');
  let size = 0;
  for await (const chunk of fs.createReadStream(file)) {
    const buf = chunk as Buffer;
    size += buf.length;
    hash.update(buf);
  }
  return { sha256: hash.digest('hex'), size };
}
