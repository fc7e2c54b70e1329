import { CloudEvent, HTTP, ValidationError } from 'cloudevents';
import { describe, expect, it } from 'vitest';
import { fromCloudEvent, toCloudEvent } from '../src/cloudevents';
import type { BaseEvent } from '../src/envelope';
import { EventBusError } from '../src/errors';
import { uuidv7 } from '../src/uuidv7';

function fullEvent(): BaseEvent {
  return {
    eventId: uuidv7(),
    eventType: 'auth.user_signed_up',
    eventVersion: '1.2.0',
    timestamp: new Date('2026-03-04T05:06:07.089Z'),
    actor: 'user_123',
    actorType: 'user',
    organizationId: 'org_9',
    payload: { email: 'ada@example.com', name: 'Ada', nested: { tags: ['a', 'b'], n: 1.5, ok: true, none: null } },
    metadata: {
      source: 'api',
      environment: 'production',
      ipAddress: '203.0.113.7',
      userAgent: 'Mozilla/5.0',
      requestId: 'req-1',
      correlationId: '0190a6e0-0000-7000-8000-000000000001',
      causationId: '0190a6e0-0000-7000-8000-000000000002',
      traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
      custom: { plan: 'pro', seats: 3 },
    },
    processed: false,
    retryCount: 0,
  };
}

function minimalEvent(): BaseEvent {
  return {
    eventId: uuidv7(),
    eventType: 'org.created',
    eventVersion: '1.0.0',
    timestamp: new Date('2026-01-01T00:00:00.000Z'),
    payload: {},
    metadata: { source: 'webhook', environment: 'development' },
    processed: false,
    retryCount: 0,
  };
}

function expectInvalid(input: unknown): EventBusError {
  try {
    fromCloudEvent(input);
  } catch (err) {
    expect(EventBusError.is(err, 'INVALID_CLOUD_EVENT')).toBe(true);
    return err as EventBusError;
  }
  throw new Error('fromCloudEvent accepted an invalid CloudEvent');
}

describe('toCloudEvent', () => {
  it('maps the envelope onto CloudEvents 1.0 attributes and lower-case extensions', () => {
    const event = fullEvent();
    const ce = toCloudEvent(event);
    expect(ce).toMatchObject({
      specversion: '1.0',
      id: event.eventId,
      type: 'auth.user_signed_up',
      source: '/blawby/api',
      time: '2026-03-04T05:06:07.089Z',
      datacontenttype: 'application/json',
      data: event.payload,
      eventversion: '1.2.0',
      actor: 'user_123',
      actortype: 'user',
      organizationid: 'org_9',
      correlationid: event.metadata.correlationId,
      causationid: event.metadata.causationId,
      traceparent: event.metadata.traceparent,
    });
    expect(ce).not.toHaveProperty('dataschema');
    expect(ce).not.toHaveProperty('processed');
    for (const name of Object.keys(ce)) expect(name).toMatch(/^[a-z0-9_]+$/);
    for (const name of Object.keys(ce).filter((n) => n !== 'data_base64')) expect(name.length).toBeLessThanOrEqual(20);
    // The remaining metadata travels as JSON text, without the fields that have their own attribute.
    expect(JSON.parse(ce.blawbymetadata as string)).toEqual({
      source: 'api',
      environment: 'production',
      ipAddress: '203.0.113.7',
      userAgent: 'Mozilla/5.0',
      requestId: 'req-1',
      custom: { plan: 'pro', seats: 3 },
    });
  });

  it('leaves out absent optional fields and takes source, dataschema and subject from options', () => {
    const ce = toCloudEvent(minimalEvent(), {
      source: 'https://api.blawby.com/events',
      dataschema: 'https://schemas.blawby.com/org.created/1.0.0.json',
      subject: 'org_1',
    });
    expect(ce.source).toBe('https://api.blawby.com/events');
    expect(ce.dataschema).toBe('https://schemas.blawby.com/org.created/1.0.0.json');
    expect(ce.subject).toBe('org_1');
    for (const name of ['actor', 'actortype', 'organizationid', 'correlationid', 'causationid', 'traceparent']) {
      expect(ce).not.toHaveProperty(name);
    }
  });

  it('escapes a metadata.source that is not URI-safe, and reads it back', () => {
    const event = { ...minimalEvent(), metadata: { source: 'my app/ü', environment: 'test' } };
    const ce = toCloudEvent(event);
    expect(ce.source).toBe('/blawby/my%20app%2F%C3%BC');
    expect(new CloudEvent(ce).validate()).toBe(true);
    expect(fromCloudEvent(ce)).toEqual(event);
  });

  it('refuses options that would make an invalid CloudEvent', () => {
    const event = minimalEvent();
    for (const options of [{ source: '' }, { source: 'has space' }, { dataschema: 'relative/x.json' }, { subject: '' }]) {
      expect(() => toCloudEvent(event, options)).toThrow(expect.objectContaining({ code: 'INVALID_OPTION' }));
    }
  });

  it('refuses metadata that cannot be sent as JSON', () => {
    const event = { ...minimalEvent(), metadata: { source: 'api', environment: 'x', big: 10n } };
    expect(() => toCloudEvent(event)).toThrow(expect.objectContaining({ code: 'INVALID_CLOUD_EVENT' }));
  });

  it('refuses an event whose timestamp is not a valid date', () => {
    const event = { ...minimalEvent(), timestamp: new Date('nope') };
    expect(() => toCloudEvent(event)).toThrow(expect.objectContaining({ code: 'INVALID_CLOUD_EVENT' }));
  });
});

