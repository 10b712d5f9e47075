/**
 * Writes the JSON Schema of runway's own webhook payload (format `json`):
 *   node dist/notifications/schema.js > docs/notification.schema.json
 * test/integration/notify-webhooks.test.ts keeps the committed file in step with the code.
 */
import { notificationJsonSchema } from './payload';

if (require.main === module) process.stdout.write(JSON.stringify(notificationJsonSchema(), null, 2) + '\n');
