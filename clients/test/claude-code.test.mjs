// Claude Code (@anthropic-ai/claude-code, pinned in package-lock.json) in
// non-interactive mode (`claude -p`) against a Tollgate process serving from
// its built-in upstream simulator, with a platform key.
//
// Claude Code runs with a temporary HOME and working directory, no
// environment from the developer's shell, its non-essential traffic disabled
// through its documented variables, and HTTP(S)_PROXY pointing at a local
// catch-all that refuses and records anything that is not for Tollgate. It
// talks to Tollgate through a recorder: a transparent local HTTP proxy that
// passes every byte on unbuffered and keeps each exchange (method, path,
// headers, bodies), so the tests can check what Claude Code sent, what it was
// answered, and that each call it made is billed.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { startGateway, nanos } from '../gateway.mjs';

const require = createRequire(import.meta.url);

/** The native Claude Code binary installed by npm. */
function claudeBinary() {
  const wrapperDir = path.dirname(require.resolve('@anthropic-ai/claude-code/package.json'));
  // The postinstall script copies the platform binary over bin/claude.exe;
  // where install scripts did not run, take it from the platform package.
  const stub = path.join(wrapperDir, 'bin', 'claude.exe');
  if (fs.existsSync(stub) && fs.statSync(stub).size > 1 << 20) return stub;
  const plat = `${process.platform}-${process.arch}`;
  for (const name of [`@anthropic-ai/claude-code-${plat}`, `@anthropic-ai/claude-code-${plat}-musl`]) {
    try {
      const dir = path.dirname(require.resolve(`${name}/package.json`));
      for (const f of ['claude', 'claude.exe']) if (fs.existsSync(path.join(dir, f))) return path.join(dir, f);
    } catch { /* not installed for this platform */ }
  }
  throw new Error(`no Claude Code binary for ${plat}: run npm ci --prefix clients`);
}

/** Claude Code's documented switches for traffic other than the API calls. */
const QUIET_ENV = {
  CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
  DISABLE_TELEMETRY: '1',
  DISABLE_ERROR_REPORTING: '1',
  DISABLE_AUTOUPDATER: '1',
  DISABLE_BUG_COMMAND: '1',
};

const listen = (srv) => new Promise((resolve) => srv.listen(0, '127.0.0.1', () => resolve(`127.0.0.1:${srv.address().port}`)));

/** A transparent recording proxy in front of target (http://host:port). */
async function startRecorder(target) {
  const t = new URL(target);
  const exchanges = [];
  const srv = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const ex = { method: req.method, url: req.url, headers: req.headers, rawHeaders: req.rawHeaders, body: body.toString('utf8') };
      exchanges.push(ex);
      const up = http.request({ host: t.hostname, port: t.port, method: req.method, path: req.url, headers: req.headers }, (ur) => {
        ex.status = ur.statusCode;
        ex.resHeaders = ur.headers;
        res.writeHead(ur.statusCode, ur.rawHeaders);
        const rb = [];
        ur.on('data', (c) => { rb.push(c); res.write(c); });
        ur.on('end', () => { ex.resBody = Buffer.concat(rb).toString('utf8'); res.end(); });
      });
      up.on('error', (e) => { ex.error = String(e); res.destroy(); });
      up.end(body);
    });
  });
  const addr = await listen(srv);
  return { url: `http://${addr}`, exchanges, close: () => new Promise((r) => { srv.closeAllConnections?.(); srv.close(r); }) };
}

/** The HTTP(S)_PROXY for Claude Code: refuses and records every request. */
async function startCatchAll() {
  const seen = [];
  const srv = http.createServer((req, res) => { seen.push(`${req.method} ${req.url}`); res.writeHead(403); res.end('blocked by the Tollgate client test'); });
  srv.on('connect', (req, sock) => { seen.push(`CONNECT ${req.url}`); sock.end('HTTP/1.1 403 Forbidden\r\n\r\n'); });
  const addr = await listen(srv);
  return { url: `http://${addr}`, seen, close: () => new Promise((r) => { srv.closeAllConnections?.(); srv.close(r); }) };
}

/** The events of a recorded SSE body, parsed. */
function sseEvents(text) {
  const out = [];
  for (const block of text.split('\n\n')) {
    const data = block.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n');
    if (data) out.push(JSON.parse(data));
  }
  return out;
}

/** Text and final usage of a recorded /v1/messages response (streamed or not). */
function replyOf(ex) {
  if ((ex.resHeaders['content-type'] ?? '').startsWith('text/event-stream')) {
    let text = '';
    let usage = {};
    const blocks = [];
    for (const ev of sseEvents(ex.resBody)) {
      if (ev.type === 'message_start') usage = { ...ev.message.usage };
      if (ev.type === 'content_block_start') blocks.push(ev.content_block);
      if (ev.type === 'content_block_delta' && ev.delta.type === 'text_delta') text += ev.delta.text;
      if (ev.type === 'message_delta') Object.assign(usage, ev.usage);
    }
    return { text, usage, blocks };
  }
  const msg = JSON.parse(ex.resBody);
  return { text: msg.content.filter((b) => b.type === 'text').map((b) => b.text).join(''), usage: msg.usage, blocks: msg.content };
}

