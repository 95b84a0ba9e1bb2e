//! A TPM 2.0 through tss-esapi over Debian's tpm2-tss: the HPC's hardware root of trust
//! (level [`capsule_primitives::HardwareLevel::HpcTpm`]), tested against swtpm.
//!
//! - [`Tpm::ek_certificate`] reads the RSA-2048 endorsement key's certificate from its NV index;
//!   [`verify_ek_certificate`] checks it chains to a pinned CA list (the vendor CAs in
//!   production, swtpm's local CA in tests) and returns its public key.
//! - [`Tpm::create_attestation_key`] makes an ECDSA P-256 attestation key (restricted, under the
//!   EK, as tss-esapi's `create_ak` templates it) and loads it.
//! - [`Tpm::quote`] quotes a PCR selection of the SHA-256 bank over 32 bytes of qualifying data
//!   and returns the [`TpmQuote`] a report carries; [`crate::tpm_quote::verify_quote`] checks it.
//!
//! Without a resource manager (swtpm directly) a TPM holds three transient objects: the EK and
//! the attestation key stay loaded, everything else is flushed at once.
use std::{str::FromStr, sync::Mutex};

use capsule_primitives::report::TpmQuote;
use tss_esapi::{
    abstraction::{ak, ek, AsymmetricAlgorithmSelection},
    attributes::ObjectAttributesBuilder,
    attributes::SessionAttributesBuilder,
    constants::tss::{TPM2_RH_NULL, TPM2_ST_HASHCHECK},
    constants::SessionType,
    handles::{AuthHandle, KeyHandle, PcrHandle, SessionHandle},
    interface_types::{algorithm::PublicAlgorithm, resource_handles::Hierarchy},
    interface_types::{
        algorithm::{AsymmetricAlgorithm, HashingAlgorithm, SignatureSchemeAlgorithm},
        ecc::EccCurve,
        key_bits::RsaKeyBits,
        session_handles::{AuthSession, PolicySession},
    },
    structures::{
        Data, Digest, DigestValues, EccScheme, EncryptedSecret, HashScheme, HashcheckTicket,
        IdObject, KeyedHashScheme, PcrSelectionListBuilder, PcrSlot, Private, Public,
        PublicBuilder, PublicKeyedHashParameters, SensitiveData, Signature, SignatureScheme,
        SymmetricDefinition,
    },
    tcti_ldr::TctiNameConf,
    traits::{Marshall, UnMarshall},
    tss2_esys::TPMT_TK_HASHCHECK,
    Context,
};

use capsule_primitives::{DevicePublicKey, DeviceSignature, HardwareLevel};

use crate::{credential::Credential, RootOfTrustError};

fn tpm(what: &'static str) -> impl FnOnce(tss_esapi::Error) -> RootOfTrustError {
    move |e| RootOfTrustError::Module(format!("TPM: {what}: {e}"))
}

/// A loaded attestation key.
#[derive(Clone, Debug)]
pub struct AttestationKey {
    handle: KeyHandle,
    /// Its public key, compressed SEC1.
    pub public: [u8; 33],
    /// Its TPM name (`nameAlg ‖ H(TPMT_PUBLIC)`): what a credential is made for.
    pub name: Vec<u8>,
    /// Its marshalled `TPMT_PUBLIC`: what a gateway checks and names itself
    /// ([`attestation_key_from_public`]).
    pub public_area: Vec<u8>,
}

/// A connected TPM.
pub struct Tpm {
    context: Mutex<Context>,
    ek: KeyHandle,
}

