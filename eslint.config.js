// ESLint flat config: typescript-eslint's recommended rules, without type
// information (tsc already type-checks; this keeps `npm run lint` fast).
import js from '@eslint/js';
import { defineConfig } from 'eslint/config';
import tseslint from 'typescript-eslint';

/** Node globals for the plain JavaScript files (scripts/); TypeScript files get theirs from @types/node. */
const nodeGlobals = Object.fromEntries(
  [
    'process',
    'console',
    'Buffer',
    'URL',
    'URLSearchParams',
    'setTimeout',
    'clearTimeout',
    'setInterval',
    'clearInterval',
    'setImmediate',
    'queueMicrotask',
    'structuredClone',
    'fetch',
    'AbortController',
    'AbortSignal',
  ].map((name) => [name, 'readonly']),
);

export default defineConfig(
  {
    ignores: [
      'dist/',
      'node_modules/',
      'docs/api/',
      'coverage/',
      '.tmp/',
      'test/types/generated/',
      'examples/**/.data/',
    ],
  },
  js.configs.recommended,
  tseslint.configs.recommended,
  {
    files: ['**/*.{js,mjs,cjs}'],
    languageOptions: { globals: nodeGlobals },
  },
  {
    rules: {
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_' },
      ],
      '@typescript-eslint/consistent-type-imports': [
        'error',
        { fixStyle: 'inline-type-imports', disallowTypeAnnotations: false },
      ],
    },
  },
  {
    // Library code logs only through the optional Logger (src/logger.ts).
    files: ['src/**', 'adapters/**'],
    rules: { 'no-console': 'error' },
  },
  {
    // Adapters reach the core only through the package name: a relative path
    // into src/ makes the bundler put a second copy of the core (and of its
    // error classes, so `instanceof` fails) into the adapter's chunk.
    files: ['adapters/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: '^\\.{1,2}/(?:\\.\\./)*src(?:/|$)',
              message: "Import the core as '@blawby/event-bus', not by a relative path into src/.",
            },
          ],
        },
      ],
    },
  },
  {
    // Type tests state compile errors and loose shapes on purpose.
    files: ['test/**/*.test-d.ts'],
    rules: { '@typescript-eslint/no-unused-vars': 'off', '@typescript-eslint/no-explicit-any': 'off' },
  },
);