let gw, recorder, catchAll, bin;
let nextAccount = 0;

before(async () => {
  bin = claudeBinary();
  gw = await startGateway();
  recorder = await startRecorder(gw.baseURL);
  catchAll = await startCatchAll();
});

after(async () => {
  await recorder?.close();
  await catchAll?.close();
  if (gw) {
    const out = await gw.stop();
    assert.match(out, /open holds 0/, `tollgate verify after the Claude Code tests:\n${out}`);
  }
});

/**
 * Runs `claude -p PROMPT ...args` with a fresh account's key against baseURL
 * (the recorder by default). Returns {code, stdout, stderr, key, account,
 * start, exchanges} where exchanges are those this run made.
 */
async function runClaude(prompt, args = [], { baseURL = recorder.url, wrap = null, timeoutMs = 90_000, extraEnv = {} } = {}) {
  const account = `cc-${++nextAccount}`;
  const key = await gw.setupAccount(account, '50');
  const start = await gw.balance(key);
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-cc-home-'));
  const cwd = fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-cc-work-'));
  const env = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: home,
    ANTHROPIC_BASE_URL: baseURL,
    ANTHROPIC_API_KEY: key,
    ...QUIET_ENV,
    HTTP_PROXY: catchAll.url, HTTPS_PROXY: catchAll.url, http_proxy: catchAll.url, https_proxy: catchAll.url,
    NO_PROXY: '127.0.0.1,localhost', no_proxy: '127.0.0.1,localhost',
    ...extraEnv,
  };
  const first = recorder.exchanges.length;
  const argv = ['-p', prompt, ...args];
  const [cmd, cmdArgs] = wrap ? wrap(bin, argv) : [bin, argv];
  const child = spawn(cmd, cmdArgs, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '', stderr = '';
  child.stdout.on('data', (b) => { stdout += b; });
  child.stderr.on('data', (b) => { stderr += b; });
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const code = await new Promise((resolve) => child.on('close', (c, sig) => resolve(c ?? sig)));
  clearTimeout(timer);
  // The recorder may still be finishing the last exchange it passed on.
  for (let i = 0; i < 100 && recorder.exchanges.slice(first).some((e) => e.resBody === undefined && !e.error); i++) {
    await new Promise((r) => setTimeout(r, 20));
  }
  fs.rmSync(home, { recursive: true, force: true });
  fs.rmSync(cwd, { recursive: true, force: true });
  return { code, stdout, stderr, key, account, start, exchanges: recorder.exchanges.slice(first) };
}

/** Everything a failure message needs about a run. */
function explain(run) {
  const ex = run.exchanges.map((e) => `${e.method} ${e.url} -> ${e.status}: model ${safeModel(e.body)}; anthropic-beta ${e.headers['anthropic-beta']}\n  ${(e.resBody ?? e.error ?? '').slice(0, 300)}`);
  return `exit ${run.code}\nstdout: ${run.stdout.slice(0, 2000)}\nstderr: ${run.stderr.slice(0, 2000)}\nexchanges:\n${ex.join('\n')}`;
}
function safeModel(body) { try { return JSON.parse(body).model; } catch { return '?'; } }

/**
 * Every request the run made was a POST /v1/messages answered 200, and each
 * is billed: a call record with the response's request-id, outcome ok, the
 * response's usage, a positive charge; the balance fell by their sum.
 */
async function assertAllBilled(run) {
  assert.ok(run.exchanges.length >= 1, explain(run));
  for (const ex of run.exchanges) {
    assert.equal(`${ex.method} ${ex.url.split('?')[0]}`, 'POST /v1/messages', `an endpoint other than /v1/messages:\n${explain(run)}`);
    assert.equal(ex.status, 200, explain(run));
  }
  const records = (await gw.calls(run.key)).reverse();
  assert.equal(records.length, run.exchanges.length, `one call record per call:\n${JSON.stringify(records, null, 1)}`);
  let total = 0n;
  run.exchanges.forEach((ex, i) => {
    const r = records.find((rec) => rec.request_id === ex.resHeaders['request-id']);
    assert.ok(r, `no call record for ${ex.resHeaders['request-id']}`);
    const { usage } = replyOf(ex);
    assert.equal(r.outcome, 'ok', JSON.stringify(r));
    assert.equal(r.status, 200);
    assert.equal(r.model, JSON.parse(ex.body).model);
    assert.equal(r.input_tokens, usage.input_tokens, `call ${i} input_tokens`);
    assert.equal(r.output_tokens, usage.output_tokens, `call ${i} output_tokens`);
    assert.equal(r.usage_estimated, false);
    assert.ok(nanos(r.charged) > 0n);
    total += nanos(r.charged);
  });
  const now = await gw.balance(run.key);
  assert.equal(nanos(now.held), 0n);
  assert.equal(nanos(run.start.available) - nanos(now.available), total);
}

