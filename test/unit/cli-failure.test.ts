/** What a failed command prints: the root cause first, then the chain of causes that led there. */
import { ActivityFailure, ApplicationFailure, WorkflowFailedError } from '@temporalio/client';
import { RetryState } from '@temporalio/common';
import { describe, expect, it } from 'vitest';
import { causeChain, failureMessage } from '../../cli/failure';

describe('failureMessage', () => {
  const root = ApplicationFailure.nonRetryable(
    'fraud-detector v99 is not in the registry',
    'VersionNotFound',
  );
  const activity = new ActivityFailure(
    'Activity task failed',
    'resolveRollbackTarget',
    '1',
    RetryState.NON_RETRYABLE_FAILURE,
    'worker',
    root,
  );
  const workflow = new WorkflowFailedError(
    'Workflow execution failed',
    activity,
    RetryState.NON_RETRYABLE_FAILURE,
  );

  it("names the root cause, never only 'Workflow execution failed'", () => {
    expect(failureMessage(workflow)).toBe(
      'fraud-detector v99 is not in the registry\n' +
        '  cause chain: workflow failed ← activity resolveRollbackTarget failed ← fraud-detector v99 is not in the registry',
    );
  });

  it("puts the command's own words first", () => {
    const err = new Error('rollback of fraud-detector failed', { cause: workflow });
    expect(failureMessage(err).split('\n')[0]).toBe(
      'rollback of fraud-detector failed: fraud-detector v99 is not in the registry',
    );
    expect(causeChain(err)).toHaveLength(4);
  });

  it('leaves a plain error as it is', () => {
    expect(failureMessage(new Error('--rps: expected a positive number'))).toBe(
      '--rps: expected a positive number',
    );
    expect(failureMessage('text')).toBe('text');
  });
});
