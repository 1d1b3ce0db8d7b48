//! Byte-for-byte checks against the published test vectors:
//! RFC 9578 Appendix A.2 ("Issuance Protocol 2 - Blind RSA, 2048"), test
//! vectors 1 (origin-bound, with redemption context) and 4 (no origin, no
//! context), and RFC 9474 Appendix A, the RSABSSA-SHA384-PSS-Deterministic
//! test vector (the variant token type 0x0002 uses).
//!
//! The hex strings keep the line breaks of the RFC text they were
//! transcribed from. Transcription is cross-checked by the vectors
//! themselves: SHA-256(pkS) must equal the token_key_id inside each token.

use blind_rsa_signatures::reexports::crypto_bigint::BoxedUint;
use blind_rsa_signatures::{Deterministic, PSS, SecretKey, Sha384};
use cloister_privacypass::client::request_token_with;
use cloister_privacypass::{
    IssuerPublicKey, Token, TokenChallenge, TokenRequest, TokenResponse, issue,
};
use rand_core::{Infallible, TryCryptoRng, TryRng};

use crate::common;
use common::{PK_S, rfc_issuer_key, unhex};

/// An RNG that hands out queued byte strings, one per `fill_bytes` call:
/// how the vectors' salt and blind are fed into blinding.
struct QueuedBytes(Vec<Vec<u8>>);

