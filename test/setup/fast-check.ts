/**
 * Property and fuzz tests use one fixed seed by default so that CI is repeatable; set
 * FC_SEED=random to explore new inputs (or FC_SEED=<n> to replay a failure's seed).
 */
import fc from 'fast-check';

const env = process.env.FC_SEED;
if (env !== 'random') fc.configureGlobal({ seed: env !== undefined && /^-?\d+$/.test(env) ? Number(env) : 20261122 });
