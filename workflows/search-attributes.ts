import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

/**
 * Search attributes that make promotions findable in the Temporal UI and with visibility
 * queries such as `RunwayModel="fraud-detector" AND RunwayOutcome="rolled_back"`.
 * Workflows upsert them; the server helper registers them; clients query them.
 */
export const RunwayModel = defineSearchAttributeKey('RunwayModel', SearchAttributeType.KEYWORD);
export const RunwayVersion = defineSearchAttributeKey('RunwayVersion', SearchAttributeType.KEYWORD);
export const RunwayStage = defineSearchAttributeKey('RunwayStage', SearchAttributeType.KEYWORD);
export const RunwayOutcome = defineSearchAttributeKey('RunwayOutcome', SearchAttributeType.KEYWORD);

/** Every key above, for registration on a server and for checks that it is complete. */
export const RUNWAY_SEARCH_ATTRIBUTES = [RunwayModel, RunwayVersion, RunwayStage, RunwayOutcome] as const;
