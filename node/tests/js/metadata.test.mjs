// polkadot.js apps builds everything from metadata: check it has what the UI needs.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { connect, TIMEOUT } from './common.mjs';

let api;
before(async () => { api = await connect(); });
after(async () => { await api?.disconnect(); });

test('runtime identifies itself and serves metadata with our pallets', TIMEOUT, async () => {
  const version = api.runtimeVersion;
  assert.equal(version.specName.toString(), 'capsule');
  const pallets = api.runtimeMetadata.asLatest.pallets.map((p) => p.name.toString());
  for (const name of ['System', 'Timestamp', 'Session', 'Babe', 'Grandpa', 'Balances', 'TransactionPayment', 'Sudo', 'Deposit', 'Reputation', 'Attestation']) {
    assert.ok(pallets.includes(name), `metadata lacks ${name}: ${pallets}`);
  }
  assert.ok(api.tx.balances.transferKeepAlive, 'balances.transferKeepAlive is callable');
});

test('chain properties give apps the token symbol, decimals and address format', TIMEOUT, async () => {
  const props = await api.rpc.system.properties();
  assert.equal(props.tokenSymbol.unwrap()[0].toString(), 'CAP');
  assert.equal(props.tokenDecimals.unwrap()[0].toNumber(), 12);
  assert.equal(props.ss58Format.unwrap().toNumber(), 42);
  assert.equal((await api.rpc.system.chain()).toString(), 'Capsule Development');
});

test('standard RPC methods are served', TIMEOUT, async () => {
  const { methods } = await api.rpc.rpc.methods();
  const names = methods.map((m) => m.toString());
  for (const m of ['system_health', 'system_accountNextIndex', 'chain_getFinalizedHead', 'state_getMetadata',
    'author_submitAndWatchExtrinsic', 'author_rotateKeys', 'payment_queryInfo']) {
    assert.ok(names.includes(m), `RPC lacks ${m}`);
  }
});

test('block time is 3 s and BABE uses primary and secondary VRF slots', TIMEOUT, async () => {
  assert.equal(api.consts.babe.expectedBlockTime.toNumber(), 3000);
  const config = await api.query.babe.epochConfig();
  assert.equal(config.unwrap().allowedSlots.toString(), 'PrimaryAndSecondaryVRFSlots');
  assert.equal(api.consts.babe.epochDuration.toNumber(), 10);
});
