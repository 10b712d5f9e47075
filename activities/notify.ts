/** Notifications: one log line always, plus the platform's hook (chat, pager) when configured. */
import type { ActivityDeps } from './deps';
import type { NotifyInput } from './contracts';

export function notifyActivities({ logger, onNotify }: ActivityDeps) {
  const log = logger.child('notify');
  return {
    async notify(input: NotifyInput): Promise<void> {
      log.info(input.message, { model: input.model, version: input.version, event: input.event });
      await onNotify?.(input);
    },
  };
}
