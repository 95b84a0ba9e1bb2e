//! A Zymbit module (ZYMKEY4, HSM4, HSM6/60/64, SCM) through the vendor's C library
//! `libzk_app_utils.so` (header `zymkey/zk_app_utils.h`), loaded at run time so nothing links
//! against it at build time.
//!
//! Written against the vendor's documented C API: every call is `int f(zkCTX, ...)` returning
//! 0 on success and a negative value on failure; output buffers are allocated by the library
//! (`uint8_t**` plus an `int*` size), copied here, then released with `free`. Used:
//! `zkOpen`, `zkClose`, `zkGenECDSASigFromDigest` (P-256 over a SHA-256 digest, key slot 0,
//! which every model preloads), `zkExportPubKey`, `zkLockDataB2B`/`zkUnlockDataB2B` with the
//! one-way key (`use_shared_key = false`: only this module unlocks), and
//! `zkGetPerimeterDetectInfo` (a non-zero timestamp is a perimeter breach).
//!
//! **Untested here**: no module exists on the machines that build this project. Believed but
//! not verified on hardware: signatures come as 64 bytes `r ‖ s`, public keys as 64 bytes
//! `X ‖ Y`; both are checked for length and the key for being on the curve, and a wrong form is
//! an error, not a panic. The level is [`HardwareLevel::GatewayHsm`]: a claim, since the module
//! offers no vendor attestation certificate.
#![allow(unsafe_code)] // FFI into the vendor's library; each call's contract is stated above.

use std::{
    ffi::{c_int, c_void},
    sync::Mutex,
};

use capsule_primitives::{DevicePublicKey, DeviceSignature, HardwareLevel};
use libloading::{Library, Symbol};
use sha2::{Digest, Sha256};

use crate::{RootOfTrust, RootOfTrustError};

/// The library's file name.
pub const LIBRARY: &str = "libzk_app_utils.so";
/// The key slot signing uses: preloaded P-256 on every model.
pub const DEVICE_SLOT: c_int = 0;

type Ctx = *mut c_void;
type OpenFn = unsafe extern "C" fn(*mut Ctx) -> c_int;
type CloseFn = unsafe extern "C" fn(Ctx) -> c_int;
type SignFn = unsafe extern "C" fn(Ctx, *const u8, c_int, *mut *mut u8, *mut c_int) -> c_int;
type ExportFn = unsafe extern "C" fn(Ctx, *mut *mut u8, *mut c_int, c_int, bool) -> c_int;
type LockFn = unsafe extern "C" fn(Ctx, *const u8, c_int, *mut *mut u8, *mut c_int, bool) -> c_int;
type PerimeterFn = unsafe extern "C" fn(Ctx, *mut *mut u32, *mut c_int) -> c_int;

/// An open module.
pub struct Zymbit {
    library: Library,
    /// The library's context: usable from one thread at a time.
    ctx: Mutex<usize>,
    public: DevicePublicKey,
}

fn module(what: &str, code: c_int) -> RootOfTrustError {
    RootOfTrustError::Module(format!("{what} returned {code}"))
}

impl Zymbit {
    /// Loads the library, opens the module and reads the device key of [`DEVICE_SLOT`].
    pub fn open() -> Result<Self, RootOfTrustError> {
        // SAFETY: loading runs the library's initialisers; it is the vendor's documented
        // library, installed from its repository.
        let library = unsafe { Library::new(LIBRARY) }.map_err(|e| {
            RootOfTrustError::Module(format!(
                "cannot load {LIBRARY}: {e}; install Zymbit's libzk packages and start zkifc"
            ))
        })?;
        let mut ctx: Ctx = std::ptr::null_mut();
        // SAFETY: zkOpen writes a context pointer into `ctx`.
        let code = unsafe { symbol::<OpenFn>(&library, b"zkOpen\0")?(&mut ctx) };
        if code < 0 || ctx.is_null() {
            return Err(module("zkOpen", code));
        }
        let mut zymbit = Self {
            library,
            ctx: Mutex::new(ctx as usize),
            public: DevicePublicKey::EcdsaP256([0; 33]),
        };
        let raw = zymbit.with_ctx(|library, ctx| {
            let (mut out, mut size) = (std::ptr::null_mut(), 0);
            // SAFETY: documented signature; the library allocates `out`.
            let code = unsafe {
                symbol::<ExportFn>(library, b"zkExportPubKey\0")?(
                    ctx,
                    &mut out,
                    &mut size,
                    DEVICE_SLOT,
                    false,
                )
            };
            take("zkExportPubKey", code, out, size)
        })?;
        zymbit.public = DevicePublicKey::EcdsaP256(compress(&raw)?);
        Ok(zymbit)
    }

    fn with_ctx<T>(
        &self,
        f: impl FnOnce(&Library, Ctx) -> Result<T, RootOfTrustError>,
    ) -> Result<T, RootOfTrustError> {
        let ctx = self
            .ctx
            .lock()
            .map_err(|_| RootOfTrustError::Module("a call panicked earlier".into()))?;
        f(&self.library, *ctx as Ctx)
    }

    /// Whether the perimeter was breached: the timestamps of the detected events (empty when
    /// none).
    pub fn perimeter_events(&self) -> Result<Vec<u32>, RootOfTrustError> {
        self.with_ctx(|library, ctx| {
            let (mut out, mut count): (*mut u32, c_int) = (std::ptr::null_mut(), 0);
            // SAFETY: documented signature; the library allocates `out` (`count` u32s).
            let code = unsafe {
                symbol::<PerimeterFn>(library, b"zkGetPerimeterDetectInfo\0")?(
                    ctx, &mut out, &mut count,
                )
            };
            if code < 0 {
                return Err(module("zkGetPerimeterDetectInfo", code));
            }
            let events = copy_out(out, usize::try_from(count).unwrap_or(0));
            Ok(events.into_iter().filter(|&t| t != 0).collect())
        })
    }

