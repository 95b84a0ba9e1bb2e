// A gateway joins through an attestation round, as the gateway daemons will drive it: Dave bonds
// and registers with proven keys, Alice (the genesis gateway, the only one eligible) commits and
// reveals Pass, the round closes, Dave is Active and his record is readable.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Keyring } from '@polkadot/keyring';
import { bnToU8a, stringToU8a, u8aConcat } from '@polkadot/util';
import { blake2AsU8a, decodeAddress } from '@polkadot/util-crypto';
import { connect, submitAndFinalize, waitForBlocks, UNIT } from './common.mjs';

// The whole round takes about 25 blocks (75 s).
const ROUND_TIMEOUT = { timeout: 240_000 };

let api;
let keyring;
before(async () => {
  api = await connect();
  keyring = new Keyring({ type: 'sr25519', ss58Format: 42 });
});
after(async () => { await api?.disconnect(); });

const ROLE = { Device: 0, Vrf: 1, Network: 2 };

// "capsule/key-proof/v1" ‖ role ‖ genesis hash ‖ account (capsule_primitives::keys).
function keyProofMessage(role, account) {
  return u8aConcat(stringToU8a('capsule/key-proof/v1'), new Uint8Array([role]), api.genesisHash.toU8a(), decodeAddress(account));
}

// blake2_256("capsule/vote-commitment/v1" ‖ SCALE(round, member, verdict, evidence, salt)).
function voteCommitment(round, member, verdictIndex, evidence, salt) {
  return blake2AsU8a(u8aConcat(
    stringToU8a('capsule/vote-commitment/v1'),
    bnToU8a(round, { bitLength: 64, isLe: true }),
    decodeAddress(member),
    new Uint8Array([verdictIndex]),
    evidence,
    salt,
  ), 256);
}

function eventOf(events, section, method) {
  const found = events.find(({ event }) => event.section === section && event.method === method);
  assert.ok(found, `no ${section}.${method} among ${events.map(({ event }) => `${event.section}.${event.method}`)}`);
  return found.event;
}

test('a registration round passes and the gateway becomes Active with a record', ROUND_TIMEOUT, async () => {
  const alice = keyring.addFromUri('//Alice');
  const dave = keyring.addFromUri('//Dave');
  const ed = new Keyring({ type: 'ed25519', ss58Format: 42 });
  const device = ed.addFromUri('//Dave//device');
  const network = ed.addFromUri('//Dave//network');
  const vrf = keyring.addFromUri('//Dave//vrf');

  await submitAndFinalize(api, api.tx.deposit.bond(2_000n * UNIT), dave);
  const keys = {
    deviceKey: { Ed25519: device.publicKey },
    deviceProof: { Ed25519: device.sign(keyProofMessage(ROLE.Device, dave.address)) },
    vrfKey: vrf.publicKey,
    vrfProof: vrf.sign(keyProofMessage(ROLE.Vrf, dave.address)),
    networkKey: network.publicKey,
    networkProof: network.sign(keyProofMessage(ROLE.Network, dave.address)),
  };
  const fingerprint = blake2AsU8a('dave hpc fingerprint', 256);
  const registered = await submitAndFinalize(api, api.tx.attestation.register(keys, 'Software', fingerprint), dave);
  const opened = eventOf(registered.events, 'attestation', 'RoundOpened');
  const round = opened.data.round.toNumber();
  assert.equal(opened.data.subject.toString(), dave.address);
  assert.equal(opened.data.phase.toString(), 'Registration');
  assert.equal((await api.query.attestation.gateways(dave.address)).unwrap().status.toString(), 'Pending');

  // Seeded L blocks later from the BABE VRF outputs; Alice is the only eligible member.
  const voting = await waitForBlocks(api, () => api.query.attestation.rounds(round),
    (r) => r.isSome && r.unwrap().status.isVoting, 10);
  const state = voting.unwrap();
  assert.deepEqual(state.committee.map((m) => m.toString()), [alice.address]);
  assert.ok(state.seed.isSome, 'the round has its seed');

  // The verifier service's view of the same round, through the runtime API.
  const open = await api.call.attestationApi.openRounds(round, 10);
  assert.equal(open.length, 1);
  assert.equal(open[0].id.toNumber(), round);
  assert.equal(open[0].subject.toString(), dave.address);
  assert.equal(open[0].seed.toHex(), state.seed.toHex());
  assert.ok(open[0].status.isVoting);
  const mine = await api.call.attestationApi.roundsOfMember(alice.address);
  assert.deepEqual(mine.map((r) => r.id.toNumber()), [round]);
  assert.deepEqual(mine[0].committee.map((m) => m.toString()), [alice.address]);
  assert.equal((await api.call.attestationApi.roundsOfMember(dave.address)).length, 0);

  const evidence = blake2AsU8a('alice evidence for dave', 256);
  const salt = blake2AsU8a('alice salt', 256);
  await submitAndFinalize(api, api.tx.attestation.commit(round, voteCommitment(round, alice.address, 0, evidence, salt)), alice);

  const commitUntil = state.status.asVoting.commitUntil.toNumber();
  await waitForBlocks(api, () => api.rpc.chain.getHeader(), (h) => h.number.toNumber() > commitUntil, 20);
  const revealed = await submitAndFinalize(api, api.tx.attestation.reveal(round, 'Pass', evidence, salt), alice);
  eventOf(revealed.events, 'attestation', 'OutcomeReached');

  // Closed the block after the reveal deadline.
  await waitForBlocks(api, () => api.query.attestation.rounds(round), (r) => r.isNone, 20);
  const info = (await api.query.attestation.gateways(dave.address)).unwrap();
  assert.equal(info.status.toString(), 'Active');
  const records = await api.query.attestation.records(dave.address);
  assert.equal(records.length, 1);
  assert.equal(records[0].round.toNumber(), round);
  assert.equal(records[0].outcome.toString(), 'Passed');
  assert.equal(records[0].phase.toString(), 'Registration');
  assert.deepEqual(records[0].evidence.map((e) => e.toHex()), [api.createType('H256', evidence).toHex()]);
  assert.equal((await api.call.attestationApi.openRounds(round, 10)).length, 0, 'a closed round is not listed');
  // Alice earned her verifier fee; Dave's reputation rose.
  const reputation = (await api.query.reputation.reputations(dave.address)).unwrap();
  assert.ok(reputation.score.toNumber() > 0);
});

test('root approves a golden measurement and the runtime API lists it by kind', async () => {
  const alice = keyring.addFromUri('//Alice');
  const image = blake2AsU8a('hpc boot image', 256);
  const before = await api.call.attestationApi.goldenMeasurements(null);
  await submitAndFinalize(api, api.tx.sudo.sudo(api.tx.attestation.addGolden({ HpcBootImage: image })), alice);
  const all = await api.call.attestationApi.goldenMeasurements(null);
  assert.equal(all.length, before.length + 1);
  const images = await api.call.attestationApi.goldenMeasurements('HpcBootImage');
  assert.equal(images.length, 1);
  const [, measurement] = images[0];
  assert.ok(measurement.isHpcBootImage);
  assert.equal(measurement.asHpcBootImage.toHex(), api.createType('H256', image).toHex());
  assert.equal((await api.call.attestationApi.goldenMeasurements('TpmEkCaRoot')).length, 0);
});
