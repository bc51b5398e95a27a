// The official TypeScript SDK (@anthropic-ai/sdk, pinned in package-lock.json)
// against a Tollgate process serving from its built-in upstream simulator.
// Each test uses its own account and key on one gateway process; every call
// is checked against the call records (GET /v1/calls) and the balance.
//
// Simulator rules used below (proxy/simulator/doc.go): input_tokens is the
// number of words in every string of system, messages and tools (role strings
// included); the reply repeats the last user message's words (directives
// removed), one output token per word; [[sim:...]] directives select failures.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';
import { startGateway, nanos } from '../gateway.mjs';

const MODEL = 'claude-haiku-4-5';
const MODEL_DATED = 'claude-haiku-4-5-20251001';

let gw;
let nextAccount = 0;

before(async () => { gw = await startGateway(); });
after(async () => {
  if (!gw) return;
  const out = await gw.stop();
  assert.match(out, /open holds 0/, `tollgate verify after the SDK tests:\n${out}`);
});

/** A fresh funded account, its key and an SDK client on it. */
async function customer({ credit = '10', ...clientOpts } = {}) {
  const id = `sdk-${++nextAccount}`;
  const key = await gw.setupAccount(id, credit);
  const client = new Anthropic({ apiKey: key, baseURL: gw.baseURL, maxRetries: 0, timeout: 30_000, ...clientOpts });
  const start = await gw.balance(key);
  return { id, key, client, start };
}

/**
 * Checks that the account's call records are exactly `want` (newest last:
 * [{request_id?, input_tokens?, output_tokens?}]), each ok with status 200 and
 * a positive charge, and that the balance went down by their sum to the nano.
 */
async function assertBilled(c, want) {
  const records = (await gw.calls(c.key)).reverse();
  assert.equal(records.length, want.length, `call records: ${JSON.stringify(records, null, 1)}`);
  let total = 0n;
  records.forEach((r, i) => {
    const w = want[i];
    assert.equal(r.outcome, 'ok', `record ${i}: ${JSON.stringify(r)}`);
    assert.equal(r.status, 200);
    assert.equal(r.usage_estimated, false);
    if (w.request_id) assert.equal(r.request_id, w.request_id, `record ${i} request_id`);
    if (w.input_tokens !== undefined) assert.equal(r.input_tokens, w.input_tokens, `record ${i} input_tokens`);
    if (w.output_tokens !== undefined) assert.equal(r.output_tokens, w.output_tokens, `record ${i} output_tokens`);
    assert.ok(nanos(r.charged) > 0n, `record ${i} charged ${r.charged}`);
    total += nanos(r.charged);
  });
  const now = await gw.balance(c.key);
  assert.equal(nanos(now.held), 0n, 'no hold left open');
  assert.equal(nanos(c.start.available) - nanos(now.available), total, `balance ${c.start.available} -> ${now.available}, charged ${total} nano`);
  return records;
}

/** The records of the account, oldest first, without checks. */
async function records(c) { return (await gw.calls(c.key)).reverse(); }