    fn lock(&self, name: &'static [u8], data: &[u8]) -> Result<Vec<u8>, RootOfTrustError> {
        let size = c_int::try_from(data.len())
            .map_err(|_| RootOfTrustError::Module("data too large for the module".into()))?;
        self.with_ctx(|library, ctx| {
            let (mut out, mut out_size) = (std::ptr::null_mut(), 0);
            // SAFETY: documented signature; `data` outlives the call; the library allocates
            // `out`.
            let code = unsafe {
                symbol::<LockFn>(library, name)?(
                    ctx,
                    data.as_ptr(),
                    size,
                    &mut out,
                    &mut out_size,
                    false,
                )
            };
            take("zkLockDataB2B/zkUnlockDataB2B", code, out, out_size)
        })
    }
}

impl Drop for Zymbit {
    fn drop(&mut self) {
        let _ = self.with_ctx(|library, ctx| {
            // SAFETY: the context came from zkOpen and is closed once.
            unsafe { symbol::<CloseFn>(library, b"zkClose\0")?(ctx) };
            Ok(())
        });
    }
}

/// A function of the library.
///
/// # Safety
/// `T` must be the function's documented C signature.
unsafe fn symbol<'l, T>(
    library: &'l Library,
    name: &[u8],
) -> Result<Symbol<'l, T>, RootOfTrustError> {
    // SAFETY: the caller names the documented signature.
    unsafe { library.get(name) }.map_err(|e| {
        RootOfTrustError::Module(format!(
            "{LIBRARY} lacks {}: {e}",
            String::from_utf8_lossy(name)
        ))
    })
}

/// Copies a library-allocated buffer and frees it.
fn take(what: &str, code: c_int, out: *mut u8, size: c_int) -> Result<Vec<u8>, RootOfTrustError> {
    if code < 0 {
        if !out.is_null() {
            // SAFETY: allocated by the library with malloc.
            unsafe { libc::free(out.cast()) };
        }
        return Err(module(what, code));
    }
    Ok(copy_out(out, usize::try_from(size).unwrap_or(0)))
}

fn copy_out<T: Copy>(out: *mut T, count: usize) -> Vec<T> {
    if out.is_null() {
        return Vec::new();
    }
    // SAFETY: the library returned `count` elements at `out`, allocated with malloc.
    let copied = unsafe { std::slice::from_raw_parts(out, count) }.to_vec();
    // SAFETY: as above; freed once.
    unsafe { libc::free(out.cast()) };
    copied
}

/// A 64-byte `X ‖ Y` P-256 key, compressed (checked to be on the curve).
fn compress(raw: &[u8]) -> Result<[u8; 33], RootOfTrustError> {
    crate::p256_compressed(raw).ok_or_else(|| {
        RootOfTrustError::Module(format!("unexpected public key form ({} bytes)", raw.len()))
    })
}

impl RootOfTrust for Zymbit {
    fn level(&self) -> HardwareLevel {
        HardwareLevel::GatewayHsm
    }

    fn device_public_key(&self) -> DevicePublicKey {
        self.public
    }

    fn sign(&self, message: &[u8]) -> Result<DeviceSignature, RootOfTrustError> {
        let events = self.perimeter_events()?;
        if !events.is_empty() {
            return Err(RootOfTrustError::Tampered(format!(
                "perimeter breached at {events:?}"
            )));
        }
        let digest: [u8; 32] = Sha256::digest(message).into();
        let raw = self.with_ctx(|library, ctx| {
            let (mut out, mut size) = (std::ptr::null_mut(), 0);
            // SAFETY: documented signature; `digest` is 32 bytes and outlives the call.
            let code = unsafe {
                symbol::<SignFn>(library, b"zkGenECDSASigFromDigest\0")?(
                    ctx,
                    digest.as_ptr(),
                    DEVICE_SLOT,
                    &mut out,
                    &mut size,
                )
            };
            take("zkGenECDSASigFromDigest", code, out, size)
        })?;
        let signature: [u8; 64] = raw.as_slice().try_into().map_err(|_| {
            RootOfTrustError::Module(format!("unexpected signature form ({} bytes)", raw.len()))
        })?;
        Ok(DeviceSignature::EcdsaP256(signature))
    }

    fn seal(&self, data: &[u8]) -> Result<Vec<u8>, RootOfTrustError> {
        self.lock(b"zkLockDataB2B\0", data)
    }

    fn unseal(&self, sealed: &[u8]) -> Result<Vec<u8>, RootOfTrustError> {
        self.lock(b"zkUnlockDataB2B\0", sealed)
            .map_err(|_| RootOfTrustError::Unseal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opening_without_the_library_is_a_clear_error() {
        match Zymbit::open() {
            Err(RootOfTrustError::Module(message)) => assert!(message.contains(LIBRARY)),
            Err(other) => panic!("{other}"),
            // A machine with a module: the rest of this backend's behaviour is for it to show.
            Ok(zymbit) => assert_eq!(zymbit.level(), HardwareLevel::GatewayHsm),
        }
    }

    #[test]
    fn public_keys_must_be_points_of_the_curve() {
        assert!(compress(&[0u8; 64]).is_err());
        assert!(compress(&[1u8; 10]).is_err());
        let key = p256::SecretKey::from_slice(&[5u8; 32])
            .expect("scalar")
            .public_key();
        let point = p256::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(&key, false);
        let compressed = compress(&point.as_bytes()[1..]).expect("on the curve");
        assert_eq!(compressed[0] & 0xfe, 2);
    }
}