impl Tpm {
    /// Connects through a TCTI (`device:/dev/tpmrm0`, `swtpm:host=127.0.0.1,port=2321`) and
    /// makes the EK from the standard RSA-2048 template.
    pub fn connect(tcti: &str) -> Result<Self, RootOfTrustError> {
        let conf = TctiNameConf::from_str(tcti).map_err(tpm("parsing the TCTI"))?;
        let mut context = Context::new(conf).map_err(tpm("connecting"))?;
        flush_transient_objects(&mut context)?;
        let ek = ek::create_ek_object(&mut context, AsymmetricAlgorithm::Rsa, None)
            .map_err(tpm("creating the EK"))?;
        Ok(Self {
            context: Mutex::new(context),
            ek,
        })
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&mut Context) -> Result<T, RootOfTrustError>,
    ) -> Result<T, RootOfTrustError> {
        let mut context = self
            .context
            .lock()
            .map_err(|_| RootOfTrustError::Module("TPM: a call panicked earlier".into()))?;
        f(&mut context)
    }

    /// The EK's certificate (DER), from its NV index.
    pub fn ek_certificate(&self) -> Result<Vec<u8>, RootOfTrustError> {
        self.with(|ctx| {
            ek::retrieve_ek_pubcert(ctx, AsymmetricAlgorithmSelection::Rsa(RsaKeyBits::Rsa2048))
                .map_err(tpm("reading the EK certificate"))
        })
    }

    /// The EK's RSA modulus, to compare with the certificate's key.
    pub fn ek_modulus(&self) -> Result<Vec<u8>, RootOfTrustError> {
        self.with(|ctx| {
            let (public, _, _) = ctx.read_public(self.ek).map_err(tpm("reading the EK"))?;
            match public {
                Public::Rsa { unique, .. } => Ok(unique.value().to_vec()),
                _ => Err(RootOfTrustError::Module("TPM: the EK is not RSA".into())),
            }
        })
    }

    /// Makes and loads an ECDSA P-256 attestation key under the EK.
    pub fn create_attestation_key(&self) -> Result<AttestationKey, RootOfTrustError> {
        self.with(|ctx| {
            let created = ak::create_ak_2(
                ctx,
                self.ek,
                HashingAlgorithm::Sha256,
                AsymmetricAlgorithmSelection::Ecc(EccCurve::NistP256),
                SignatureSchemeAlgorithm::EcDsa,
                None,
                None,
            )
            .map_err(tpm("creating the attestation key"))?;
            let handle = ak::load_ak(ctx, self.ek, None, created.out_private, created.out_public)
                .map_err(tpm("loading the attestation key"))?;
            let (public, name, _) = ctx
                .read_public(handle)
                .map_err(tpm("reading the attestation key"))?;
            let public_area = public
                .marshall()
                .map_err(tpm("marshalling the attestation key"))?;
            let (compressed, computed) = attestation_key_from_public(&public_area)?;
            if computed != name.value() {
                return Err(RootOfTrustError::Module(
                    "TPM: the attestation key's name is not its public area's".into(),
                ));
            }
            Ok(AttestationKey {
                handle,
                public: compressed,
                name: computed,
                public_area,
            })
        })
    }

    /// Quotes PCRs `pcrs` (increasing) of the SHA-256 bank over `qualifying_data` with `key`,
    /// with the PCR values read just before (read again and re-quoted, up to 5 times, if a PCR
    /// moved in between).
    pub fn quote(
        &self,
        key: &AttestationKey,
        qualifying_data: &[u8; 32],
        pcrs: &[u8],
    ) -> Result<TpmQuote, RootOfTrustError> {
        if pcrs.is_empty() || pcrs.iter().any(|&i| i >= 24) {
            return Err(RootOfTrustError::Module(
                "TPM: quote at least one PCR, each below 24".into(),
            ));
        }
        let slots = pcrs
            .iter()
            .map(|&i| PcrSlot::try_from(1u32 << i).map_err(tpm("naming the PCR selection")))
            .collect::<Result<Vec<_>, _>>()?;
        let selection_of = |slots: &[PcrSlot]| {
            PcrSelectionListBuilder::new()
                .with_selection(HashingAlgorithm::Sha256, slots)
                .build()
        };
        let selection = || selection_of(&slots);
        self.with(|ctx| {
            for _ in 0..5 {
                // One PCR_Read returns at most 8 values.
                let mut values: Vec<[u8; 32]> = Vec::with_capacity(slots.len());
                for chunk in slots.chunks(8) {
                    let (_, _, digests) = ctx
                        .execute_without_session(|ctx| ctx.pcr_read(selection_of(chunk)?))
                        .map_err(|e| RootOfTrustError::Module(format!("TPM: reading PCRs: {e}")))?;
                    values.extend(digests.value().iter().map(|d| pad32(d.value())));
                }
                let (attest, signature) = ctx
                    .execute_with_nullauth_session(|ctx| {
                        ctx.quote(
                            key.handle,
                            Data::try_from(qualifying_data.to_vec())?,
                            SignatureScheme::EcDsa {
                                hash_scheme: tss_esapi::structures::HashScheme::new(
                                    HashingAlgorithm::Sha256,
                                ),
                            },
                            selection()?,
                        )
                    })
                    .map_err(tpm("quoting"))?;
                let attest = attest.marshall().map_err(tpm("marshalling the quote"))?;
                let Signature::EcDsa(ecc) = signature else {
                    return Err(RootOfTrustError::Module("TPM: not an ECDSA quote".into()));
                };
                let mut rs = [0u8; 64];
                rs[..32].copy_from_slice(&pad32(ecc.signature_r().value()));
                rs[32..].copy_from_slice(&pad32(ecc.signature_s().value()));
                let quote = TpmQuote {
                    attest: attest.try_into().map_err(|_| {
                        RootOfTrustError::Module("TPM: the quote is too large".into())
                    })?,
                    signature: rs,
                    pcrs: pcrs
                        .iter()
                        .copied()
                        .zip(values)
                        .collect::<Vec<_>>()
                        .try_into()
                        .map_err(|_| RootOfTrustError::Module("TPM: too many PCRs".into()))?,
                };
                // The values read must be the ones quoted: a PCR may move in between.
                let attested = crate::tpm_quote::parse_attest(&quote.attest)
                    .map_err(|e| RootOfTrustError::Module(format!("TPM: {e}")))?;
                if crate::tpm_quote::pcr_digest(&quote) == attested.pcr_digest.as_slice() {
                    return Ok(quote);
                }
            }
            Err(RootOfTrustError::Module(
                "TPM: the PCRs kept moving while quoting".into(),
            ))
        })
    }

    /// Recovers a credential made for `key` with [`crate::credential::make_credential`]
    /// (`TPM2_ActivateCredential`; the EK's policy is satisfied with `PolicySecret` of the
    /// endorsement hierarchy). Fails unless this TPM holds the EK and `key` is the key named.
    pub fn activate_credential(
        &self,
        key: &AttestationKey,
        credential: &Credential,
    ) -> Result<Vec<u8>, RootOfTrustError> {
        self.with(|ctx| {
            let policy = ctx
                .start_auth_session(
                    None,
                    None,
                    None,
                    SessionType::Policy,
                    SymmetricDefinition::AES_128_CFB,
                    HashingAlgorithm::Sha256,
                )
                .map_err(tpm("starting a policy session"))?
                .ok_or_else(|| RootOfTrustError::Module("TPM: no policy session".into()))?;
            let (attributes, mask) = SessionAttributesBuilder::new()
                .with_decrypt(true)
                .with_encrypt(true)
                .build();
            let activated = ctx
                .tr_sess_set_attributes(policy, attributes, mask)
                .and_then(|()| {
                    ctx.execute_with_nullauth_session(|ctx| {
                        ctx.policy_secret(
                            PolicySession::try_from(policy)?,
                            AuthHandle::Endorsement,
                            Default::default(),
                            Default::default(),
                            Default::default(),
                            None,
                        )
                    })
                })
                .and_then(|_| {
                    ctx.execute_with_sessions(
                        (Some(AuthSession::Password), Some(policy), None),
                        |ctx| {
                            ctx.activate_credential(
                                key.handle,
                                self.ek,
                                IdObject::try_from(credential.id_object.clone())?,
                                EncryptedSecret::try_from(credential.encrypted_secret.clone())?,
                            )
                        },
                    )
                });
            let flushed = ctx.flush_context(SessionHandle::from(policy).into());
            let secret = activated.map_err(tpm("activating the credential"))?;
            flushed.map_err(tpm("flushing the policy session"))?;
            Ok(secret.value().to_vec())
        })
    }

    /// Extends the debug PCR 16 with `digest` (SHA-256 bank): for tests and for binding data.
    pub fn extend_pcr16(&self, digest: [u8; 32]) -> Result<(), RootOfTrustError> {
        self.with(|ctx| {
            let mut values = DigestValues::new();
            values.set(
                HashingAlgorithm::Sha256,
                Digest::try_from(digest.to_vec()).map_err(tpm("building the digest"))?,
            );
            ctx.execute_with_nullauth_session(|ctx| ctx.pcr_extend(PcrHandle::Pcr16, values))
                .map_err(tpm("extending PCR 16"))
        })
    }
}

