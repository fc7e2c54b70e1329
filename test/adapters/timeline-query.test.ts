/** The timeline route's query parsing, without HTTP. */
import { describe, expect, it } from 'vitest';
import { parseTimelineQuery, TIMELINE_DEFAULT_LIMIT } from '../../adapters/http';
import { suiteCatalog } from './http-routes.suite';

const parse = (raw: Record<string, unknown>) => parseTimelineQuery(suiteCatalog, raw);

describe('parseTimelineQuery', () => {
  it('defaults the limit and leaves absent filters out', () => {
    expect(parse({})).toEqual({ success: true, query: { limit: TIMELINE_DEFAULT_LIMIT } });
  });

  it('reads every parameter', () => {
    const result = parse({
      organizationId: 'org_1',
      actor: 'user_1',
      eventTypes: ['org.created, org.member_joined', 'auth.user_signed_up'],
      limit: '10',
      cursor: 'abc',
      from: '2025-01-01',
      to: '2025-01-31T12:00:00+02:00',
    });
    expect(result).toEqual({
      success: true,
      query: {
        organizationId: 'org_1',
        actor: 'user_1',
        eventTypes: ['org.created', 'org.member_joined', 'auth.user_signed_up'],
        limit: 10,
        cursor: 'abc',
        from: new Date('2025-01-01T00:00:00Z'),
        to: new Date('2025-01-31T10:00:00Z'),
      },
    });
  });

  it('refuses what is not a clean value, naming the parameter', () => {
    const bad: [Record<string, unknown>, (string | number)[]][] = [
      [{ limit: '1.5' }, ['limit']],
      [{ limit: '-1' }, ['limit']],
      [{ limit: ['1', '2'] }, ['limit']],
      [{ from: '2025-13-01' }, ['from']],
      [{ to: 'now' }, ['to']],
      [{ eventTypes: 'org.created,Org.Created' }, ['eventTypes', 1]],
      [{ actor: ' ' }, ['actor']],
      [{ cursor: '' }, ['cursor']],
      [{ cursor: 'has space' }, ['cursor']],
      [{ cursor: 'padded==' }, ['cursor']],
      [{ cursor: 'x'.repeat(1025) }, ['cursor']],
      [{ organizationId: { nested: 'x' } }, ['organizationId']],
      [{ sort: 'asc' }, []],
      // What PostgreSQL cannot store or represent.
      [{ organizationId: 'org\u0000' }, ['organizationId']],
      [{ actor: '\u0000' }, ['actor']],
      [{ actor: 'user_\ud800' }, ['actor']],
      [{ cursor: 'abc\u0000' }, ['cursor']],
      [{ eventTypes: 'org.created\u0000' }, ['eventTypes', 0]],
      [{ from: '0000-12-31T23:59:59Z' }, ['from']],
      [{ to: '0001-01-01T00:00:00+00:01' }, ['to']],
      [{ from: '+010000-01-01T00:00:00Z' }, ['from']],
    ];
    for (const [raw, path] of bad) {
      const result = parse(raw);
      const issues = result.success ? [] : result.issues.map((i) => i.path);
      expect(issues, JSON.stringify(raw)).toContainEqual(path);
    }
  });

  it('accepts the edges of the date range and characters outside the BMP', () => {
    const result = parse({ from: '0001-01-01T00:00:00Z', to: '9999-12-31T23:59:59.999Z', actor: 'user_😀' });
    expect(result).toMatchObject({
      success: true,
      query: { from: new Date('0001-01-01T00:00:00Z'), to: new Date('9999-12-31T23:59:59.999Z'), actor: 'user_😀' },
    });
  });

  it('does not echo the rejected value in its messages', () => {
    const result = parse({ eventTypes: 'secret.token_abc123' });
    expect(JSON.stringify(result)).not.toContain('token_abc123');
  });
});