impl TryRng for QueuedBytes {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let mut b = [0; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut b = [0; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        assert!(!self.0.is_empty(), "vector RNG exhausted");
        let next = self.0.remove(0);
        assert_eq!(
            next.len(),
            dst.len(),
            "vector RNG asked for an unexpected length"
        );
        dst.copy_from_slice(&next);
        Ok(())
    }
}

impl TryCryptoRng for QueuedBytes {}

/// `r` for the RNG (little-endian, as the bigint sampler reads it) such
/// that the blinding inverse `r^-1 mod n` equals `inv`.
fn blind_r_for_inverse(n: &[u8], inv: &[u8]) -> Vec<u8> {
    let bits = (n.len() * 8) as u32;
    let n = BoxedUint::from_be_slice(n, bits)
        .expect("n")
        .to_nz()
        .expect("n nonzero");
    let inv = BoxedUint::from_be_slice(inv, bits).expect("inv");
    let r: BoxedUint = Option::from(inv.invert_mod(&n)).expect("inv invertible");
    r.to_le_bytes().to_vec()
}

struct Rfc9578Vector {
    token_challenge: &'static str,
    nonce: &'static str,
    blind: &'static str,
    salt: &'static str,
    token_request: &'static str,
    token_response: &'static str,
    token: &'static str,
}

/// RFC 9578 Appendix A.2, test vector 1.
fn vector_1() -> Rfc9578Vector {
    const TOKEN_CHALLENGE: &str = concat!(
        "0002000e6973737565722e6578616d706c65208e7acc900e",
        "393381e8810b7c9e4a68b5163f1f880ab6688a6ffe780923609e88000e6f72696",
        "7696e2e6578616d706c65",
    );
    const NONCE: &str = "aa72019d1f951df197021ce63876fe8b0a02dc1c31a12b0a2dd1508d07827f05";
    const BLIND: &str = concat!(
        "425421de54c7381864ce36473abfb988c454fe6c27de863de702a6a2ad",
        "ca153fa2de47bd8fcd62734caa8ce1f920b77d980ab58c32d16dde54873f28ca9",
        "68e8c125b8363514be68972f553655bcc7f80a284cc327e47e804a47333c5b3cd",
        "f773312cc7ad9fda748aed0baa7e19c5a2d1dafda718f086d7fc0a4bc02d488e0",
        "f20812daee335af7177b7a8369bd617066aed7a58f659f295c36b418827f67972",
        "5b81ca14ea16fb82df21ad76da1ac38dcf24bf6252f8510e2308608ac9197f6cb",
        "54fdcb19db17837302a2b87d659c5605f35f3709a130f0c3d50e172f0cae36cbc",
        "9467f9914895a215a9e32443bcafff795273ccf8965a7eaa8c0b2184763e3e5c",
    );
    const SALT: &str = concat!(
        "3d980852fa570c064204feb8d107098db976ef8c2137e8641d234bbd88a",
        "986fdb306a7af220cfadede08f51e1ef61766",
    );
    const TOKEN_REQUEST: &str = concat!(
        "0002086a95be84b63cfed0993bb579194a72a95057e1548ac4",
        "63a9a5b33b011f2b2011d59487f01862f1d8e4d5ea42e73a660fbc3d010b944a5",
        "4da3a4e0942f8894c0884589b438cb902e9a34278970f33c16f351f7dae58d273",
        "c3ab66ef368da36f785e89e24d1d983d5c34311cd21f290f9e89e8646ab0d0a48",
        "988fcd46230de5e7603cd12cc95c7ec5002e5e26737aa7eb69c626476e6c8d465",
        "10ee404a3d7daf3a23b7c66735d363ca13676925c6ed0117f60d165ce1f8ba616",
        "d041b6384baf6da3e2f757cb18e879a4f8595c2dc895ddf1f4279c75768d108b5",
        "c47f95f94e81e2d8b9c8b74476924ab3b7c45243fc99ac5466e8a3680ad37fa15",
        "c96010b274094",
    );
    const TOKEN_RESPONSE: &str = concat!(
        "675d84b751d9e593330ec4b6d7ab69c9a61517e98971f4b73",
        "6150508174b4335761464f237be2d72bbae4b94dffc6143413f6351f1aa4efde6",
        "c32d4d6d9392a008290d56d1222f9b77a1336213e01934f7d972f3bf9ea5a5786",
        "c321352f103b3667e605379a55f0fb925fbb09b8a9f85e7dd4b388a3b49d06fd7",
        "0ba28f6a780e3bc8f6421554fd6c38b63ef19f84ccfcf14709dd0b4d72213c1f0",
        "60893854eba0ea1a147e275da320db5e9849882d5f9179efa8a2d8d3b803f9d14",
        "45ef5c1f660be08883ce9b29a0a992fc035d2938cbb61c440044438dbb8b3ce71",
        "58a8f9827d230482f622d291406ab236b32b122627ae0fd36bd0d6b7607b8044a",
        "ce404d44",
    );
    const TOKEN: &str = concat!(
        "0002aa72019d1f951df197021ce63876fe8b0a02dc1c31a12b0a2dd150",
        "8d07827f055969f643b4cfda5196d4aa86aeb5368834f4f06de46950ed435b3b8",
        "1bd036d44ca572f8982a9ca248a3056186322d93ca147266121ddeb5632c07f1f",
        "71cd2708bc6a21b533d07294b5e900faf5537dd3eb33cee4e08c9670d1e5358fd",
        "184b0e00c637174f5206b14c7bb0e724ebf6b56271e5aa2ed94c051c4a433d302",
        "b23bc52460810d489fb050f9de5c868c6c1b06e3849fd087629f704cc724bc0d0",
        "984d5c339686fcdd75f9a9cdd25f37f855f6f4c584d84f716864f546b696d620c",
        "5bd41a811498de84ff9740ba3003ba2422d26b91eb745c084758974642a420782",
        "01543246ddb58030ea8e722376aa82484dca9610a8fb7e018e396165462e17a03",
        "e40ea7e128c090a911ecc708066cb201833010c1ebd4e910fc8e27a1be467f786",
        "71836a508257123a45e4e0ae2180a434bd1037713466347a8ebe46439d3da1970",
    );
    Rfc9578Vector {
        token_challenge: TOKEN_CHALLENGE,
        nonce: NONCE,
        blind: BLIND,
        salt: SALT,
        token_request: TOKEN_REQUEST,
        token_response: TOKEN_RESPONSE,
        token: TOKEN,
    }
}

/// RFC 9578 Appendix A.2, test vector 4.
fn vector_4() -> Rfc9578Vector {
    const TOKEN_CHALLENGE: &str = "0002000e6973737565722e6578616d706c65000000";
    const NONCE: &str = "494dae41fc7e300c2d09990afcd5d5e1fc95305337dc12f78942c45340bfe8e6";
    const BLIND: &str = concat!(
        "097cb17bcedecfe058dff5c4e517d1e36d7ab8f46252b1ac1933ba378c",
        "32625c0dbc69f5655c2003bf39e75810796cd63675b223cf3162c57108d56e058",
        "4cfce6cad829e74369ada38a095eb3012c912b31ccde7425f93464e353fb17552",
        "be3a8df2913daca61543a33ae45058f218c471dfbc12fb304158e29b6ed35bc07",
        "9e23f1e6173c5dec4545840bbe58e5ad37cbea0a10dca5d9df2781589d27c3410",
        "8477b52c0d32a1370c17f703941fbb1a007a6794e7de2758709c9bbf80f21eec7",
        "922b9bb491eb6aac8c1a14764e648e6be4fff0ae913797067aa0826f366c3103e",
        "103b05653c73b52d7f825a185dccfb806da700db9f53abb848554b7d4f7c28f3",
    );
    const SALT: &str = concat!(
        "49912979f1bf528e5b8228ab1328df74319dce7bdaf45821ceb1100dcf0",
        "42a2dfe852fc9db59b64a5f6493c282504240",
    );
    const TOKEN_REQUEST: &str = concat!(
        "000208244840027ca8c620f8b14caded9a198ba388ccd8541e",
        "962f68a0071535d958d18494afd0bc11da4da8c8b33864f5a8f623b697cd56348",
        "594e11a75479048a72c0ed179b070506c09a7eb6ed3582f572df38cf60fcde11a",
        "52c5ce6d7b23435b60200ad9f66d21f40f323c9aa54307d0b966d4457c37542b6",
        "6bb183ddeafca914fc74831698b5d52f498ee3d165685f49a8d86e39fe6c4b7ec",
        "678f5250908d25e5b873c69b422368121aa4210cadd6fc640907d3cb9a7a3e827",
        "a0e742470f00c2f49dc6c0e8cc9470dbfd73df0ccbb96c10b02af0dd7dee719ec",
        "a11ff8e1b4929e59f3cf319de9bda29a6d968b43083b5d4242f3448d76ada08b8",
        "014f70b97e719",
    );
    const TOKEN_RESPONSE: &str = concat!(
        "c2746ff644cffb28a2c19395fa19dfb61fd135daa837844fb",
        "f9fbe06c253e64e69f53aefddc0fb4833b1b5e58f571134a34f245499c3e73419",
        "549c2c9111cf94f2f68fea3996d47f71e8d8d6fc5b1c074bf74fa59de4cbf32f5",
        "f08d45ea45492f0279c3b1a8d852698edbe1651eb8e09eb223a27386c0feb2f6a",
        "8260235edb36cf433da518100829b63166284b325d87fc941ea3bafe7b6761b70",
        "82e09397837f74b4f0fc838bce8af7242089dd5561f57735926bcbad219fc9fee",
        "85ae49a8e8951f63ca194b7ff018c06ee02267e7267bb996432dc76973819da80",
        "e3e86947b0a4b36d3a972dafaaa3db0e1044b325f02c679996d9bcd3ce51390d5",
        "4bc10b8c",
    );
    const TOKEN: &str = concat!(
        "0002494dae41fc7e300c2d09990afcd5d5e1fc95305337dc12f78942c4",
        "5340bfe8e6b741ec1b6fd05f1e95f8982906aec1612896d9ca97d53eef94ad3c9",
        "fe023f7a4ca572f8982a9ca248a3056186322d93ca147266121ddeb5632c07f1f",
        "71cd2708a55c83dc04292b5d92add1a87b37e54f22f61c58840586f390c50b231",
        "824423378ddcf50e69dc817d45bfad06c7f2a0ac35d2acd7f26b0bc9954c192b0",
        "a0ef28a2a5650e390098dd3cb1166a7cb1716d3dd2d19dc5ca3b1ea6206359de0",
        "002d82bc4fa7e69fb07214b06addcbd2203d1e17f57fc580bcc5a13e0ac15cf94",
        "2182cc2b5d6eaa737a712704114e357e2ec2f10047463ded02a1a0766dc346dd7",
        "212b9711e03ac95eb258ac1164104dc9a0d3e738ae742ab5ed8c5139fc07145a7",
        "88b9f891741ee68f0a66782b7b84a9bb4cb4b3d1b26b67106f397b35b641d882d",
        "7b0185168946de898ef72349a44a47dbdd6d46e9ba9ba543d5701b65c63d645c2",
    );
    Rfc9578Vector {
        token_challenge: TOKEN_CHALLENGE,
        nonce: NONCE,
        blind: BLIND,
        salt: SALT,
        token_request: TOKEN_REQUEST,
        token_response: TOKEN_RESPONSE,
        token: TOKEN,
    }
}

fn run_rfc9578_vector(v: &Rfc9578Vector) {
    let secret = rfc_issuer_key();
    let spki = unhex(PK_S);
    assert_eq!(secret.public_key().spki(), spki.as_slice(), "pkS");
    let public = IssuerPublicKey::from_spki(&spki).expect("pkS parses");

    let challenge_bytes = unhex(v.token_challenge);
    let challenge = TokenChallenge::decode(&challenge_bytes).expect("challenge parses");
    assert_eq!(challenge.encode(), challenge_bytes);

    let nonce: [u8; 32] = unhex(v.nonce).try_into().expect("32-byte nonce");
    // RFC 9578's `blind` is r itself (RFC 9474 §4.2 step 5), not its inverse.
    let mut r_le = unhex(v.blind);
    r_le.reverse();
    let mut rng = QueuedBytes(vec![unhex(v.salt), r_le]);
    let (request, pending) =
        request_token_with(&public, &challenge, nonce, &mut rng).expect("blind");
    assert_eq!(
        hex::encode(request.encode()),
        hex::encode(unhex(v.token_request)),
        "token_request"
    );
    assert_eq!(
        TokenRequest::decode(&unhex(v.token_request)),
        Ok(request.clone())
    );

    let response = issue(std::slice::from_ref(&secret), &request).expect("issue");
    assert_eq!(
        hex::encode(response.encode()),
        hex::encode(unhex(v.token_response)),
        "token_response"
    );

    let response = TokenResponse::decode(&unhex(v.token_response)).expect("response parses");
    let token = pending.finalize(&response).expect("finalize");
    assert_eq!(
        hex::encode(token.encode()),
        hex::encode(unhex(v.token)),
        "token"
    );
    assert_eq!(Token::decode(&unhex(v.token)), Ok(token.clone()));
    assert_eq!(token.token_key_id, *public.key_id());
    public.verify_authenticator(&token).expect("token verifies");
}

#[test]
fn rfc9578_a2_vector_1_byte_for_byte() {
    run_rfc9578_vector(&vector_1());
}

#[test]
fn rfc9578_a2_vector_4_byte_for_byte() {
    run_rfc9578_vector(&vector_4());
}

#[test]
fn rfc9578_token_fails_under_a_changed_byte() {
    let public = IssuerPublicKey::from_spki(&unhex(PK_S)).expect("pkS");
    let good = Token::decode(&unhex(vector_1().token)).expect("token");
    public
        .verify_authenticator(&good)
        .expect("genuine token verifies");
    for index in [2, 40, 70, 200] {
        let mut bytes = good.encode();
        bytes[index] ^= 1;
        let bad = Token::decode(&bytes).expect("still parses");
        assert!(
            public.verify_authenticator(&bad).is_err(),
            "byte {index} flip accepted"
        );
    }
}

/// RFC 9474 Appendix A, RSABSSA-SHA384-PSS-Deterministic test vector.
mod rfc9474 {
    pub const P: &str = concat!(
        "e1f4d7a34802e27c7392a3cea32a262a34dc3691bd87f3f310dc75673488930559c120fd0410194fb8a0da55bd0b8122",
        "7e843fdca6692ae80e5a5d414116d4803fca7d8c30eaaae57e44a1816ebb5c5b0606c536246c7f11985d731684150b63",
        "c9a3ad9e41b04c0b5b27cb188a692c84696b742a80d3cd00ab891f2457443dadfeba6d6daf108602be26d7071803c671",
        "05a5426838e6889d77e8474b29244cefaf418e381b312048b457d73419213063c60ee7b0d81820165864fef93523c963",
        "5c22210956e53a8d96322493ffc58d845368e2416e078e5bcb5d2fd68ae6acfa54f9627c42e84a9d3f2774017e32ebca",
        "06308a12ecc290c7cd1156dcccfb2311",
    );