/// The primaries of the owner hierarchy this backend derives (deterministic: the same template
/// on the same TPM gives the same key at every boot, so nothing is stored but sealed blobs).
fn device_key_template() -> Result<Public, tss_esapi::Error> {
    tss_esapi::utils::create_unrestricted_signing_ecc_public(
        EccScheme::EcDsa(HashScheme::new(HashingAlgorithm::Sha256)),
        EccCurve::NistP256,
    )
}

fn storage_key_template() -> Result<Public, tss_esapi::Error> {
    tss_esapi::utils::create_restricted_decryption_rsa_public(
        tss_esapi::abstraction::cipher::Cipher::aes_128_cfb().try_into()?,
        RsaKeyBits::Rsa2048,
        tss_esapi::structures::RsaExponent::default(),
    )
}

fn sealed_object_template() -> Result<Public, tss_esapi::Error> {
    PublicBuilder::new()
        .with_public_algorithm(PublicAlgorithm::KeyedHash)
        .with_name_hashing_algorithm(HashingAlgorithm::Sha256)
        .with_object_attributes(
            ObjectAttributesBuilder::new()
                .with_fixed_tpm(true)
                .with_fixed_parent(true)
                .with_user_with_auth(true)
                .build()?,
        )
        .with_keyed_hash_parameters(PublicKeyedHashParameters::new(KeyedHashScheme::Null))
        .with_keyed_hash_unique_identifier(Digest::default())
        .build()
}