describe('messages', () => {
  it('create, not streaming', async () => {
    const c = await customer();
    const msg = await c.client.messages.create({
      model: MODEL, max_tokens: 100,
      messages: [{ role: 'user', content: 'Say hello twice' }],
    });
    assert.equal(msg.type, 'message');
    assert.equal(msg.model, MODEL_DATED);
    assert.equal(msg.stop_reason, 'end_turn');
    assert.deepEqual(msg.content.map((b) => b.type), ['text']);
    assert.equal(msg.content[0].text, 'Say hello twice');
    assert.equal(msg.usage.input_tokens, 4);
    assert.equal(msg.usage.output_tokens, 3);
    assert.match(msg._request_id, /^req_/);
    await assertBilled(c, [{ request_id: msg._request_id, input_tokens: 4, output_tokens: 3 }]);
  });

  it('create, streaming', async () => {
    const c = await customer();
    const { data: stream, response } = await c.client.messages.create({
      model: MODEL, max_tokens: 100, stream: true,
      messages: [{ role: 'user', content: 'Stream five words to me' }],
    }).withResponse();
    assert.match(response.headers.get('content-type'), /^text\/event-stream/);
    const types = [];
    let text = '';
    let usage;
    for await (const ev of stream) {
      types.push(ev.type);
      if (ev.type === 'content_block_delta' && ev.delta.type === 'text_delta') text += ev.delta.text;
      if (ev.type === 'message_delta') usage = ev.usage;
    }
    assert.equal(types[0], 'message_start');
    assert.equal(types.at(-1), 'message_stop');
    // (The SDK swallows the ping the stream carries.)
    assert.deepEqual(types.slice(1, 3), ['content_block_start', 'content_block_delta']);
    assert.equal(types.at(-2), 'message_delta');
    assert.equal(text, 'Stream five words to me');
    assert.equal(usage.output_tokens, 5);
    await assertBilled(c, [{ request_id: response.headers.get('request-id'), input_tokens: 6, output_tokens: 5 }]);
  });

  it('stream helper: text events and finalMessage()', async () => {
    const c = await customer();
    const stream = c.client.messages.stream({
      model: MODEL, max_tokens: 100,
      system: 'Be brief.',
      messages: [{ role: 'user', content: 'Tell me a short story [[sim:words=12,chunk=2]]' }],
    });
    const pieces = [];
    stream.on('text', (delta) => pieces.push(delta));
    const msg = await stream.finalMessage();
    const expected = 'Tell me a short story Tell me a short story Tell me';
    assert.equal(pieces.join(''), expected);
    assert.ok(pieces.length >= 6, `text events: ${JSON.stringify(pieces)}`);
    assert.equal(msg.content[0].text, expected);
    assert.equal(await stream.finalText(), expected);
    assert.equal(msg.usage.output_tokens, 12);
    // system 2 words + "user" + 6 words, the directive token included.
    assert.equal(msg.usage.input_tokens, 9);
    await assertBilled(c, [{ request_id: stream.request_id, input_tokens: 9, output_tokens: 12 }]);
  });

  it('tool use round trip', async () => {
    const c = await customer();
    const tools = [{
      name: 'get_weather',
      description: 'Weather for a place',
      input_schema: { type: 'object', properties: { query: { type: 'string' } }, required: ['query'] },
    }];
    const messages = [{ role: 'user', content: 'Weather in Paris today [[sim:tool_use]]' }];
    const first = await c.client.messages.stream({ model: MODEL, max_tokens: 200, tools, messages }).finalMessage();
    assert.equal(first.stop_reason, 'tool_use');
    const use = first.content.find((b) => b.type === 'tool_use');
    assert.ok(use, `content: ${JSON.stringify(first.content)}`);
    assert.equal(use.name, 'get_weather');
    assert.deepEqual(use.input, { query: 'Weather in Paris' });
    assert.match(use.id, /^toolu_/);

    messages.push({ role: 'assistant', content: first.content });
    messages.push({ role: 'user', content: [
      { type: 'tool_result', tool_use_id: use.id, content: 'Sunny and mild' },
      { type: 'text', text: 'Summarise that' },
    ] });
    const second = await c.client.messages.create({ model: MODEL, max_tokens: 200, tools, messages });
    assert.equal(second.stop_reason, 'end_turn');
    assert.equal(second.content[0].text, 'Summarise that');
    await assertBilled(c, [
      { input_tokens: first.usage.input_tokens, output_tokens: first.usage.output_tokens },
      { request_id: second._request_id, input_tokens: second.usage.input_tokens, output_tokens: 2 },
    ]);
  });

  it('countTokens is answered and never billed', async () => {
    const c = await customer();
    const r = await c.client.messages.countTokens({
      model: MODEL,
      system: 'You are terse.',
      messages: [{ role: 'user', content: 'How many tokens is this?' }],
    });
    assert.equal(r.input_tokens, 3 + 1 + 5);
    const bad = new Anthropic({ apiKey: 'tg-' + 'x'.repeat(43), baseURL: gw.baseURL, maxRetries: 0 });
    await assert.rejects(bad.messages.countTokens({ model: MODEL, messages: [{ role: 'user', content: 'hi' }] }), Anthropic.AuthenticationError);
    assert.deepEqual(await records(c), [], 'count_tokens makes no call record');
    assert.equal((await gw.balance(c.key)).available, c.start.available);
  });
});