    pub const Q: &str = concat!(
        "c601a9caea66dc3835827b539db9df6f6f5ae77244692780cd334a006ab353c806426b60718c05245650821d39445d3a",
        "b591ed10a7339f15d83fe13f6a3dfb20b9452c6a9b42eaa62a68c970df3cadb2139f804ad8223d56108dfde30ba7d367",
        "e9b0a7a80c4fdba2fd9dde6661fc73fc2947569d2029f2870fc02d8325acf28c9afa19ecf962daa7916e21afad09eb62",
        "fe9f1cf91b77dc879b7974b490d3ebd2e95426057f35d0a3c9f45f79ac727ab81a519a8b9285932d9b2e5ccd347e59f3",
        "f32ad9ca359115e7da008ab7406707bd0e8e185a5ed8758b5ba266e8828f8d863ae133846304a2936ad7bc7c9803879d",
        "2fc4a28e69291d73dbd799f8bc238385",
    );

    pub const N: &str = concat!(
        "aec4d69addc70b990ea66a5e70603b6fee27aafebd08f2d94cbe1250c556e047a928d635c3f45ee9b66d1bc628a03bac",
        "9b7c3f416fe20dabea8f3d7b4bbf7f963be335d2328d67e6c13ee4a8f955e05a3283720d3e1f139c38e43e0338ad058a",
        "9495c53377fc35be64d208f89b4aa721bf7f7d3fef837be2a80e0f8adf0bcd1eec5bb040443a2b2792fdca522a7472ae",
        "d74f31a1ebe1eebc1f408660a0543dfe2a850f106a617ec6685573702eaaa21a5640a5dcaf9b74e397fa3af18a2f1b7c",
        "03ba91a6336158de420d63188ee143866ee415735d155b7c2d854d795b7bc236cffd71542df34234221a0413e142d8c6",
        "1355cc44d45bda94204974557ac2704cd8b593f035a5724b1adf442e78c542cd4414fce6f1298182fb6d8e53cef1adfd",
        "2e90e1e4deec52999bdc6c29144e8d52a125232c8c6d75c706ea3cc06841c7bda33568c63a6c03817f722b50fcf89823",
        "7d788a4400869e44d90a3020923dc646388abcc914315215fcd1bae11b1c751fd52443aac8f601087d8d42737c18a3fa",
        "11ecd4131ecae017ae0a14acfc4ef85b83c19fed33cfd1cd629da2c4c09e222b398e18d822f77bb378dea3cb360b605e",
        "5aa58b20edc29d000a66bd177c682a17e7eb12a63ef7c2e4183e0d898f3d6bf567ba8ae84f84f1d23bf8b8e261c3729e",
        "2fa6d07b832e07cddd1d14f55325c6f924267957121902dc19b3b32948bdead5",
    );

