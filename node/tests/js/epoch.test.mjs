// BABE: the epoch index advances (10-slot epochs on the dev chain) and every block carries VRF
// randomness (primary and secondary VRF slots), which our sortition seeds depend on.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { connect, waitForBlocks, TIMEOUT } from './common.mjs';

let api;
before(async () => { api = await connect(); });
after(async () => { await api?.disconnect(); });

test('the epoch index advances', TIMEOUT, async () => {
  const start = (await api.query.babe.epochIndex()).toBigInt();
  // 10-slot epochs; allow for slots without a block.
  const later = await waitForBlocks(api, async () => (await api.query.babe.epochIndex()).toBigInt(), (e) => e > start, 40);
  assert.ok(later > start);
  assert.ok((await api.query.session.currentIndex()).toNumber() >= 1, 'sessions rotate with epochs');
});

test('every block carries a BABE VRF output', TIMEOUT, async () => {
  const head = (await api.rpc.chain.getHeader()).number.toNumber();
  assert.ok(head >= 3, `need a few blocks, have ${head}`);
  for (let n = 1; n <= head; n += 1) {
    const hash = await api.rpc.chain.getBlockHash(n);
    const randomness = await api.query.babe.authorVrfRandomness.at(hash);
    assert.ok(randomness.isSome, `block ${n} has no VRF randomness`);
  }
});

test('blocks are finalized', TIMEOUT, async () => {
  const finalized = await waitForBlocks(api, async () => {
    const hash = await api.rpc.chain.getFinalizedHead();
    return (await api.rpc.chain.getHeader(hash)).number.toNumber();
  }, (n) => n >= 2, 20);
  assert.ok(finalized >= 2);
});
