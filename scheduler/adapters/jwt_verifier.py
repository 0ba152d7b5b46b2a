"""The platform's JWTs checked with PyJWT: signature, expiry, issuer and audience.

HS256 with the platform's secret, or RS256/ES256 with its public key (PEM). Only those
algorithms are accepted: a token that names another (``none``, or HS256 signed with a public
key) is refused, whatever it claims.
"""

from __future__ import annotations

from typing import Any

import jwt

from scheduler.domain.errors import Unauthenticated

HMAC_ALGORITHMS = ["HS256"]
PUBLIC_KEY_ALGORITHMS = ["RS256", "ES256"]
#: Clock skew tolerated between the platform and PhoneFleet.
LEEWAY_SECONDS = 10


class JwtVerifier:
    def __init__(
        self, *, secret: str | None, public_key: str | None, issuer: str, audience: str
    ) -> None:
        if (secret is None) == (public_key is None):
            raise ValueError("give the JWT secret or the JWT public key, not both")
        self._key: Any = secret if secret is not None else public_key
        self._algorithms = HMAC_ALGORITHMS if secret is not None else PUBLIC_KEY_ALGORITHMS
        self._issuer = issuer
        self._audience = audience

    @staticmethod
    def recognises(token: str) -> bool:
        """Three base64url segments: a JWT, not a PhoneFleet token (``pf_…``)."""
        return token.count(".") == 2 and not token.startswith("pf_")

    def claims(self, token: str) -> dict[str, Any]:
        """The verified claims of ``token``.

        Raises:
            Unauthenticated: bad signature, expired, another issuer or audience, malformed.
        """
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._key,
                algorithms=self._algorithms,
                issuer=self._issuer,
                audience=self._audience,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("the JWT has expired") from None
        except jwt.InvalidIssuerError:
            raise Unauthenticated(f"the JWT's issuer is not {self._issuer!r}") from None
        except jwt.InvalidAudienceError:
            raise Unauthenticated(f"the JWT's audience is not {self._audience!r}") from None
        except jwt.MissingRequiredClaimError as error:
            raise Unauthenticated(f"the JWT has no {error.claim!r} claim") from None
        except jwt.InvalidSignatureError:
            raise Unauthenticated("the JWT's signature does not verify") from None
        except jwt.InvalidAlgorithmError:
            raise Unauthenticated(
                f"the JWT must be signed with {' or '.join(self._algorithms)}"
            ) from None
        except jwt.InvalidTokenError:
            raise Unauthenticated("the bearer token is not a valid JWT") from None
        return claims