describe('models', () => {
  it('list (auto-pagination) and retrieve', async () => {
    const c = await customer();
    const onePage = await c.client.models.list({ limit: 1000 });
    const all = onePage.data.map((m) => m.id);
    assert.ok(all.includes(MODEL_DATED), `models: ${all}`);
    assert.ok(all.length >= 3);
    for (const m of onePage.data) {
      assert.equal(m.type, 'model');
      assert.equal(typeof m.display_name, 'string');
    }
    // Pages of 2, followed by the SDK through after_id.
    const paged = [];
    for await (const m of c.client.models.list({ limit: 2 })) paged.push(m.id);
    assert.deepEqual(paged, all);

    const byAlias = await c.client.models.retrieve(MODEL);
    assert.equal(byAlias.id, MODEL_DATED);
    const byID = await c.client.models.retrieve(MODEL_DATED);
    assert.equal(byID.id, MODEL_DATED);
    await assert.rejects(c.client.models.retrieve('claude-no-such-model'), Anthropic.NotFoundError);
    assert.deepEqual(await records(c), []);
  });
});

/** Asserts that p rejects with an instance of cls, status and error type; returns the error. */
async function expectError(p, cls, status, type) {
  let err;
  await assert.rejects(p, (e) => { err = e; return true; });
  assert.ok(err instanceof cls, `want ${cls.name}, got ${err?.constructor?.name}: ${err}`);
  assert.equal(err.status, status);
  assert.equal(err.type, type, `error body: ${JSON.stringify(err.error)}`);
  assert.match(err.requestID ?? '', /^req_/, 'request-id header on the error');
  assert.equal(err.error?.request_id, err.requestID, 'body request_id equals the request-id header');
  return err;
}

const hello = (text = 'hello there') => ({ model: MODEL, max_tokens: 50, messages: [{ role: 'user', content: text }] });

