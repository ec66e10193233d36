//! Secret randomness from the operating system (salts, signing keys, later reset tokens).

use crate::errors::{AuthError, AuthResult};

pub fn fill(buf: &mut [u8]) -> AuthResult<()> {
    // Without an OS RNG no secret can be made safely; refuse instead of degrading.
    getrandom::getrandom(buf).map_err(|_| {
        AuthError::ObjectNotInPrerequisiteState("the operating system random source is unavailable".into())
    })
}

pub fn bytes<const N: usize>() -> AuthResult<[u8; N]> {
    let mut buf = [0u8; N];
    fill(&mut buf)?;
    Ok(buf)
}
