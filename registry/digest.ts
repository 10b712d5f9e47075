/** The registry's digests are the code base's one sha256 helper (common/digest.ts). */
export { digestFile, sha256Hex, type Digest } from '../common/digest';