/// Runs `f` with a transient primary of `template` in the owner hierarchy, flushed after.
fn with_primary<T>(
    ctx: &mut Context,
    template: Public,
    f: impl FnOnce(&mut Context, KeyHandle) -> Result<T, tss_esapi::Error>,
) -> Result<T, tss_esapi::Error> {
    let primary = ctx
        .execute_with_nullauth_session(|ctx| {
            ctx.create_primary(Hierarchy::Owner, template, None, None, None, None)
        })?
        .key_handle;
    let result = f(ctx, primary);
    let flushed = ctx.flush_context(primary.into());
    let value = result?;
    flushed?;
    Ok(value)
}

/// The TPM as a gateway's root of trust: the device key is a P-256 signing primary of the
/// owner hierarchy, the same at every start; sealed data is a sealed object under the storage
/// primary, whose public and private parts are the blob. The level is
/// [`HardwareLevel::GatewayHsm`]: the keys never leave the TPM (an HPC's own TPM proves more,
/// through its quotes: [`HardwareLevel::HpcTpm`]).
pub struct TpmRootOfTrust {
    tpm: Tpm,
    public: [u8; 33],
}

impl TpmRootOfTrust {
    /// Derives the device key of `tpm`.
    pub fn new(tpm: Tpm) -> Result<Self, RootOfTrustError> {
        let public = tpm.with(|ctx| {
            let (x, y) = with_primary(
                ctx,
                device_key_template().map_err(tpm_err("templating the device key"))?,
                |ctx, key| {
                    let (public, _, _) = ctx.read_public(key)?;
                    match public {
                        Public::Ecc { unique, .. } => {
                            Ok((pad32(unique.x().value()), pad32(unique.y().value())))
                        }
                        _ => Err(tss_esapi::Error::WrapperError(
                            tss_esapi::WrapperErrorKind::WrongValueFromTpm,
                        )),
                    }
                },
            )
            .map_err(tpm_err("deriving the device key"))?;
            compressed(&x, &y)
        })?;
        Ok(Self { tpm, public })
    }
}