/** What Claude Code sent, for the test log (and docs/clients.md). */
function describeTraffic(t, run) {
  for (const ex of run.exchanges) {
    const body = JSON.parse(ex.body);
    const names = Object.keys(ex.headers).sort();
    t.diagnostic(`${ex.method} ${ex.url} -> ${ex.status} model=${body.model} stream=${body.stream} max_tokens=${body.max_tokens} fields=${Object.keys(body).join(',')}`);
    t.diagnostic(`  anthropic-beta: ${ex.headers['anthropic-beta']}`);
    t.diagnostic(`  anthropic-version: ${ex.headers['anthropic-version']}; user-agent: ${ex.headers['user-agent']}`);
    t.diagnostic(`  x-stainless-*: ${names.filter((n) => n.startsWith('x-stainless-')).map((n) => `${n}=${ex.headers[n]}`).join(' ')}`);
    t.diagnostic(`  other headers: ${names.filter((n) => !n.startsWith('x-stainless-')).join(' ')}`);
  }
}

describe('Claude Code (claude -p) through Tollgate', () => {
  it('without a model setting: its default (claude-opus-5-5) is served and every call billed', { timeout: 120_000 }, async (t) => {
    // Claude Code 2.1.332 asks for claude-opus-5-5 when no model is set; the
    // December 2026 catalogue serves it (it once answered 404).
    const run = await runClaude('Say hello');
    describeTraffic(t, run);
    assert.equal(run.code, 0, explain(run));
    assert.ok(run.exchanges.length >= 1, explain(run));
    assert.ok(run.exchanges.some((ex) => safeModel(ex.body) === 'claude-opus-5-5'), explain(run));
    await assertAllBilled(run);
  });

  it('with ANTHROPIC_MODEL set: that model is served and billed', { timeout: 120_000 }, async (t) => {
    const run = await runClaude('Say hello', [], { extraEnv: { ANTHROPIC_MODEL: 'claude-sonnet-4-6' } });
    describeTraffic(t, run);
    assert.equal(run.code, 0, explain(run));
    assert.ok(run.exchanges.every((ex) => safeModel(ex.body) === 'claude-sonnet-4-6'), explain(run));
    await assertAllBilled(run);
  });

  it('completes "Say hello" with --model claude-sonnet-4-6, every call billed', { timeout: 120_000 }, async (t) => {
    const run = await runClaude('Say hello', ['--model', 'claude-sonnet-4-6']);
    describeTraffic(t, run);
    assert.equal(run.code, 0, explain(run));
    // It prints the simulator's reply (the words of its own last user message).
    const reply = replyOf(run.exchanges.at(-1)).text;
    assert.ok(reply.length > 0);
    assert.equal(run.stdout.trim(), reply.trim());
    await assertAllBilled(run);
    const ex = run.exchanges[0];
    assert.match(ex.headers['user-agent'], /^claude-cli\//);
    assert.ok((ex.headers['anthropic-beta'] ?? '').includes('claude-code-20250219'), ex.headers['anthropic-beta']);
    assert.deepEqual(catchAll.seen, [], 'Claude Code tried to reach something other than Tollgate');
  });

  it('completes "Say hello" on claude-opus-4-8 without a refused call', { timeout: 120_000 }, async (t) => {
    // On models that support it, Claude Code sends the beta
    // mid-conversation-tool-changes-2026-07-01 and puts messages with role
    // "system" into `messages`. When that call is refused with 400, it
    // retries the turn without the beta; the customer sees a success, but
    // every turn costs a refused call and loses the feature.
    const run = await runClaude('Say hello', ['--model', 'claude-opus-4-8']);
    describeTraffic(t, run);
    assert.equal(run.code, 0, explain(run));
    await assertAllBilled(run);
  });

  it('completes a turn with a tool use round trip (--output-format json)', { timeout: 120_000 }, async (t) => {
    // The simulator answers the first call with a ToolSearch tool_use; Claude
    // Code runs the tool locally and sends the tool_result in a second call.
    const run = await runClaude('Find a tool [[sim:tool_use=ToolSearch]]', ['--model', 'claude-sonnet-4-6', '--output-format', 'json']);
    describeTraffic(t, run);
    assert.equal(run.code, 0, explain(run));
    assert.equal(run.exchanges.length, 2, explain(run));
    const first = replyOf(run.exchanges[0]);
    const use = first.blocks.find((b) => b.type === 'tool_use');
    assert.ok(use && use.name === 'ToolSearch', explain(run));
    const second = JSON.parse(run.exchanges[1].body);
    const results = second.messages.at(-1).content.filter((b) => b.type === 'tool_result');
    assert.deepEqual(results.map((b) => b.tool_use_id), [use.id], JSON.stringify(second.messages.at(-1)).slice(0, 1000));
    await assertAllBilled(run);
    const out = JSON.parse(run.stdout);
    assert.equal(out.is_error, false);
    assert.equal(out.num_turns, 2);
    assert.equal(out.result.trim(), replyOf(run.exchanges[1]).text.trim());
    // Claude Code's own usage total is the sum of what Tollgate billed.
    const records = await gw.calls(run.key);
    assert.equal(out.usage.input_tokens, records.reduce((s, r) => s + r.input_tokens, 0));
    assert.equal(out.usage.output_tokens, records.reduce((s, r) => s + r.output_tokens, 0));
    assert.deepEqual(catchAll.seen, [], 'Claude Code tried to reach something other than Tollgate');
  });

  it('retries a 429 honouring retry-after, then reports it; nothing charged', { timeout: 120_000 }, async () => {
    const t0 = Date.now();
    const run = await runClaude('Say hello [[sim:status=429,retry_after=1]]', ['--model', 'claude-sonnet-4-6'],
      { extraEnv: { CLAUDE_CODE_MAX_RETRIES: '2' } });
    const elapsed = Date.now() - t0;
    assert.equal(run.code, 1, explain(run));
    assert.match(run.stdout + run.stderr, /429/);
    assert.equal(run.exchanges.length, 3, explain(run));
    for (const ex of run.exchanges) {
      assert.equal(ex.status, 429);
      assert.equal(ex.resHeaders['retry-after'], '1');
    }
    assert.ok(elapsed >= 2000, `3 attempts in ${elapsed} ms`);
    const records = await gw.calls(run.key);
    assert.deepEqual(records.map((r) => [r.status, r.outcome, r.charged]), Array(3).fill([429, 'upstream_error', '0']));
    assert.equal((await gw.balance(run.key)).available, run.start.available);
  });

  it('/context counts tokens through count_tokens, never billed', { timeout: 120_000 }, async (t) => {
    const run = await runClaude('/context', ['--model', 'claude-sonnet-4-6']);
    assert.equal(run.code, 0, explain(run));
    assert.match(run.stdout, /Context Usage/);
    assert.ok(run.exchanges.length >= 1, explain(run));
    for (const ex of run.exchanges) {
      assert.equal(`${ex.method} ${ex.url}`, 'POST /v1/messages/count_tokens?beta=true', explain(run));
      assert.equal(ex.status, 200, explain(run));
      assert.equal(typeof JSON.parse(ex.resBody).input_tokens, 'number');
    }
    const ex = run.exchanges[0];
    t.diagnostic(`${run.exchanges.length} x ${ex.method} ${ex.url}; anthropic-beta: ${ex.headers['anthropic-beta']}`);
    assert.deepEqual(await gw.calls(run.key), [], 'count_tokens makes no call record');
    assert.equal((await gw.balance(run.key)).available, run.start.available);
    assert.deepEqual(catchAll.seen, []);
  });

  it('connects to nothing but Tollgate (strace)', { timeout: 120_000 }, async (t) => {
    if (spawnSync('strace', ['-V']).status !== 0) {
      t.skip('strace is not installed: the HTTP(S)_PROXY catch-all alone checks this');
      return;
    }
    const trace = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-cc-strace-')), 'trace');
    // Straight at the gateway this time, no recorder in between.
    const run = await runClaude('Say hello', ['--model', 'claude-sonnet-4-6'], {
      baseURL: gw.baseURL,
      wrap: (b, argv) => ['strace', ['-f', '-qq', '-e', 'trace=connect', '-o', trace, b, ...argv]],
    });
    assert.equal(run.code, 0, `${run.stdout}\n${run.stderr}`);
    const gwPort = new URL(gw.baseURL).port;
    const inet = fs.readFileSync(trace, 'utf8').split('\n').filter((l) => /AF_INET6?/.test(l));
    fs.rmSync(path.dirname(trace), { recursive: true, force: true });
    assert.ok(inet.length >= 1, 'no connection seen at all');
    for (const l of inet) {
      assert.ok(l.includes(`htons(${gwPort})`) && /127\.0\.0\.1|::1|::ffff:127\.0\.0\.1/.test(l), `a connection that is not to Tollgate: ${l}`);
    }
    const records = await gw.calls(run.key);
    assert.ok(records.length >= 1 && records.every((r) => r.outcome === 'ok'), JSON.stringify(records));
  });
});
