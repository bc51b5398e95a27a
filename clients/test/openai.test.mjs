// The official OpenAI TypeScript SDK (openai, pinned in package-lock.json)
// against Tollgate's OpenAI-compatible front (POST /v1/chat/completions)
// on a gateway process serving from its built-in upstream simulator. Each
// test uses its own account and key; every call is checked against the call
// records (GET /v1/calls): recorded with front "openai" and charged.
//
// Simulator rules used below (proxy/simulator/doc.go): the reply repeats
// the last user message's words (directives removed), one output token per
// word; [[sim:tool_use]] makes it call the request's first tool.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startGateway, nanos } from '../gateway.mjs';

const MODEL = 'claude-haiku-4-5';

let gw;
let nextAccount = 0;

before(async () => { gw = await startGateway(); });
after(async () => {
  if (!gw) return;
  const out = await gw.stop();
  assert.match(out, /open holds 0/, `tollgate verify after the OpenAI SDK tests:\n${out}`);
});

/** A fresh funded account, its key and an OpenAI client on it. */
async function customer(credit = '10') {
  const id = `openai-${++nextAccount}`;
  const key = await gw.setupAccount(id, credit);
  const client = new OpenAI({ apiKey: key, baseURL: `${gw.baseURL}/v1`, maxRetries: 0, timeout: 30_000 });
  return { id, key, client };
}

/** The account's call records, oldest first; each from the OpenAI front, ok and charged. */
async function chargedRecords(c, n) {
  const records = (await gw.calls(c.key)).reverse();
  assert.equal(records.length, n, `call records: ${JSON.stringify(records, null, 1)}`);
  for (const r of records) {
    assert.equal(r.front, 'openai', JSON.stringify(r));
    assert.equal(r.outcome, 'ok', JSON.stringify(r));
    assert.ok(nanos(r.charged) > 0n, JSON.stringify(r));
  }
  return records;
}

describe('chat completions', () => {
  it('create, not streaming', async () => {
    const c = await customer();
    const reply = await c.client.chat.completions.create({
      model: MODEL, max_completion_tokens: 100,
      messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Say hello twice' }],
    });
    assert.equal(reply.object, 'chat.completion');
    assert.equal(reply.choices[0].message.content, 'Say hello twice');
    assert.equal(reply.choices[0].finish_reason, 'stop');
    const [r] = await chargedRecords(c, 1);
    assert.equal(reply.usage.prompt_tokens, r.input_tokens);
    assert.equal(reply.usage.completion_tokens, r.output_tokens);
  });

  it('streaming with usage', async () => {
    const c = await customer();
    const stream = await c.client.chat.completions.create({
      model: MODEL, max_tokens: 100, stream: true, stream_options: { include_usage: true },
      messages: [{ role: 'user', content: 'Stream five words to me' }],
    });
    let text = '';
    let finish;
    let usage;
    for await (const chunk of stream) {
      if (chunk.usage) usage = chunk.usage;
      for (const choice of chunk.choices) {
        text += choice.delta.content ?? '';
        finish = choice.finish_reason ?? finish;
      }
    }
    assert.equal(text, 'Stream five words to me');
    assert.equal(finish, 'stop');
    const [r] = await chargedRecords(c, 1);
    assert.equal(usage.completion_tokens, r.output_tokens);
    assert.equal(usage.total_tokens, usage.prompt_tokens + usage.completion_tokens);
  });

  it('tool call round trip, arguments streamed in fragments', async () => {
    const c = await customer();
    const tools = [{
      type: 'function',
      function: { name: 'get_weather', description: 'Weather for a place', parameters: { type: 'object', properties: { query: { type: 'string' } } } },
    }];
    const messages = [{ role: 'user', content: 'Weather in Paris today [[sim:tool_use]]' }];
    const runner = c.client.chat.completions.stream({ model: MODEL, max_tokens: 200, tools, messages });
    const first = await runner.finalChatCompletion();
    const call = first.choices[0].message.tool_calls?.[0];
    assert.equal(first.choices[0].finish_reason, 'tool_calls');
    assert.equal(call.function.name, 'get_weather');
    assert.deepEqual(Object.keys(JSON.parse(call.function.arguments)), ['query']);
    messages[0].content = 'Weather in Paris today';
    messages.push(first.choices[0].message, { role: 'tool', tool_call_id: call.id, content: 'sunny' });
    const second = await c.client.chat.completions.create({ model: MODEL, max_tokens: 200, tools, messages });
    assert.equal(second.choices[0].finish_reason, 'stop');
    await chargedRecords(c, 2);
  });

  it('models list parses', async () => {
    const c = await customer();
    const ids = [];
    for await (const m of c.client.models.list()) ids.push(m.id);
    assert.ok(ids.includes('claude-haiku-4-5-20251001'), JSON.stringify(ids));
  });

  it('errors are the SDK\'s typed errors', async () => {
    const c = await customer();
    const bad = new OpenAI({ apiKey: 'tg-wrong', baseURL: `${gw.baseURL}/v1`, maxRetries: 0 });
    await assert.rejects(bad.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'hi' }] }), OpenAI.AuthenticationError);
    await assert.rejects(c.client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] }), OpenAI.NotFoundError);
    await assert.rejects(
      c.client.chat.completions.create({ model: MODEL, n: 2, messages: [{ role: 'user', content: 'hi' }] }),
      (err) => err instanceof OpenAI.BadRequestError && err.param === 'n',
    );
    const poor = await customer('0.000001');
    await assert.rejects(
      poor.client.chat.completions.create({ model: MODEL, max_tokens: 4000, messages: [{ role: 'user', content: 'hi there' }] }),
      (err) => err.status === 402 && err.type === 'billing_error',
    );
  });
});
