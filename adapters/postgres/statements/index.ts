/** The SQL of every storage operation, one statement each (CTEs chain the steps): atomic, one round trip. */
export * from './append';
export * from './text';
export * from './claim';
export * from './settle';
export * from './subscribers';
export * from './listeners';
export * from './queries';