    pub const E: &str = "010001";

    pub const D: &str = concat!(
        "0d43242aefe1fb2c13fbc66e20b678c4336d20b1808c558b6e62ad16a287077180b177e1f01b12f9c6cd6c52630257cc",
        "ef26a45135a990928773f3bd2fc01a313f1dac97a51cec71cb1fd7efc7adffdeb05f1fb04812c924ed7f4a8269925dad",
        "88bd7dcfbc4ef01020ebfc60cb3e04c54f981fdbd273e69a8a58b8ceb7c2d83fbcbd6f784d052201b88a9848186f2a45",
        "c0d2826870733e6fd9aa46983e0a6e82e35ca20a439c5ee7b502a9062e1066493bdadf8b49eb30d9558ed85abc7afb29",
        "b3c9bc644199654a4676681af4babcea4e6f71fe4565c9c1b85d9985b84ec1abf1a820a9bbebee0df1398aae2c85ab58",
        "0a9f13e7743afd3108eb32100b870648fa6bc17e8abac4d3c99246b1f0ea9f7f93a5dd5458c56d9f3f81ff2216b3c368",
        "0a13591673c43194d8e6fc93fc1e37ce2986bd628ac48088bc723d8fbe293861ca7a9f4a73e9fa63b1b6d0074f5dea2a",
        "624c5249ff3ad811b6255b299d6bc5451ba7477f19c5a0db690c3e6476398b1483d10314afd38bbaf6e2fbdbcd62c3ca",
        "9797a420ca6034ec0a83360a3ee2adf4b9d4ba29731d131b099a38d6a23cc463db754603211260e99d19affc902c915d",
        "7854554aabf608e3ac52c19b8aa26ae042249b17b2d29669b5c859103ee53ef9bdc73ba3c6b537d5c34b6d8f034671d7",
        "f3a8a6966cc4543df223565343154140fd7391c7e7be03e241f4ecfeb877a051",
    );

