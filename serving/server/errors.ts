/**
 * Errors that become `{"error": "..."}` responses, with Triton's status codes: 400 for what the
 * client sent, 404 for unknown models or versions, 503 while not ready or when the queue is full,
 * 500 when the model itself fails.
 */
export class InferenceError extends Error {
  constructor(
    readonly status: 400 | 404 | 500 | 503,
    message: string,
    /** The message without any value the client sent, for logs (inputs are redacted there). */
    readonly redacted: string = message,
  ) {
    super(message);
    this.name = 'InferenceError';
  }
}

export const badRequest = (message: string, redacted?: string): InferenceError =>
  new InferenceError(400, message, redacted);

/** `runway serve`'s exit status when it refuses the artifact itself: starting it again cannot help. */
export const EXIT_MODEL_REFUSED = 3;

/**
 * The artifact cannot be served as given: missing, not a regular file, not the bytes its sha256
 * names, or a signature runway cannot serve. Distinct from a load that may succeed on retry (out
 * of memory, a GPU that is busy), so a fleet can fail the deploy at once instead of retrying.
 */
export class ModelRefusedError extends Error {
  readonly exitCode = EXIT_MODEL_REFUSED;
  constructor(message: string) {
    super(message);
    this.name = 'ModelRefusedError';
  }
}
