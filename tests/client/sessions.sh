#!/usr/bin/env bash
# Sessions and keys from outside the database (issue 12):
# - two refreshes of one refresh token at the same moment (two tabs, a server render) both get
#   the same successor, and the session lives on;
# - tokens signed with each asymmetric algorithm verify in the database and, offline, with an
#   independent library (PyJWT) against nile_auth.jwks(); a token PyJWT signs with a key of its
#   own under a published kid is refused; a revoked key's tokens fail and it leaves the JWKS.
# Runs against the server in PGHOST/PGPORT as a superuser (scripts/test.sh sets them).
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
DB=nile_sessions
PY=/usr/bin/python3   # Debian's, with python3-jwt and python3-cryptography (scripts/install-deps.sh)

app_db $DB sessions_web
web() { "$BIN/psql" -X -q -A -t -d $DB -U sessions_web -v VERBOSITY=sqlstate "$@"; }

# --- Concurrent refreshes ---------------------------------------------------------------------
signup=$(web -c "SELECT nile_auth.signup('ray@sessions.test', 'ray password 1')")
user=$(echo "$signup" | $PY -c 'import json,sys; print(json.load(sys.stdin)["id"])')
r1=$(echo "$signup" | $PY -c 'import json,sys; print(json.load(sys.stdin)["refreshToken"])')
first=$(mktemp)
# The first refresh holds its transaction open; the second arrives meanwhile and waits for it.
web >"$first" 2>&1 <<SQL &
BEGIN;
SELECT nile_auth.refresh('$r1')->>'refreshToken';
SELECT pg_sleep(1.5);
COMMIT;
SQL
sleep 0.5
second=$(web -c "SELECT nile_auth.refresh('$r1')->>'refreshToken'")
wait
first=$(grep '^nrt_' "$first")
check "two concurrent refreshes: the first got a successor" "nrt_" "${first:0:4}"
check "two concurrent refreshes of one token get the same successor" "$first" "$second"
check "the successor renews, so the session did not end" "$user" \
  "$(web -c "SELECT nile_auth.refresh('$first')->>'id'")"
check "no session ended by the race" "0" \
  "$(q -d $DB -c "SELECT count(*) FROM nile_auth.sessions WHERE user_id = '$user' AND ended IS NOT NULL")"

# --- Each algorithm, verified in the database and offline against jwks() ------------------------
offline() { # token jwks audience: PyJWT's verdict, the subject or the error's class name
  $PY - "$1" "$2" "$3" <<'PY'
import json, sys, jwt
token, jwks, aud = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
try:
    kid = jwt.get_unverified_header(token)["kid"]
    entry = next(k for k in jwks["keys"] if k["kid"] == kid)
    claims = jwt.decode(token, jwt.PyJWK.from_dict(entry).key, algorithms=[entry["alg"]], audience=aud, issuer="nile_auth",
                        options={"require": ["exp", "iat", "nbf", "sub", "sid"]})
    print(claims["sub"])
except StopIteration:
    print("unknown kid")
except jwt.PyJWTError as e:
    print(type(e).__name__)
PY
}
forge() { # jwks alg user: a token PyJWT signs with a fresh key of its own, under the first published kid
  $PY - "$1" "$2" "$3" "$DB" <<'PY'
import json, sys, time, jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
jwks, alg, user, aud = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
key = ec.generate_private_key(ec.SECP256R1()) if alg == "ES256" else ed25519.Ed25519PrivateKey.generate()
now = int(time.time())
print(jwt.encode({"sub": user, "email": "x@y.z", "iat": now, "nbf": now, "exp": now + 600, "jti": "j",
                  "iss": "nile_auth", "aud": aud}, key, algorithm=alg, headers={"kid": jwks["keys"][0]["kid"]}))
PY
}

declare -A tokens kids
for alg in ES256 EdDSA; do
  # The standby becomes current and a standby of $alg is made; the second rotation makes it current.
  q -d $DB -c "SELECT nile_auth.rotate_signing_key('$alg')" >/dev/null
  kids[$alg]=$(q -d $DB -c "SELECT nile_auth.rotate_signing_key()")
  tokens[$alg]=$(web -c "SELECT nile_auth.login('ray@sessions.test', 'ray password 1')->'token'->>'jwt'")
  jwks=$(q -d $DB -c "SELECT nile_auth.jwks()")
  check "$alg: the token's header names $alg" "$alg" \
    "$(echo "${tokens[$alg]}" | cut -d. -f1 | $PY -c 'import base64,json,sys; s=sys.stdin.read().strip(); print(json.loads(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)))["alg"])')"
  check "$alg: verifies in the database" "$user" "$(web -c "SELECT nile_auth.authenticate('${tokens[$alg]}')")"
  check "$alg: verifies offline with PyJWT against jwks()" "$user" "$(offline "${tokens[$alg]}" "$jwks" $DB)"
  check "$alg: PyJWT refuses it for another audience" "InvalidAudienceError" "$(offline "${tokens[$alg]}" "$jwks" other_db)"
  tampered="${tokens[$alg]%.*}.$(echo "${tokens[$alg]##*.}" | rev)"
  check "$alg: a tampered signature fails offline" "InvalidSignatureError" "$(offline "$tampered" "$jwks" $DB)"
  forged=$(forge "$jwks" $alg "$user")
  check "$alg: a token signed with another key under a published kid is refused in the database" "28000" \
    "$(web -c "SELECT nile_auth.authenticate('$forged')" 2>&1 | grep -oE '28000' | head -1)"
  check "$alg: ... and offline" "InvalidSignatureError" "$(offline "$forged" "$jwks" $DB)"
done
# HS256 keys are secret: never in the JWKS.
check "jwks() publishes no HS256 key and no private part" "0" \
  "$(q -d $DB -c "SELECT count(*) FROM jsonb_array_elements(nile_auth.jwks()->'keys') k WHERE k->>'alg' = 'HS256' OR k ? 'd' OR k ? 'k'")"

# Both tokens keep verifying after the rotations (the ES256 key is retired, still published).
jwks=$(q -d $DB -c "SELECT nile_auth.jwks()")
check "retired ES256 key: its token still verifies offline" "$user" "$(offline "${tokens[ES256]}" "$jwks" $DB)"
check "retired ES256 key: ... and in the database" "$user" "$(web -c "SELECT nile_auth.authenticate('${tokens[ES256]}')")"
# Revoked: gone from the JWKS, and the database refuses its tokens.
q -d $DB -c "SELECT nile_auth.revoke_signing_key('${kids[ES256]}')" >/dev/null
jwks=$(q -d $DB -c "SELECT nile_auth.jwks()")
check "revoked ES256 key: no longer published" "unknown kid" "$(offline "${tokens[ES256]}" "$jwks" $DB)"
check "revoked ES256 key: its token fails in the database" "28000" \
  "$(web -c "SELECT nile_auth.authenticate('${tokens[ES256]}')" 2>&1 | grep -oE '28000' | head -1)"
check "the EdDSA token is unaffected" "$user" "$(web -c "SELECT nile_auth.authenticate('${tokens[EdDSA]}')")"
"$BIN/dropdb" $DB
