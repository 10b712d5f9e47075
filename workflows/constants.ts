/**
 * Names shared by workflows, the worker and clients. Workflow code imports this module, so it
 * must stay free of Node built-ins and I/O.
 */

/** The one task queue runway's worker polls; clients start promotions on it. */
export const TASK_QUEUE = 'runway';

/** Namespace used when the platform configuration names none (the dev server creates it). */
export const DEFAULT_NAMESPACE = 'default';