describe('round trip', () => {
  it.each([
    ['every field set', fullEvent],
    ['only required fields', minimalEvent],
  ])('fromCloudEvent(toCloudEvent(e)) equals e (%s)', (_, make) => {
    const event = make();
    expect(fromCloudEvent(toCloudEvent(event))).toEqual(event);
    // Also through JSON text, as it travels over the wire.
    expect(fromCloudEvent(JSON.stringify(toCloudEvent(event)))).toEqual(event);
  });

  it('does not carry delivery state: a converted event starts unprocessed', () => {
    const event = { ...fullEvent(), processed: true, retryCount: 4 };
    expect(fromCloudEvent(toCloudEvent(event))).toEqual({ ...event, processed: false, retryCount: 0 });
  });

  it('keeps a custom source, so the event converts back to the same CloudEvent', () => {
    const ce = toCloudEvent(fullEvent(), { source: 'urn:blawby:api', subject: 'user_123' });
    const back = fromCloudEvent(ce);
    expect(back.metadata.source).toBe('api');
    expect(toCloudEvent(back)).toEqual(ce);
  });

  it('keeps a non-string tracing field in blawbymetadata rather than dropping it', () => {
    const event = { ...minimalEvent(), metadata: { source: 'api', environment: 'x', correlationId: 42 as unknown } };
    const ce = toCloudEvent(event as BaseEvent);
    expect(ce).not.toHaveProperty('correlationid');
    expect(fromCloudEvent(ce)).toEqual(event);
  });
});

describe('checked against the cloudevents package', () => {
  it('accepts what toCloudEvent makes as a valid CloudEvent 1.0', () => {
    for (const event of [fullEvent(), minimalEvent()]) {
      const ce = new CloudEvent(toCloudEvent(event, { dataschema: 'https://schemas.blawby.com/x.json' }));
      expect(ce.validate()).toBe(true);
      expect(ce.specversion).toBe('1.0');
      expect(ce.id).toBe(event.eventId);
      expect(ce.data).toEqual(event.payload);
    }
  });

  it('reads back a CloudEvent instance, its JSON and its HTTP structured and binary messages', () => {
    const event = fullEvent();
    const ce = new CloudEvent(toCloudEvent(event));
    expect(fromCloudEvent(ce)).toEqual(event);
    expect(fromCloudEvent(ce.toString())).toEqual(event);

    const structured = HTTP.structured(ce);
    expect(structured.headers['content-type']).toContain('application/cloudevents+json');
    expect(fromCloudEvent(structured.body)).toEqual(event);

    // The binary mode puts attributes in ce-* headers; the package turns the message back into an event.
    const received = HTTP.toEvent(HTTP.binary(ce));
    expect(fromCloudEvent(received)).toEqual(event);
  });

  it('parses a foreign CloudEvent, keeping what the envelope has no field for', () => {
    const foreign = new CloudEvent({
      type: 'com.example.order_placed',
      source: 'https://shop.example.com/orders',
      subject: 'order-17',
      dataschema: 'https://shop.example.com/schemas/order.json',
      datacontenttype: 'application/json; charset=utf-8',
      data: { orderId: 17, total: 12.5 },
      traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
      region: 'eu',
      priority: 3,
      urgent: true,
    });
    const event = fromCloudEvent(foreign, { environment: 'staging', eventVersion: '2.0.0' });
    expect(event).toEqual({
      eventId: foreign.id,
      eventType: 'com.example.order_placed',
      eventVersion: '2.0.0',
      timestamp: new Date(foreign.time!),
      payload: { orderId: 17, total: 12.5 },
      metadata: {
        source: 'https://shop.example.com/orders',
        environment: 'staging',
        traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
        cloudEvent: {
          source: 'https://shop.example.com/orders',
          subject: 'order-17',
          dataschema: 'https://shop.example.com/schemas/order.json',
          extensions: { region: 'eu', priority: 3, urgent: true },
        },
      },
      processed: false,
      retryCount: 0,
    });

    // And it goes out again as the same CloudEvent (bar our own extensions).
    const out = new CloudEvent(toCloudEvent(event));
    expect(out.validate()).toBe(true);
    for (const name of ['id', 'type', 'source', 'subject', 'dataschema', 'time', 'data', 'traceparent', 'region']) {
      expect(out[name], name).toEqual(foreign[name]);
    }
    expect(out.priority).toBe(3);
    expect(out.urgent).toBe(true);
  });

  it('defaults version and environment, and reads a /blawby/ source back as metadata.source', () => {
    const foreign = new CloudEvent({ type: 'billing.invoice_paid', source: '/blawby/stripe', data: { id: 'in_1' } });
    const event = fromCloudEvent(foreign);
    expect(event.eventVersion).toBe('1.0.0');
    expect(event.metadata).toEqual({ source: 'stripe', environment: 'unknown' });
    expect(event.payload).toEqual({ id: 'in_1' });
  });

  it('reads a CloudEvent without data or time (both optional) as an empty payload dated now', () => {
    const before = Date.now();
    const event = fromCloudEvent({ specversion: '1.0', id: 'a-1', type: 'org.created', source: '/x' });
    expect(event.payload).toEqual({});
    expect(event.timestamp.getTime()).toBeGreaterThanOrEqual(before);
    expect(event.timestamp.getTime()).toBeLessThanOrEqual(Date.now());
  });

  it('refuses what the cloudevents package refuses', () => {
    const bad = [
      { specversion: '1.0', id: 'x', type: '', source: '/s' },
      { specversion: '1.0', id: 'x', type: 't' },
      { specversion: '1.0', id: 'x', type: 't', source: 'not a uri' },
      { specversion: '1.0', id: 'x', type: 't', source: '/s', time: 'yesterday' },
      { specversion: '1.0', id: 'x', type: 't', source: '/s', dataschema: 'schemas/x.json' },
      { specversion: '1.0', id: 'x', type: 't', source: '/s', subject: '' },
      { specversion: '1.0', id: 'x', type: 't', source: '/s', Upper: 'x' },
    ];
    for (const input of bad) {
      expect(() => new CloudEvent(input as never)).toThrow(ValidationError);
      expectInvalid(input);
    }
  });
});