fn tpm_err(what: &'static str) -> impl Fn(tss_esapi::Error) -> RootOfTrustError {
    move |e| RootOfTrustError::Module(format!("TPM: {what}: {e}"))
}

fn compressed(x: &[u8; 32], y: &[u8; 32]) -> Result<[u8; 33], RootOfTrustError> {
    crate::p256_compressed(&[x.as_slice(), y.as_slice()].concat())
        .ok_or_else(|| RootOfTrustError::Module("TPM: a key off the curve".into()))
}

impl crate::RootOfTrust for TpmRootOfTrust {
    fn level(&self) -> HardwareLevel {
        HardwareLevel::GatewayHsm
    }

    fn device_public_key(&self) -> DevicePublicKey {
        DevicePublicKey::EcdsaP256(self.public)
    }

    fn sign(&self, message: &[u8]) -> Result<DeviceSignature, RootOfTrustError> {
        let digest: [u8; 32] = <sha2::Sha256 as sha2::Digest>::digest(message).into();
        self.tpm.with(|ctx| {
            let template = device_key_template().map_err(tpm_err("templating the device key"))?;
            let signature = with_primary(ctx, template, |ctx, key| {
                let ticket = HashcheckTicket::try_from(TPMT_TK_HASHCHECK {
                    tag: TPM2_ST_HASHCHECK,
                    hierarchy: TPM2_RH_NULL,
                    digest: Default::default(),
                })?;
                ctx.execute_with_nullauth_session(|ctx| {
                    ctx.sign(
                        key,
                        Digest::try_from(digest.to_vec())?,
                        SignatureScheme::Null,
                        ticket,
                    )
                })
            })
            .map_err(tpm_err("signing"))?;
            let Signature::EcDsa(ecc) = signature else {
                return Err(RootOfTrustError::Module(
                    "TPM: not an ECDSA signature".into(),
                ));
            };
            let mut rs = [0u8; 64];
            rs[..32].copy_from_slice(&pad32(ecc.signature_r().value()));
            rs[32..].copy_from_slice(&pad32(ecc.signature_s().value()));
            // ECDSA signatures are normalised to low s, as verifiers expect.
            let normalised = p256::ecdsa::Signature::from_slice(&rs)
                .map_err(|_| RootOfTrustError::Module("TPM: a malformed signature".into()))?;
            let normalised = normalised.normalize_s().unwrap_or(normalised);
            rs.copy_from_slice(&normalised.to_bytes());
            Ok(DeviceSignature::EcdsaP256(rs))
        })
    }

