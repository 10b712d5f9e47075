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
