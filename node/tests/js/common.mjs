// Shared helpers for the @polkadot/api tests. The node's URL comes from CAPSULE_WS_URL, which
// the Rust test that starts the node sets (node/tests/polkadot_js.rs).
import { ApiPromise, WsProvider } from '@polkadot/api';
import { cryptoWaitReady } from '@polkadot/util-crypto';

export const UNIT = 10n ** 12n;

// Per-test deadline: a stalled chain fails a test instead of hanging the suite.
export const TIMEOUT = { timeout: 120_000 };

export async function connect() {
  const url = process.env.CAPSULE_WS_URL;
  if (!url) throw new Error('CAPSULE_WS_URL is not set: run these through `cargo test -p capsule-node`');
  await cryptoWaitReady();
  // Only the metadata: no custom types, exactly as polkadot.js apps connects.
  return ApiPromise.create({ provider: new WsProvider(url), noInitWarn: true, throwOnConnect: true });
}

// Signs and submits `tx`, resolving once its block is finalized with that block's hash and the
// events of the extrinsic; rejects if the extrinsic fails or is dropped.
export function submitAndFinalize(api, tx, signer) {
  return new Promise((resolve, reject) => {
    let unsubscribe = () => {};
    tx.signAndSend(signer, ({ status, events, dispatchError }) => {
      if (dispatchError) {
        unsubscribe();
        const reason = dispatchError.isModule
          ? JSON.stringify(api.registry.findMetaError(dispatchError.asModule))
          : dispatchError.toString();
        reject(new Error(`extrinsic failed: ${reason}`));
      } else if (status.isFinalized) {
        unsubscribe();
        resolve({ blockHash: status.asFinalized.toHex(), events });
      } else if (status.isDropped || status.isInvalid || status.isUsurped || status.isFinalityTimeout) {
        unsubscribe();
        reject(new Error(`extrinsic not included: ${status.type}`));
      }
    }).then((u) => { unsubscribe = u; }, reject);
  });
}

// Resolves with the first value of `read()` that satisfies `done`, polling each new block.
export async function waitForBlocks(api, read, done, maxBlocks) {
  let seen = 0;
  return new Promise((resolve, reject) => {
    let unsubscribe = () => {};
    api.rpc.chain.subscribeNewHeads(async () => {
      seen += 1;
      try {
        const value = await read();
        if (done(value)) { unsubscribe(); resolve(value); }
        else if (seen > maxBlocks) { unsubscribe(); reject(new Error(`condition not met within ${maxBlocks} blocks; last value ${value}`)); }
      } catch (e) { unsubscribe(); reject(e); }
    }).then((u) => { unsubscribe = u; }, reject);
  });
}