    fn seal(&self, data: &[u8]) -> Result<Vec<u8>, RootOfTrustError> {
        self.tpm.with(|ctx| {
            let template = storage_key_template().map_err(tpm_err("templating the storage key"))?;
            let created = with_primary(ctx, template, |ctx, storage| {
                ctx.execute_with_nullauth_session(|ctx| {
                    ctx.create(
                        storage,
                        sealed_object_template()?,
                        None,
                        Some(SensitiveData::try_from(data.to_vec())?),
                        None,
                        None,
                    )
                })
            })
            .map_err(tpm_err("sealing"))?;
            let public = created
                .out_public
                .marshall()
                .map_err(tpm_err("marshalling the sealed object"))?;
            let private = created.out_private.value().to_vec();
            let mut blob = Vec::with_capacity(4 + public.len() + private.len());
            for part in [&public, &private] {
                blob.extend_from_slice(&(part.len() as u16).to_be_bytes());
                blob.extend_from_slice(part);
            }
            Ok(blob)
        })
    }

    fn unseal(&self, sealed: &[u8]) -> Result<Vec<u8>, RootOfTrustError> {
        let mut rest = sealed;
        let mut part = || -> Result<Vec<u8>, RootOfTrustError> {
            if rest.len() < 2 {
                return Err(RootOfTrustError::Unseal);
            }
            let n = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
            let body = rest.get(2..2 + n).ok_or(RootOfTrustError::Unseal)?.to_vec();
            rest = &rest[2 + n..];
            Ok(body)
        };
        let (public, private) = (part()?, part()?);
        let public = Public::unmarshall(&public).map_err(|_| RootOfTrustError::Unseal)?;
        let private = Private::try_from(private).map_err(|_| RootOfTrustError::Unseal)?;
        self.tpm.with(|ctx| {
            let template = storage_key_template().map_err(tpm_err("templating the storage key"))?;
            with_primary(ctx, template, |ctx, storage| {
                let object =
                    ctx.execute_with_nullauth_session(|ctx| ctx.load(storage, private, public))?;
                let data = ctx.execute_with_nullauth_session(|ctx| ctx.unseal(object.into()));
                let flushed = ctx.flush_context(object.into());
                let data = data?;
                flushed?;
                Ok(data.value().to_vec())
            })
            .map_err(|_| RootOfTrustError::Unseal)
        })
    }
}

impl Drop for Tpm {
    fn drop(&mut self) {
        if let Ok(mut context) = self.context.lock() {
            let _ = flush_transient_objects(&mut context);
        }
    }
}

/// Flushes every transient object in the TPM: without a resource manager (a raw device, or
/// swtpm) objects a killed earlier client loaded stay, and a TPM holds only three. This
/// backend is the TPM's only user on an HPC.
fn flush_transient_objects(context: &mut Context) -> Result<(), RootOfTrustError> {
    use tss_esapi::{
        constants::{tss::TPM2_TRANSIENT_FIRST, CapabilityType},
        handles::TpmHandle,
        structures::CapabilityData,
    };
    let (data, _) = context
        .get_capability(CapabilityType::Handles, TPM2_TRANSIENT_FIRST, 64)
        .map_err(tpm("listing transient objects"))?;
    if let CapabilityData::Handles(handles) = data {
        for handle in handles.iter() {
            if let TpmHandle::Transient(_) = handle {
                let object = context
                    .execute_without_session(|ctx| ctx.tr_from_tpm_public(*handle))
                    .map_err(tpm("naming a transient object"))?;
                context
                    .flush_context(object)
                    .map_err(tpm("flushing a transient object"))?;
            }
        }
    }
    Ok(())
}

