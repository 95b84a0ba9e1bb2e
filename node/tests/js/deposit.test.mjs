// Bonds through the deposit pallet and reads what the chain holds: the balance hold, the ledger,
// the genesis bonds, scores and gateways, the treasury, and the epoch snapshot.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Keyring } from '@polkadot/keyring';
import { stringToU8a, u8aConcat } from '@polkadot/util';
import { encodeAddress } from '@polkadot/util-crypto';
import { connect, submitAndFinalize, UNIT, TIMEOUT } from './common.mjs';

let api;
let keyring;
before(async () => {
  api = await connect();
  keyring = new Keyring({ type: 'sr25519', ss58Format: 42 });
});
after(async () => { await api?.disconnect(); });

function bondHold(holds) {
  const found = holds.find((hold) => JSON.stringify(hold.id.toHuman()) === JSON.stringify({ Deposit: 'Bond' }));
  return found ? found.amount.toBigInt() : 0n;
}

function eventsOf(events, section, method) {
  return events.filter(({ event }) => event.section === section && event.method === method).map(({ event }) => event);
}

test('genesis bonds, scores and activates Alice, endows the treasury, and snapshots her', TIMEOUT, async () => {
  const alice = keyring.addFromUri('//Alice');
  const minimum = api.consts.deposit.minimumBond.toBigInt();
  assert.equal(minimum, 1_000n * UNIT);
  const ledger = (await api.query.deposit.ledgers(alice.address)).unwrap();
  assert.equal(ledger.active.toBigInt(), 10_000n * UNIT);
  assert.equal(bondHold(await api.query.balances.holds(alice.address)), 10_000n * UNIT);

  const reputation = (await api.query.reputation.reputations(alice.address)).unwrap();
  assert.equal(reputation.score.toNumber(), 100_000);
  assert.equal(reputation.level.toString(), 'Software');
  assert.equal((await api.query.reputation.softwareLevelAllowed()).isTrue, true);

  // PalletId accounts are "modl" ++ id, zero-padded to 32 bytes.
  const treasury = encodeAddress(u8aConcat(stringToU8a('modl'), stringToU8a('cap/trsy'), new Uint8Array(20)), 42);
  const { data } = await api.query.system.account(treasury);
  assert.ok(data.free.toBigInt() >= api.consts.balances.existentialDeposit.toBigInt(), 'the treasury exists');

  // Alice is a genesis gateway, Active, so the epoch snapshots (taken from the first block on)
  // list her with weight score x bond.
  const gateway = (await api.query.attestation.gateways(alice.address)).unwrap();
  assert.equal(gateway.status.toString(), 'Active');
  const active = (await api.query.attestation.activeGateways()).map(([account]) => account.toString());
  assert.ok(active.includes(alice.address));
  const epoch = (await api.query.babe.epochIndex()).toNumber();
  const snapshot = (await api.query.reputation.snapshots(epoch)).unwrap();
  const entries = [...snapshot.members];
  const entry = entries.find((e) => e.account.toString() === alice.address);
  assert.ok(entry, 'Alice is in the current epoch\'s snapshot');
  assert.equal(entry.level.toString(), 'Software');
  assert.equal(entry.weight.toBigInt(), 100_000n * 10_000n * UNIT);
  const sum = entries.reduce((total, e) => total + e.weight.toBigInt(), 0n);
  assert.equal(snapshot.totalWeight.toBigInt(), sum);
});

test('bond holds the amount, unbond schedules it, early withdrawal is refused', TIMEOUT, async () => {
  const bob = keyring.addFromUri('//Bob');
  const amount = 1_500n * UNIT;
  const { blockHash, events } = await submitAndFinalize(api, api.tx.deposit.bond(amount), bob);
  const [bonded] = eventsOf(events, 'deposit', 'Bonded');
  assert.ok(bonded, 'a Bonded event');
  assert.equal(bonded.data.who.toString(), bob.address);
  assert.equal(bonded.data.amount.toBigInt(), amount);
  assert.equal(bondHold(await api.query.balances.holds.at(blockHash, bob.address)), amount);

  const unbondAmount = 600n * UNIT;
  const unbond = await submitAndFinalize(api, api.tx.deposit.unbond(unbondAmount), bob);
  const [unbonded] = eventsOf(unbond.events, 'deposit', 'Unbonded');
  const [below] = eventsOf(unbond.events, 'deposit', 'BelowMinimum');
  assert.equal(unbonded.data.amount.toBigInt(), unbondAmount);
  assert.equal(below.data.active.toBigInt(), amount - unbondAmount, '900 CAP is below the 1,000 CAP minimum');
  const ledger = (await api.query.deposit.ledgers.at(unbond.blockHash, bob.address)).unwrap();
  assert.equal(ledger.active.toBigInt(), amount - unbondAmount);
  assert.equal(ledger.unbonding[0].value.toBigInt(), unbondAmount);
  // Unbonding money stays held (and slashable) until withdrawn.
  assert.equal(bondHold(await api.query.balances.holds.at(unbond.blockHash, bob.address)), amount);

  await assert.rejects(submitAndFinalize(api, api.tx.deposit.withdrawUnbonded(), bob), /NothingToWithdraw/);
});

test('a first bond below the minimum is a typed error', TIMEOUT, async () => {
  const charlie = keyring.addFromUri('//Charlie');
  await assert.rejects(submitAndFinalize(api, api.tx.deposit.bond(999n * UNIT), charlie), /BelowMinimumBond/);
  assert.ok((await api.query.deposit.ledgers(charlie.address)).isNone);
});
