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
      [{ organizationId: { nested: 'x' } }, ['organizationId']],
      [{ sort: 'asc' }, []],
    ];
    for (const [raw, path] of bad) {
      const result = parse(raw);
      expect(result.success, JSON.stringify(raw)).toBe(false);
      if (!result.success) expect(result.issues.map((i) => i.path), JSON.stringify(raw)).toContainEqual(path);
    }
  });

  it('does not echo the rejected value in its messages', () => {
    const result = parse({ eventTypes: 'secret.token_abc123' });
    expect(JSON.stringify(result)).not.toContain('token_abc123');
  });
});