describe('fromCloudEvent refuses bad input with INVALID_CLOUD_EVENT', () => {
  const valid = () => toCloudEvent(fullEvent()) as Record<string, unknown>;
  const cases: [string, unknown][] = [
    ['undefined', undefined],
    ['null', null],
    ['a number', 42],
    ['an array', [valid()]],
    ['text that is not JSON', '{"specversion":'],
    ['JSON text of a non-object', '"1.0"'],
    ['no specversion', { ...valid(), specversion: undefined }],
    ['specversion 0.3', { ...valid(), specversion: '0.3' }],
    ['a numeric specversion', { ...valid(), specversion: 1 }],
    ['no id', { ...valid(), id: undefined }],
    ['a numeric id', { ...valid(), id: 7 }],
    ['no type', { ...valid(), type: undefined }],
    ['no source', { ...valid(), source: undefined }],
    ['a source with spaces', { ...valid(), source: 'not a uri' }],
    ['a source with a control character', { ...valid(), source: '/a\u0007b' }],
    ['a time that is not RFC 3339', { ...valid(), time: '04/03/2026' }],
    ['an impossible time', { ...valid(), time: '2026-13-45T99:00:00Z' }],
    ['a Date as time', { ...valid(), time: new Date() }],
    ['a non-JSON datacontenttype', { ...valid(), datacontenttype: 'text/plain' }],
    ['a relative dataschema', { ...valid(), dataschema: 'schemas/x.json' }],
    ['an empty subject', { ...valid(), subject: '' }],
    ['data that is a string', { ...valid(), data: 'hello' }],
    ['data that is an array', { ...valid(), data: [1, 2] }],
    ['data that is a number', { ...valid(), data: 3 }],
    ['binary data', { ...valid(), data: undefined, data_base64: 'aGVsbG8=' }],
    ['an upper-case extension name', { ...valid(), orgId: 'x' }],
    ['an extension name with a dash', { ...valid(), 'org-id': 'x' }],
    ['an object extension value', { ...valid(), region: { a: 1 } }],
    ['a fractional extension value', { ...valid(), weight: 1.5 }],
    ['a numeric actor', { ...valid(), actor: 5 }],
    ['an empty eventversion', { ...valid(), eventversion: '' }],
    ['blawbymetadata that is not JSON', { ...valid(), blawbymetadata: '{' }],
    ['blawbymetadata that is an array', { ...valid(), blawbymetadata: '[]' }],
    ['blawbymetadata without environment', { ...valid(), blawbymetadata: '{"source":"api"}' }],
  ];
  it.each(cases)('%s', (_, input) => {
    const err = expectInvalid(input);
    expect(err.message).toMatch(/^Invalid CloudEvent: /);
    // Messages never echo payload values.
    expect(err.message).not.toContain('ada@example.com');
  });
});
