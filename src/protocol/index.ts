/**
 * The protocol layer's public face: the command AST and response values, the streaming command
 * parser, sequence sets, the response writer and modified UTF-7.
 */
export * from './ast.js';
export * from './values.js';
export * from './parser.js';
export * from './sequence.js';
export * from './writer.js';
export * from './utf7.js';
export * from './format-command.js';