    pub const MSG: &str = "8f3dc6fb8c4a02f4d6352edf0907822c1210a9b32f9bdda4c45a698c80023aa6b59f8cfec5fdbb36331372ebefedae7d";

    pub const SALT: &str = "051722b35f458781397c3a671a7d3bd3096503940e4c4f1aaa269d60300ce449555cd7340100df9d46944c5356825abf";

    pub const INV: &str = concat!(
        "80682c48982407b489d53d1261b19ec8627d02b8cda5336750b8cee332ae260de57b02d72609c1e0e9f28e2040fc65b6",
        "f02d56dbd6aa9af8fde656f70495dfb723ba01173d4707a12fddac628ca29f3e32340bd8f7ddb557cf819f6b01e445ad",
        "96f874ba235584ee71f6581f62d4f43bf03f910f6510deb85e8ef06c7f09d9794a008be7ff2529f0ebb69decef646387",
        "dc767b74939265fec0223aa6d84d2a8a1cc912d5ca25b4e144ab8f6ba054b54910176d5737a2cff011da431bd5f2a0d2",
        "d66b9e70b39f4b050e45c0d9c16f02deda9ddf2d00f3e4b01037d7029cd49c2d46a8e1fc2c0c17520af1f4b5e25ba396",
        "afc4cd60c494a4c426448b35b49635b337cfb08e7c22a39b256dd032c00adddafb51a627f99a0e1704170ac1f1912e49",
        "d9db10ec04c19c58f420212973e0cb329524223a6aa56c7937c5dffdb5d966b6cd4cbc26f3201dd25c80960a1a111b32",
        "947bb78973d269fac7f5186530930ed19f68507540eed9e1bab8b00f00d8ca09b3f099aae46180e04e3584bd7ca054df",
        "18a1504b89d1d1675d0966c4ae1407be325cdf623cf13ff13e4a28b594d59e3eadbadf6136eee7a59d6a444c9eb4e219",
        "8e8a974f27a39eb63af2c9af3870488b8adaad444674f512133ad80b9220e09158521614f1faadfe8505ef57b7df6813",
        "048603f0dd04f4280177a11380fbfc861dbcbd7418d62155248dad5fdec0991f",
    );

