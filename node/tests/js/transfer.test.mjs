// Transfers signed by an sr25519 account and by an ECDSA account (gateways whose hardware module
// signs with secp256k1), each waited on to finality and checked by its event.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Keyring } from '@polkadot/keyring';
import { connect, submitAndFinalize, UNIT, TIMEOUT } from './common.mjs';

let api;
let alice;
before(async () => {
  api = await connect();
  alice = new Keyring({ type: 'sr25519', ss58Format: 42 }).addFromUri('//Alice');
});
after(async () => { await api?.disconnect(); });

function transferEvent(api, events) {
  const found = events.find(({ event }) => api.events.balances.Transfer.is(event));
  assert.ok(found, `no Balances.Transfer among ${events.map(({ event }) => `${event.section}.${event.method}`)}`);
  const [from, to, amount] = found.event.data;
  return { from: from.toString(), to: to.toString(), amount: amount.toBigInt() };
}

test('an sr25519 transfer is finalized and emits Transfer', TIMEOUT, async () => {
  const dest = new Keyring({ type: 'sr25519', ss58Format: 42 }).addFromUri('//Capsule//sr25519-dest');
  const amount = 5n * UNIT;
  const { blockHash, events } = await submitAndFinalize(api, api.tx.balances.transferKeepAlive(dest.address, amount), alice);
  assert.deepEqual(transferEvent(api, events), { from: alice.address, to: dest.address, amount });
  const finalized = await api.rpc.chain.getFinalizedHead();
  const finalizedNumber = (await api.rpc.chain.getHeader(finalized)).number.toNumber();
  const includedNumber = (await api.rpc.chain.getHeader(blockHash)).number.toNumber();
  assert.ok(includedNumber <= finalizedNumber, 'the block is finalized');
  const { data } = await api.query.system.account.at(blockHash, dest.address);
  assert.equal(data.free.toBigInt(), amount);
});

test('an ECDSA account receives, then signs its own transfer', TIMEOUT, async () => {
  const ecdsa = new Keyring({ type: 'ecdsa', ss58Format: 42 }).addFromUri('//Capsule//gateway-hsm');
  const bob = new Keyring({ type: 'sr25519', ss58Format: 42 }).addFromUri('//Bob');
  // An ECDSA account id is blake2_256 of the compressed key, not the key itself.
  assert.equal(ecdsa.publicKey.length, 33);

  await submitAndFinalize(api, api.tx.balances.transferKeepAlive(ecdsa.address, 10n * UNIT), alice);
  const before = (await api.query.system.account(bob.address)).data.free.toBigInt();

  const amount = 2n * UNIT;
  const { blockHash, events } = await submitAndFinalize(api, api.tx.balances.transferKeepAlive(bob.address, amount), ecdsa);
  assert.deepEqual(transferEvent(api, events), { from: ecdsa.address, to: bob.address, amount });
  const after = (await api.query.system.account.at(blockHash, bob.address)).data.free.toBigInt();
  assert.equal(after - before, amount);
  const signed = (await api.rpc.chain.getBlock(blockHash)).block.extrinsics.find((x) => x.isSigned && x.signer.toString() === ecdsa.address);
  assert.ok(signed, 'the block holds an extrinsic signed by the ECDSA account');
  assert.ok(signed.signature.toU8a().length >= 65, 'signed with a 65-byte ECDSA signature');
});
