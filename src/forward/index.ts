/** imapkit forward: one-way, append-only forwarding of new mail on top of the sync engine. */
export * from './config.js';
export * from './runner.js';
export * from './status.js';
export * from './backoff.js';
export { createSession, repositoryOptions, stateFile, FORWARD_SCOPE, REFUSED_SCOPE } from './session.js';
export { ForwardTarget, isPerMessageRefusal, type Refusal } from './target.js';
