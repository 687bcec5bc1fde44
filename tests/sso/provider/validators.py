"""Claims of the test provider: e-mail, names, `groups` from the provider user's Django groups,
and how they signed in: `amr` ["pwd"], plus "mfa"/"otp" (and `acr` "urn:test:mfa") for users
in the group `amr:mfa`, as a provider that asked for a second factor would say."""

from oauth2_provider.oauth2_validators import OAuth2Validator


class ClaimsValidator(OAuth2Validator):
    oidc_claim_scope = None  # every claim below goes into the ID token and userinfo

    def get_additional_claims(self, request):
        user = request.user
        names = sorted(user.groups.values_list("name", flat=True))
        strong = "amr:mfa" in names
        claims = {
            "email": user.email,
            "email_verified": True,
            "preferred_username": user.username,
            "given_name": user.first_name,
            "family_name": user.last_name,
            "groups": [n for n in names if not n.startswith("amr:")],
            "amr": ["pwd", "mfa", "otp"] if strong else ["pwd"],
        }
        if strong:
            claims["acr"] = "urn:test:mfa"
        return claims