describe('typed errors', () => {
  it('401: an unknown key is an AuthenticationError', async () => {
    const client = new Anthropic({ apiKey: 'tg-' + 'A'.repeat(43), baseURL: gw.baseURL, maxRetries: 2 });
    await expectError(client.messages.create(hello()), Anthropic.AuthenticationError, 401, 'authentication_error');
  });

  it('402: too little credit is a PaymentRequiredError, nothing charged', async () => {
    const c = await customer({ credit: '0.000001' });
    const err = await expectError(c.client.messages.create(hello()), Anthropic.PaymentRequiredError, 402, 'billing_error');
    assert.match(err.message, /hold/i);
    const err2 = await expectError(c.client.messages.create({ ...hello(), stream: true }), Anthropic.PaymentRequiredError, 402, 'billing_error');
    assert.ok(err2);
    const recs = await records(c);
    assert.deepEqual(recs.map((r) => [r.status, r.outcome, r.charged]), [[402, 'rejected', '0'], [402, 'rejected', '0']]);
    assert.equal((await gw.balance(c.key)).available, '0.000001');
  });

  it('403: a frozen account is a PermissionDeniedError', async () => {
    const c = await customer();
    await gw.adminOK('POST', `/admin/v1/accounts/${c.id}/freeze`, undefined, 204);
    await expectError(c.client.messages.create(hello()), Anthropic.PermissionDeniedError, 403, 'permission_error');
  });

  it('400: a bad request is a BadRequestError', async () => {
    const c = await customer();
    await expectError(c.client.messages.create({ ...hello(), max_tokens: 0 }), Anthropic.BadRequestError, 400, 'invalid_request_error');
  });

  it('404: an unknown model is a NotFoundError', async () => {
    const c = await customer();
    await expectError(c.client.messages.create({ ...hello(), model: 'claude-no-such-model' }), Anthropic.NotFoundError, 404, 'not_found_error');
    const recs = await records(c);
    assert.deepEqual(recs.map((r) => [r.status, r.outcome, r.charged]), [[404, 'rejected', '0']]);
  });

  it('429 without retries: RateLimitError with retry-after', async () => {
    const c = await customer();
    const err = await expectError(c.client.messages.create(hello('slow down [[sim:status=429,retry_after=1]]')),
      Anthropic.RateLimitError, 429, 'rate_limit_error');
    assert.equal(err.headers.get('retry-after'), '1');
    await expectError(c.client.messages.create({ ...hello('slow down [[sim:status=429,retry_after=1]]'), stream: true }),
      Anthropic.RateLimitError, 429, 'rate_limit_error');
    const recs = await records(c);
    assert.deepEqual(recs.map((r) => [r.status, r.outcome, r.charged]), [[429, 'upstream_error', '0'], [429, 'upstream_error', '0']]);
  });

  it('429 retried by the SDK, honouring retry-after', async () => {
    // retry_after=1 with 2 retries: at least 2 s in all. Without the header
    // the SDK would wait 0.5 s then 1 s (less jitter), 1.5 s at most.
    const c = await customer({ maxRetries: 2 });
    const t0 = Date.now();
    await expectError(c.client.messages.create(hello('slow down [[sim:status=429,retry_after=1]]')),
      Anthropic.RateLimitError, 429, 'rate_limit_error');
    const elapsed = Date.now() - t0;
    assert.ok(elapsed >= 2000, `3 attempts in ${elapsed} ms: retry-after not honoured`);
    assert.ok(elapsed < 10_000, `3 attempts in ${elapsed} ms`);
    // Each attempt reached the upstream once and is its own call record.
    const recs = await gw.adminCalls(c.id);
    assert.equal(recs.length, 3, JSON.stringify(recs));
    for (const r of recs) {
      assert.equal(r.status, 429);
      assert.equal(r.outcome, 'upstream_error');
      assert.equal(r.charged, '0');
      assert.deepEqual(r.attempts.map((a) => a.status), [429]);
    }
    const gaps = recs.map((r) => Date.parse(r.time)).sort().map((t, i, a) => (i ? t - a[i - 1] : null)).slice(1);
    for (const g of gaps) assert.ok(g >= 950, `attempts ${gaps} ms apart`);
    assert.equal((await gw.balance(c.key)).available, c.start.available);
  });

  it('529 retried by the SDK, then an OverloadedError', async () => {
    const c = await customer({ maxRetries: 2 });
    await expectError(c.client.messages.create(hello('busy [[sim:status=529]]')),
      Anthropic.OverloadedError, 529, 'overloaded_error');
    const recs = await gw.adminCalls(c.id);
    assert.equal(recs.length, 3, JSON.stringify(recs));
    for (const r of recs) {
      assert.equal(r.status, 529);
      assert.equal(r.outcome, 'upstream_error');
      assert.equal(r.charged, '0');
    }
    // And a healthy call on the same client afterwards is billed normally.
    const msg = await c.client.messages.create(hello('all good now'));
    assert.equal(msg.content[0].text, 'all good now');
    const ok = (await records(c)).filter((r) => r.outcome === 'ok');
    assert.equal(ok.length, 1);
    assert.equal(ok[0].request_id, msg._request_id);
    assert.equal(nanos(c.start.available) - nanos((await gw.balance(c.key)).available), nanos(ok[0].charged));
  });
});
