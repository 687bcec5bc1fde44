"""Human ticket numbers: `TCK-` + 8 characters from an alphabet without look-alikes
(no 0/O, 1/I/L, U). 30^8 ≈ 6.6·10^11 codes; uniqueness is the database's unique constraint,
and `ticket_create` retries inside a savepoint on the rare collision, so concurrent creators
never fail and never share a number."""

import secrets

ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"
PREFIX = "TCK-"
LENGTH = 8


def new_ticket_number() -> str:
    return PREFIX + "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))