/// The attestation key a marshalled `TPMT_PUBLIC` describes, checked to be one the TPM made and
/// keeps (fixedTPM, fixedParent, sensitiveDataOrigin), restricted to signing TPM-made data
/// (restricted, sign, not decrypt), ECDSA-SHA-256 on P-256 with a SHA-256 name: its
/// compressed key and the name the gateway computes (`0x000B ‖ SHA-256(TPMT_PUBLIC)`), so the
/// credential is made for this key and no other. What a gateway runs on an agent's claim.
pub fn attestation_key_from_public(
    public_area: &[u8],
) -> Result<([u8; 33], Vec<u8>), RootOfTrustError> {
    let bad = |what: &str| RootOfTrustError::Module(format!("attestation key: {what}"));
    let public = Public::unmarshall(public_area).map_err(|_| bad("not a TPMT_PUBLIC"))?;
    if public.marshall().ok().as_deref() != Some(public_area) {
        return Err(bad("trailing or non-canonical bytes"));
    }
    let Public::Ecc {
        object_attributes,
        name_hashing_algorithm,
        parameters,
        unique,
        ..
    } = public
    else {
        return Err(bad("not an ECC key"));
    };
    let attributes_ok = object_attributes.fixed_tpm()
        && object_attributes.fixed_parent()
        && object_attributes.sensitive_data_origin()
        && object_attributes.restricted()
        && object_attributes.sign_encrypt()
        && !object_attributes.decrypt();
    if !attributes_ok {
        return Err(bad("not a restricted signing key the TPM made and keeps"));
    }
    if name_hashing_algorithm != HashingAlgorithm::Sha256
        || parameters.ecc_curve() != EccCurve::NistP256
        || parameters.ecc_scheme() != EccScheme::EcDsa(HashScheme::new(HashingAlgorithm::Sha256))
    {
        return Err(bad("not ECDSA-SHA-256 on P-256 with a SHA-256 name"));
    }
    let (x, y) = (unique.x().value(), unique.y().value());
    if x.len() > 32 || y.len() > 32 {
        return Err(bad("coordinates too long"));
    }
    let compressed = compressed(&pad32(x), &pad32(y))?;
    let mut name = vec![0x00, 0x0b];
    name.extend_from_slice(&<sha2::Sha256 as sha2::Digest>::digest(public_area));
    Ok((compressed, name))
}

/// A big-endian number of up to 32 bytes, left-padded to 32.
fn pad32(value: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    let n = value.len().min(32);
    out[32 - n..].copy_from_slice(&value[value.len() - n..]);
    out
}

/// Checks that the EK certificate `der` chains to one of the pinned CA certificates
/// (`roots`, PEM or DER) through the `intermediates`, and returns its RSA modulus.
pub fn verify_ek_certificate(
    der: &[u8],
    roots: &[Vec<u8>],
    intermediates: &[Vec<u8>],
) -> Result<Vec<u8>, RootOfTrustError> {
    use openssl::{
        stack::Stack,
        x509::{store::X509StoreBuilder, X509StoreContext, X509},
    };
    let bad = |what: &str| RootOfTrustError::Module(format!("EK certificate: {what}"));
    let parse = |bytes: &[u8]| X509::from_der(bytes).or_else(|_| X509::from_pem(bytes));
    let certificate = X509::from_der(der).map_err(|e| bad(&e.to_string()))?;
    let mut store = X509StoreBuilder::new().map_err(|e| bad(&e.to_string()))?;
    for root in roots {
        store
            .add_cert(parse(root).map_err(|e| bad(&format!("a pinned CA: {e}")))?)
            .map_err(|e| bad(&e.to_string()))?;
    }
    let store = store.build();
    let mut chain = Stack::new().map_err(|e| bad(&e.to_string()))?;
    for intermediate in intermediates {
        chain
            .push(parse(intermediate).map_err(|e| bad(&format!("an intermediate: {e}")))?)
            .map_err(|e| bad(&e.to_string()))?;
    }
    let mut context = X509StoreContext::new().map_err(|e| bad(&e.to_string()))?;
    let valid = context
        .init(&store, &certificate, &chain, |c| c.verify_cert())
        .map_err(|e| bad(&e.to_string()))?;
    if !valid {
        return Err(bad(&format!(
            "does not chain to a pinned CA ({})",
            context.error()
        )));
    }
    let key = certificate
        .public_key()
        .and_then(|k| k.rsa())
        .map_err(|_| bad("its key is not RSA"))?;
    Ok(key.n().to_vec())
}