    pub const BLINDED_MSG: &str = concat!(
        "10c166c6a711e81c46f45b18e5873cc4f494f003180dd7f115585d871a28930259654fe28a54dab319cc5011204c8373",
        "b50a57b0fdc7a678bd74c523259dfe4fd5ea9f52f170e19dfa332930ad1609fc8a00902d725cfe50685c95e5b2968c9a",
        "2828a21207fcf393d15f849769e2af34ac4259d91dfd98c3a707c509e1af55647efaa31290ddf48e0133b798562af5ea",
        "bd327270ac2fb6c594734ce339a14ea4fe1b9a2f81c0bc230ca523bda17ff42a377266bc2778a274c0ae5ec5a8cbbe36",
        "4fcf0d2403f7ee178d77ff28b67a20c7ceec009182dbcaa9bc99b51ebbf13b7d542be337172c6474f2cd3561219fe0df",
        "a3fb207cff89632091ab841cf38d8aa88af6891539f263adb8eac6402c41b6ebd72984e43666e537f5f5fe27b2b5aa11",
        "4957e9a580730308a5f5a9c63a1eb599f093ab401d0c6003a451931b6d124180305705845060ebba6b0036154fcef3e5",
        "e9f9e4b87e8f084542fd1dd67e7782a5585150181c01eb6d90cb95883837384a5b91dbb606f266059ecc51b5acbaa280",
        "e45cfd2eec8cc1cdb1b7211c8e14805ba683f9b78824b2eb005bc8a7d7179a36c152cb87c8219e5569bba911bb32a1b9",
        "23ca83de0e03fb10fba75d85c55907dda5a2606bf918b056c3808ba496a4d95532212040a5f44f37e1097f26dc27b98a",
        "51837daa78f23e532156296b64352669c94a8a855acf30533d8e0594ace7c442",
    );

