// Starts a Tollgate gateway process for the client tests: `tollgate serve` on
// two free loopback ports, a fresh temporary data directory, the repository's
// configs/tollgate.yaml, and no upstream credential, so every call goes to the
// built-in upstream simulator. The admin helpers create accounts, top them up
// and mint keys the way an operator would.
//
// As a module: `const gw = await startGateway(); ...; await gw.stop();`
// As a script: `node clients/gateway.mjs` starts one, creates a funded account,
// prints ANTHROPIC_BASE_URL and ANTHROPIC_API_KEY lines to paste into a shell,
// and runs until Ctrl-C (handy to try a client by hand).
//
// The binary is $TOLLGATE_BIN (the Makefile passes bin/tollgate); without it
// the gateway is built once into a temporary directory with `go build`.

import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const ADMIN_TOKEN = 'clients-test-admin-token';
let builtBin;

/** The tollgate binary: $TOLLGATE_BIN, or one built now with `go build`. */
export function tollgateBinary() {
  if (process.env.TOLLGATE_BIN) return path.resolve(repoRoot, process.env.TOLLGATE_BIN);
  if (!builtBin) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-bin-'));
    builtBin = path.join(dir, 'tollgate');
    execFileSync('go', ['build', '-o', builtBin, './cmd/tollgate'], { cwd: repoRoot, stdio: 'inherit' });
  }
  return builtBin;
}

/** A loopback address with a port that was free a moment ago. */
export function freeAddr() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(`127.0.0.1:${port}`));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Starts `tollgate serve` and waits for /readyz. Options: readyTimeoutMs
 * (default 20 s), extraArgs. Returns the gateway handle described below.
 */
export async function startGateway({ readyTimeoutMs = 20_000, extraArgs = [] } = {}) {
  const bin = tollgateBinary();
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-clients-'));
  const client = await freeAddr();
  const admin = await freeAddr();
  const args = ['serve', '--config', path.join(repoRoot, 'configs/tollgate.yaml'), '--data-dir', dataDir,
    '--listen', client, '--admin-listen', admin, ...extraArgs];
  // No environment but the admin token and PATH: without ANTHROPIC_API_KEY the
  // gateway serves from its simulator, whatever the developer's shell holds.
  const proc = spawn(bin, args, {
    env: { TOLLGATE_ADMIN_TOKEN: ADMIN_TOKEN, PATH: process.env.PATH ?? '/usr/bin:/bin' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  proc.stdout.on('data', (b) => { log += b; });
  proc.stderr.on('data', (b) => { log += b; });
  let exited = null;
  const exitPromise = new Promise((resolve) => proc.on('exit', (code, signal) => { exited = { code, signal }; resolve(exited); }));

  const deadline = Date.now() + readyTimeoutMs;
  for (;;) {
    if (exited) throw new Error(`gateway exited before it was ready (${JSON.stringify(exited)}):\n${log}`);
    try {
      const r = await fetch(`http://${admin}/readyz`);
      if (r.status === 200) break;
    } catch { /* not listening yet */ }
    if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`gateway not ready within ${readyTimeoutMs} ms:\n${log}`);
    }
    await sleep(25);
  }

  const gw = {
    bin, dataDir, proc,
    baseURL: `http://${client}`,
    adminURL: `http://${admin}`,
    get log() { return log; },

    /** An admin API call; returns {status, body} (body parsed when JSON). */
    async admin(method, p, body) {
      const r = await fetch(gw.adminURL + p, {
        method,
        headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await r.text();
      let parsed = text;
      try { parsed = JSON.parse(text); } catch { /* not JSON */ }
      return { status: r.status, body: parsed };
    },

    async adminOK(method, p, body, want) {
      const r = await gw.admin(method, p, body);
      if (r.status !== want) throw new Error(`${method} ${p}: want ${want}, got ${r.status} ${JSON.stringify(r.body)}`);
      return r.body;
    },

    /** Creates account id, tops it up with credit (a decimal string) and mints a key. */
    async setupAccount(id, credit = '10') {
      await gw.adminOK('POST', '/admin/v1/accounts', { id }, 201);
      if (credit !== '0') {
        await gw.adminOK('POST', `/admin/v1/accounts/${id}/topups`, { amount: credit, order_id: `order-${id}`, kind: 'paid' }, 201);
      }
      const key = await gw.adminOK('POST', `/admin/v1/accounts/${id}/keys`, { name: 'clients-test' }, 201);
      return key.key;
    },

    /** A client API GET with a platform key; returns the parsed JSON. */
    async clientGet(key, p) {
      const r = await fetch(gw.baseURL + p, { headers: { 'x-api-key': key } });
      const body = await r.json();
      if (r.status !== 200) throw new Error(`GET ${p}: ${r.status} ${JSON.stringify(body)}`);
      return body;
    },

    balance(key) { return gw.clientGet(key, '/v1/balance'); },

    /** Every call record of the key's account (GET /v1/calls), newest first. */
    async calls(key) {
      const out = [];
      let cursor = null;
      for (;;) {
        const page = await gw.clientGet(key, '/v1/calls?limit=100' + (cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''));
        out.push(...page.data);
        if (!page.has_more) return out;
        cursor = page.next_cursor;
      }
    },

    /** The admin view of an account's call records (with upstream attempts). */
    async adminCalls(account) {
      const r = await gw.adminOK('GET', `/admin/v1/calls?account=${encodeURIComponent(account)}&limit=1000`, undefined, 200);
      return r.data;
    },

    /**
     * SIGTERM, wait for a clean exit (SIGKILL after timeoutMs), then run
     * `tollgate verify` on the data directory; returns verify's output.
     * The data directory is removed unless keepData.
     */
    async stop({ timeoutMs = 20_000, verify = true, keepData = false } = {}) {
      if (!exited) {
        proc.kill('SIGTERM');
        const t = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
        await exitPromise;
        clearTimeout(t);
      }
      let out = '';
      try {
        if (exited.code !== 0) throw new Error(`gateway exited with ${JSON.stringify(exited)}:\n${log}`);
        if (verify) out = execFileSync(bin, ['verify', '--data-dir', dataDir], { encoding: 'utf8' });
      } finally {
        if (!keepData) fs.rmSync(dataDir, { recursive: true, force: true });
      }
      return out;
    },
  };
  return gw;
}

/** Exact decimal credits ("9.797944", "-0.5") as integer nano-credits. */
export function nanos(amount) {
  const m = /^(-?)(\d+)(?:\.(\d{1,9}))?$/.exec(amount);
  if (!m) throw new Error(`not a decimal amount: ${amount}`);
  const v = BigInt(m[2]) * 1_000_000_000n + BigInt((m[3] ?? '').padEnd(9, '0'));
  return m[1] ? -v : v;
}

// Script mode: a gateway to try clients against by hand.
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const gw = await startGateway();
  const key = await gw.setupAccount('demo', '25');
  console.log(`# Tollgate on the built-in simulator; data in ${gw.dataDir}`);
  console.log(`export ANTHROPIC_BASE_URL=${gw.baseURL}`);
  console.log(`export ANTHROPIC_API_KEY=${key}`);
  console.log(`# admin API: ${gw.adminURL} (Authorization: Bearer ${ADMIN_TOKEN}); Ctrl-C stops`);
  const stop = async () => { console.log(await gw.stop()); process.exit(0); };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}
