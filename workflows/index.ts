/** Every workflow the runway worker registers. */
export { promotionWorkflow } from './promotion';
export { rollbackWorkflow } from './rollback';
export { watchWorkflow } from './watch';