    pub const BLIND_SIG: &str = concat!(
        "364f6a40dbfbc3bbb257943337eeff791a0f290898a6791283bba581d9eac90a6376a837241f5f73a78a5c6746e1306b",
        "a3adab6067c32ff69115734ce014d354e2f259d4cbfb890244fd451a497fe6ecf9aa90d19a2d441162f7eaa7ce3fc4e8",
        "9fd4e76b7ae585be2a2c0fd6fb246b8ac8d58bcb585634e30c9168a434786fe5e0b74bfe8187b47ac091aa571ffea0a8",
        "64cb906d0e28c77a00e8cd8f6aba4317a8cc7bf32ce566bd1ef80c64de041728abe087bee6cadd0b7062bde5ceef308a",
        "23bd1ccc154fd0c3a26110df6193464fc0d24ee189aea8979d722170ba945fdcce9b1b4b63349980f3a92dc2e5418c54",
        "d38a862916926b3f9ca270a8cf40dfb9772bfbdd9a3e0e0892369c18249211ba857f35963d0e05d8da98f1aa0c6bba58",
        "f47487b8f663e395091275f82941830b050b260e4767ce2fa903e75ff8970c98bfb3a08d6db91ab1746c86420ee2e909",
        "bf681cac173697135983c3594b2def673736220452fde4ddec867d40ff42dd3da36c84e3e52508b891a00f50b4f62d11",
        "2edb3b6b6cc3dbd546ba10f36b03f06c0d82aeec3b25e127af545fac28e1613a0517a6095ad18a98ab79f68801e05c17",
        "5e15bae21f821e80c80ab4fdec6fb34ca315e194502b8f3dcf7892b511aee45060e3994cd15e003861bc7220a2babd7b",
        "40eda03382548a34a7110f9b1779bf3ef6011361611e6bc5c0dc851e1509de1a",
    );

    pub const SIG: &str = concat!(
        "6fef8bf9bc182cd8cf7ce45c7dcf0e6f3e518ae48f06f3c670c649ac737a8b8119a34d51641785be151a697ed7825fdf",
        "ece82865123445eab03eb4bb91cecf4d6951738495f8481151b62de869658573df4e50a95c17c31b52e154ae26a04067",
        "d5ecdc1592c287550bb982a5bb9c30fd53a768cee6baabb3d483e9f1e2da954c7f4cf492fe3944d2fe456c1ecaf08403",
        "69e33fb4010e6b44bb1d721840513524d8e9a3519f40d1b81ae34fb7a31ee6b7ed641cb16c2ac999004c2191de020145",
        "7523f5a4700dd649267d9286f5c1d193f1454c9f868a57816bf5ff76c838a2eeb616a3fc9976f65d4371deecfbab2936",
        "2caebdff69c635fe5a2113da4d4d8c24f0b16a0584fa05e80e607c5d9a2f765f1f069f8d4da21f27c2a3b5c984b4ab24",
        "899bef46c6d9323df4862fe51ce300fca40fb539c3bb7fe2dcc9409e425f2d3b95e70e9c49c5feb6ecc9d43442c33d50",
        "003ee936845892fb8be475647da9a080f5bc7f8a716590b3745c2209fe05b17992830ce15f32c7b22cde755c8a2fe50b",
        "d814a0434130b807dc1b7218d4e85342d70695a5d7f29306f25623ad1e8aa08ef71b54b8ee447b5f64e73d09bdd6c3b7",
        "ca224058d7c67cc7551e9241688ada12d859cb7646fbd3ed8b34312f3b49d69802f0eaa11bc4211c2f7a29cd5c01ed01",
        "a39001c5856fab36228f5ee2f2e1110811872fe7c865c42ed59029c706195d52",
    );
}

#[test]
fn rfc9474_pss_deterministic_vector_byte_for_byte() {
    use rfc9474::*;
    let uint = |h: &str| BoxedUint::from_str_radix_vartime(h, 16).expect("uint");
    let inner =
        rsa::RsaPrivateKey::from_components(uint(N), uint(E), uint(D), vec![uint(P), uint(Q)])
            .expect("RFC 9474 key");
    let secret = SecretKey::<Sha384, PSS, Deterministic>::new(inner);
    let public = secret.public_key().expect("public key");

    let mut rng = QueuedBytes(vec![
        unhex(SALT),
        blind_r_for_inverse(&unhex(N), &unhex(INV)),
    ]);
    let blinded = public.blind(&mut rng, unhex(MSG)).expect("blind");
    assert_eq!(hex::encode(&blinded.secret.0), INV, "inv");
    assert_eq!(
        hex::encode(&blinded.blind_message.0),
        BLINDED_MSG,
        "blinded_msg"
    );

    let blind_sig = secret
        .blind_sign(&blinded.blind_message)
        .expect("blind_sign");
    assert_eq!(hex::encode(&blind_sig.0), BLIND_SIG, "blind_sig");

    let sig = public
        .finalize(&blind_sig, &blinded, unhex(MSG))
        .expect("finalize");
    assert_eq!(hex::encode(&sig.0), SIG, "sig");
    public.verify(&sig, None, unhex(MSG)).expect("verify");
    assert!(public.verify(&sig, None, b"another message").is_err());
}
