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
    attributes::SessionAttributesBuilder,
    constants::SessionType,
    handles::{AuthHandle, KeyHandle, PcrHandle, SessionHandle},
    interface_types::{
        algorithm::{AsymmetricAlgorithm, HashingAlgorithm, SignatureSchemeAlgorithm},
        ecc::EccCurve,
        key_bits::RsaKeyBits,
        session_handles::{AuthSession, PolicySession},
    },
    structures::{
        Data, Digest, DigestValues, EncryptedSecret, IdObject, PcrSelectionListBuilder, PcrSlot,
        Public, Signature, SignatureScheme, SymmetricDefinition,
    },
    tcti_ldr::TctiNameConf,
    traits::Marshall,
    Context,
};

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
            let Public::Ecc { unique, .. } = public else {
                return Err(RootOfTrustError::Module(
                    "TPM: the attestation key is not ECC".into(),
                ));
            };
            let mut sec1 = vec![4u8];
            sec1.extend_from_slice(&pad32(unique.x().value()));
            sec1.extend_from_slice(&pad32(unique.y().value()));
            let key = p256::PublicKey::from_sec1_bytes(&sec1).map_err(|_| {
                RootOfTrustError::Module("TPM: the attestation key is off the curve".into())
            })?;
            let mut compressed = [0u8; 33];
            compressed.copy_from_slice(
                p256::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(&key, true).as_bytes(),
            );
            Ok(AttestationKey {
                handle,
                public: compressed,
                name: name.value().to_vec(),
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
        let slots = pcrs
            .iter()
            .map(|&i| PcrSlot::try_from(1u32 << (i % 32)).map_err(tpm("naming the PCR selection")))
            .collect::<Result<Vec<_>, _>>()?;
        let selection = || {
            PcrSelectionListBuilder::new()
                .with_selection(HashingAlgorithm::Sha256, &slots)
                .build()
        };
        self.with(|ctx| {
            for _ in 0..5 {
                let (_, _, digests) = ctx
                    .execute_without_session(|ctx| ctx.pcr_read(selection()?))
                    .map_err(|e| RootOfTrustError::Module(format!("TPM: reading PCRs: {e}")))?;
                let values: Vec<[u8; 32]> =
                    digests.value().iter().map(|d| pad32(d.value())).collect();
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
                let mut hasher = <sha2::Sha256 as sha2::Digest>::new();
                for (_, value) in quote.pcrs.iter() {
                    sha2::Digest::update(&mut hasher, value);
                }
                if sha2::Digest::finalize(hasher).as_slice() == attested.pcr_digest {
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
